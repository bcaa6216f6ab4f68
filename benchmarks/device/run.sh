#!/usr/bin/env bash
# There, on a lent H200, as the `run` tool's command (carry [".whl"], timeout_s 480): install the wheels that
# prepare.sh fetched and loopc itself (or link its packages where pip cannot build it), then issue 10's run at
# ROWS (4,000,000) rows x 64 floats, MLP 256-256, batch 8192, EPOCHS (5) epochs:
# - benchmarks/data_path.py cold and warm (each step its own process, as every target runs it);
# - `loopc run` cold in a fresh project on the same file, then warm twice;
# - the trainer against the hand-written loop (benchmarks/train_throughput.py).
# Everything printed is also written under $OUT (seven files; the tool brings back eight at most).
# To try it here: `PYTHON_VERSION=3.11 bash benchmarks/device/prepare.sh`, then, in a venv holding only the image's
# packages, `ROWS=100000 EPOCHS=1 PYTHON=venv/bin/python SITE=/tmp/site OUT=/tmp/out bash benchmarks/device/run.sh`.
set -uo pipefail
cd "$(dirname "$0")/../.."
rows=${ROWS:-4000000} epochs=${EPOCHS:-5} out=${OUT:-/tmp/loopc-device-out} site=${SITE:-/tmp/site}
python=${PYTHON:-python3}
mkdir -p "$out"
exec > >(tee "$out/device.log") 2>&1
export PYTHONUNBUFFERED=1
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
    || { echo "the wheels did not install: run benchmarks/device/prepare.sh here and carry .whl"; exit 1; }
if ! "$python" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$site" .; then
    echo "pip could not build loopc here (no setuptools >= 68?): its packages are linked from this tree instead"
    mkdir -p "$site/loopc" && for package in compiler runtime templates specs; do ln -sfn "$PWD/$package" "$site/loopc/$package"; done
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
echo "== machine"; nproc; free -g | head -2; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
"$python" -c "import sys, jax, optax, pyarrow, numpy; print(sys.version.split()[0], 'jax', jax.__version__, jax.devices(), \
'optax', optax.__version__, 'pyarrow', pyarrow.__version__, 'numpy', numpy.__version__)" || exit 1
echo "== data path, cold then warm ($rows rows, $epochs epochs)"
"$python" benchmarks/data_path.py --rows "$rows" --epochs "$epochs" --keep /tmp/loopc-bench --json > "$out/data_path_cold.json" \
    && cat "$out/data_path_cold.json"
"$python" benchmarks/data_path.py --rows "$rows" --epochs "$epochs" --keep /tmp/loopc-bench --json > "$out/data_path_warm.json" \
    && cat "$out/data_path_warm.json"
echo "== loopc run: cold in a fresh project on the same file, then warm twice"
bench=/tmp/loopc-bench/rows-$rows fresh=/tmp/loopc-fresh
rm -rf "$fresh" && mkdir -p "$fresh/data" && cp "$bench/pipeline.yaml" "$fresh/" && ln "$bench/data/table.parquet" "$fresh/data/"
TIMEFORMAT="%R s"
for run in cold warm warm-again; do
    echo -n "$run: "
    { time "$python" -m loopc.compiler.cli.main run "$fresh/pipeline.yaml" > "$out/loopc_run_$run.txt" 2>&1; } 2>&1
    tail -3 "$out/loopc_run_$run.txt"
done
echo "== trainer against the hand-written loop"
"$python" benchmarks/train_throughput.py --rows "$rows" --batch 8192 --epochs "$epochs" --hidden 256,256 | tee "$out/train_throughput.txt"
