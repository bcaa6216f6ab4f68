"""Training rows/s: a host-fed loop, the best hand-written on-device loop, and loopc's train_model.

    python benchmarks/train_throughput.py                       # CPU-sized defaults
    python benchmarks/train_throughput.py --rows 4000000 --batch 8192 --epochs 5 --hidden 256,256

Same model (64 -> hidden -> 1 MLP, ReLU, binary cross-entropy), AdamW, same batch size. Compile
time is excluded from rows/s and reported separately. loopc also evaluates a validation set of
``--valid-rows`` rows after every epoch (its early-stopping signal); the hand-written loops do not.
Prints a table and one JSON line.

    python benchmarks/train_throughput.py --processes 2         # loopc alone, 1 then 2 JAX processes

``--processes N`` measures loopc's train_model only: the data is written as .npy files, then run by one
process and by N processes (localhost coordinator, gloo on the CPU), each memory-mapping its row range.
``--steps-per-call K`` trains with a checkpoint folder: epochs in pieces of K steps (preemptible).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from loopc.runtime.train.trainer import train_model

FEATURES = 64


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features and a noisy linear-threshold label."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    w = rng.standard_normal(FEATURES).astype(np.float32)
    y = ((x @ w + rng.standard_normal(rows).astype(np.float32)) > 0).astype(np.float32)
    return x, y


def init_mlp(hidden: list[int], key) -> list[tuple[jax.Array, jax.Array]]:
    """Glorot-uniform weights, zero biases."""
    widths = [FEATURES, *hidden, 1]
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        key, sub = jax.random.split(key)
        layers.append((jax.nn.initializers.glorot_uniform()(sub, (fan_in, fan_out)), jnp.zeros(fan_out)))
    return layers


def loss_fn(params, x, y, dtype):
    """Mean BCE of the MLP's logits; matmuls in ``dtype``."""
    h = x.astype(dtype)
    for i, (w, b) in enumerate(params):
        h = h @ w.astype(dtype) + b.astype(dtype)
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return optax.sigmoid_binary_cross_entropy(h[:, 0].astype(jnp.float32), y).mean()


def make_step(tx, dtype):
    """One AdamW update on one batch."""

    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, dtype)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def timed(fn, *args) -> tuple[object, float]:
    """Result and wall seconds of ``fn(*args)``, waiting for the device to finish."""
    started = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - started


def naive_loop(x, y, args, tx, dtype) -> dict:
    """(a) Python loop; each batch is gathered on the host and copied to the device."""
    step = jax.jit(make_step(tx, dtype), donate_argnums=(0, 1))
    params = init_mlp(args.hidden, jax.random.PRNGKey(0))
    opt_state = tx.init(params)
    batches = len(x) // args.batch
    rng = np.random.default_rng(0)
    (params, opt_state, _), compile_s = timed(step, params, opt_state, x[: args.batch], y[: args.batch])
    started = time.perf_counter()
    for _ in range(args.naive_epochs):
        order = rng.permutation(len(x))
        for i in range(batches):
            idx = order[i * args.batch:(i + 1) * args.batch]
            params, opt_state, loss = step(params, opt_state, x[idx], y[idx])
    jax.block_until_ready(params)
    seconds = time.perf_counter() - started
    return {"rows_per_s": batches * args.batch * args.naive_epochs / seconds, "compile_s": compile_s,
            "epochs": args.naive_epochs}


def scan_epoch(tx, dtype, rows: int, batch: int, gather_per_batch: bool):
    """(b) A whole epoch as one jitted lax.scan over device-resident data (ragged tail dropped)."""
    step = make_step(tx, dtype)
    batches = rows // batch

    def epoch(params, opt_state, x, y, key):
        order = jax.random.permutation(key, rows)[: batches * batch].reshape(batches, batch)
        if gather_per_batch:
            body = lambda carry, idx: (step(*carry, x[idx], y[idx])[:2], None)  # noqa: E731
            xs = order
        else:
            body = lambda carry, xy: (step(*carry, *xy)[:2], None)  # noqa: E731
            xs = (x[order], y[order])
        (params, opt_state), _ = jax.lax.scan(body, (params, opt_state), xs)
        return params, opt_state

    return jax.jit(epoch, donate_argnums=(0, 1))


def hand_written(x, y, args, tx, dtype, gather_per_batch: bool) -> dict:
    """Time ``args.epochs`` epochs of :func:`scan_epoch` after one compile."""
    xd, yd = jax.device_put(x.astype(dtype)), jax.device_put(y)
    params = init_mlp(args.hidden, jax.random.PRNGKey(0))
    opt_state = tx.init(params)
    started = time.perf_counter()
    epoch = scan_epoch(tx, dtype, len(x), args.batch, gather_per_batch)
    epoch = epoch.lower(params, opt_state, xd, yd, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    for e in range(args.epochs):
        params, opt_state = epoch(params, opt_state, xd, yd, jax.random.PRNGKey(e))
    jax.block_until_ready(params)
    seconds = time.perf_counter() - started
    rows = (len(x) // args.batch) * args.batch * args.epochs
    return {"rows_per_s": rows / seconds, "compile_s": compile_s, "epochs": args.epochs}


def loopc(x, y, xv, yv, args) -> dict:
    """(c) loopc's train_model with the same model, optimizer and batch; early stopping off."""
    started = time.perf_counter()
    result = train_model(
        x, y, xv, yv, task="binary_classification", num_classes=None,
        architecture={"kind": "mlp", "hidden": args.hidden, "activation": "relu", "dropout": 0.0},
        optimizer={"name": "adamw", "lr": 1e-3, "params": {}}, schedule={"kind": "constant"},
        training={"epochs": args.epochs, "batch_size": args.batch, "seed": 0, "early_stopping": None},
        precision=args.dtype,
    )
    return {"rows_per_s": result.rows_per_second, "compile_s": result.compile_seconds, "epochs": args.epochs,
            "wall_s": time.perf_counter() - started, "final_val_loss": result.history[-1]["val_loss"],
            "epoch_seconds": [round(h["seconds"], 5) for h in result.history]}


def loopc_worker(folder: Path, args) -> None:
    """One process of ``--processes``: join the job, memory-map the matrix, train, print rows/s (process 0)."""
    from loopc.runtime.train.distributed import maybe_initialize_distributed

    maybe_initialize_distributed()
    x, y = np.load(folder / "x.npy", mmap_mode="r"), np.load(folder / "y.npy", mmap_mode="r")
    xv, yv = np.load(folder / "xv.npy"), np.load(folder / "yv.npy")
    with tempfile.TemporaryDirectory() as checkpoints:
        result = train_model(
            x, y, xv, yv, task="binary_classification", num_classes=None,
            architecture={"kind": "mlp", "hidden": args.hidden, "activation": "relu", "dropout": 0.0},
            optimizer={"name": "adamw", "lr": 1e-3, "params": {}}, schedule={"kind": "constant"},
            training={"epochs": args.epochs, "batch_size": args.batch, "seed": 0, "early_stopping": None},
            precision=args.dtype, checkpoint_dir=checkpoints if args.steps_per_call else None,
            steps_per_call=args.steps_per_call or 64,
        )
    if jax.process_index() == 0:
        print(json.dumps({"processes": jax.process_count(), "rows_per_s": result.rows_per_second,
                          "final_val_loss": result.history[-1]["val_loss"],
                          "epoch_seconds": [round(h["seconds"], 4) for h in result.history]}))


def launch(folder: Path, processes: int, argv: list[str]) -> dict:
    """Run ``processes`` workers (a localhost coordinator when more than one); process 0's JSON line."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LOOPC_"))}
    workers = []
    for index in range(processes):
        extra = {"LOOPC_COORDINATOR": f"localhost:{port}", "LOOPC_NUM_PROCESSES": str(processes),
                 "LOOPC_PROCESS_ID": str(index)} if processes > 1 else {}
        workers.append(subprocess.Popen([sys.executable, __file__, *argv, "--worker", str(folder)],
                                        env={**env, **extra}, stdout=subprocess.PIPE, text=True))
    outputs = [worker.communicate()[0] for worker in workers]
    if any(worker.returncode for worker in workers):
        raise SystemExit(f"a worker failed: exit codes {[w.returncode for w in workers]}")
    return json.loads(outputs[0].strip().splitlines()[-1])


def multi_process(args, argv: list[str]) -> None:
    """Rows/s of train_model with 1 and with ``args.processes`` processes on the same .npy data."""
    x, y = make_data(args.rows + args.valid_rows)
    with tempfile.TemporaryDirectory() as folder:
        for name, value in {"x": x[: args.rows], "y": y[: args.rows], "xv": x[args.rows:],
                            "yv": y[args.rows:]}.items():
            np.save(Path(folder) / f"{name}.npy", value)
        results = {str(n): launch(Path(folder), n, argv) for n in sorted({1, args.processes})}
    print(f"{'processes':<10} {'rows/s':>14} {'final val loss':>15}")
    for n, r in results.items():
        print(f"{n:<10} {r['rows_per_s']:>14,.0f} {r['final_val_loss']:>15.6f}")
    print(json.dumps({"rows": args.rows, "batch": args.batch, "hidden": args.hidden, "epochs": args.epochs,
                      "steps_per_call": args.steps_per_call, "results": results}, sort_keys=True))


def parse_args() -> argparse.Namespace:
    """Command-line options (CPU-sized defaults)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--naive-epochs", type=int, default=1)
    parser.add_argument("--hidden", default="256,256", help="comma-separated hidden widths")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--valid-rows", type=int, default=None, help="default: 1%% of --rows")
    parser.add_argument("--processes", type=int, default=None, help="loopc alone with 1 and N JAX processes")
    parser.add_argument("--steps-per-call", type=int, default=None, help="train in pieces (checkpoint folder)")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.hidden = [int(w) for w in args.hidden.split(",") if w]
    args.valid_rows = args.valid_rows if args.valid_rows is not None else max(args.rows // 100, 1)
    return args


def main() -> None:
    """Run the three loops and print the table and the JSON line."""
    args = parse_args()
    if args.worker is not None:
        return loopc_worker(args.worker, args)
    if args.processes is not None:
        return multi_process(args, [a for a in sys.argv[1:]])
    print(f"devices: {jax.devices()}  jax {jax.__version__}  optax {optax.__version__}")
    x, y = make_data(args.rows + args.valid_rows)
    x, y, xv, yv = x[: args.rows], y[: args.rows], x[args.rows:], y[args.rows:]
    tx = optax.adamw(1e-3)
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}[args.dtype]
    results = {
        "naive_host_loop": naive_loop(x, y, args, tx, dtype),
        "hand_scan_gather": hand_written(x, y, args, tx, dtype, gather_per_batch=True),
        "hand_scan_permuted": hand_written(x, y, args, tx, dtype, gather_per_batch=False),
        "loopc": loopc(x, y, xv, yv, args),
    }
    best = max(results["hand_scan_gather"]["rows_per_s"], results["hand_scan_permuted"]["rows_per_s"])
    ratio = results["loopc"]["rows_per_s"] / best
    print(f"{'loop':<20} {'rows/s':>14} {'compile s':>10} {'epochs':>7}")
    for name, r in results.items():
        print(f"{name:<20} {r['rows_per_s']:>14,.0f} {r['compile_s']:>10.2f} {r['epochs']:>7}")
    print(f"loopc / best hand-written: {ratio:.3f}")
    summary = {"devices": [str(d) for d in jax.devices()], "rows": args.rows, "batch": args.batch,
               "hidden": args.hidden, "dtype": args.dtype, "epochs": args.epochs, "valid_rows": args.valid_rows,
               "results": results, "loopc_over_best": ratio}
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
