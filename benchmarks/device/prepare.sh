#!/usr/bin/env bash
# Here, before a session's one run on a lent H200: the wheels its image lacks, in .whl/ (ignored, carried).
# The image has JAX, optax, pyarrow, NumPy, SciPy, Jinja2, networkx, PyYAML and rich (Python 3.12); loopc's
# compiler needs pydantic and Hydra's parser besides, and the snapshot digest blake3. psycopg is left out: the
# benchmarks use SQLite. Then: the `run` tool with carry [".whl"] and `bash benchmarks/device/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
pip=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" --implementation cp
     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl)
version() { .venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
for name in pydantic pydantic-core annotated-types typing-inspection typing-extensions omegaconf hydra-core blake3; do
    "${pip[@]}" "$name==$(version "$name")"
done
# antlr4-python3-runtime 4.9.3 (what omegaconf pins) is published as source only: built here, pure Python
.venv/bin/python -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
ls -l .whl
du -sh .whl
