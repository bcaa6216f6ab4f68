"""Optax optimizers and learning-rate schedules built from the spec's plain dicts."""

from __future__ import annotations

import inspect

import optax

from loopc.runtime.train.errors import TrainError

OPTIMIZERS = {
    "sgd": optax.sgd,
    "momentum": optax.sgd,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
    "lamb": optax.lamb,
    "lion": optax.lion,
    "adafactor": optax.adafactor,
}
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential")
DEFAULT_DECAY_RATE = 0.1


def optimizer_arguments(name: str) -> list[str]:
    """Keyword arguments a spec may give optimizer ``name`` (scalars only; no masks or dtypes)."""
    signature = inspect.signature(OPTIMIZERS[name])
    return [
        arg for arg in signature.parameters
        if arg != "learning_rate" and not arg.endswith(("mask", "dtype"))
    ]


def _checked_kwargs(name: str, params: dict) -> dict:
    """The optimizer's extra kwargs, or a TrainError naming what is valid."""
    valid = optimizer_arguments(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TrainError(
            f"optimizer '{name}' has no argument {', '.join(repr(u) for u in unknown)}; "
            f"valid arguments of optax.{OPTIMIZERS[name].__name__}: {', '.join(valid)}"
        )
    for arg, value in params.items():
        if not isinstance(value, (bool, int, float)):
            raise TrainError(f"optimizer '{name}' argument '{arg}' must be a number or bool, got {value!r}")
    kwargs = dict(params)
    if name == "momentum":
        kwargs.setdefault("momentum", 0.9)
    return kwargs


def build_schedule(schedule: dict, lr: float, total_steps: int) -> optax.ScalarOrSchedule:
    """A learning-rate schedule over ``total_steps``, with an optional linear warmup first.

    ``exponential`` decays from ``lr`` to ``lr * decay_rate`` over the whole run (default 0.1);
    ``cosine`` decays to 0; ``warmup_cosine`` is cosine after ``warmup_steps`` of linear warmup
    (any kind accepts ``warmup_steps``).
    """
    kind = schedule.get("kind", "constant")
    if kind not in SCHEDULES:
        raise TrainError(f"unknown schedule '{kind}'; use one of {', '.join(SCHEDULES)}")
    total_steps = max(int(total_steps), 1)
    warmup = min(int(schedule.get("warmup_steps", 0) or 0), total_steps - 1)
    steps = total_steps - warmup
    if kind == "constant" and warmup == 0:
        return lr  # a plain float: optax then keeps no step count for the schedule
    if kind == "constant":
        main = optax.constant_schedule(lr)
    elif kind in ("cosine", "warmup_cosine"):
        main = optax.cosine_decay_schedule(lr, steps)
    else:
        rate = schedule.get("decay_rate") or DEFAULT_DECAY_RATE
        main = optax.exponential_decay(lr, transition_steps=steps, decay_rate=rate)
    if warmup == 0:
        return main
    ramp = optax.linear_schedule(0.0, lr, warmup)
    return optax.join_schedules([ramp, main], [warmup])


def build_optimizer(optimizer: dict, schedule: dict, total_steps: int) -> optax.GradientTransformation:
    """The optax optimizer named in ``optimizer`` with its schedule and optional global-norm clipping."""
    name = optimizer.get("name", "adamw")
    if name not in OPTIMIZERS:
        raise TrainError(f"unknown optimizer '{name}'; use one of {', '.join(OPTIMIZERS)}")
    lr = float(optimizer.get("lr", 1e-3))
    kwargs = _checked_kwargs(name, dict(optimizer.get("params") or {}))
    try:
        transform = OPTIMIZERS[name](learning_rate=build_schedule(schedule, lr, total_steps), **kwargs)
    except (TypeError, ValueError) as error:
        raise TrainError(f"optimizer '{name}' rejected its arguments {kwargs}: {error}") from error
    clip = optimizer.get("clip_norm")
    if clip:
        transform = optax.chain(optax.clip_by_global_norm(float(clip)), transform)
    return transform
