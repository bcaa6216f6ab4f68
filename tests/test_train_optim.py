"""Optimizers by optax name, argument checking with clear errors, and schedules over the run."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from loopc.runtime.train.optim import (
    OPTIMIZERS,
    build_optimizer,
    build_schedule,
    optimizer_arguments,
)
from loopc.runtime.train.trainer import TrainError


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_takes_a_step_that_lowers_a_quadratic(name):
    tx = build_optimizer({"name": name, "lr": 0.1, "params": {}}, {"kind": "constant"}, total_steps=10)
    params = {"w": jnp.array([1.0, -2.0, 3.0, 0.5])}
    state = tx.init(params)
    grads = {"w": 2 * params["w"]}
    updates, _ = tx.update(grads, state, params)
    new = params["w"] + updates["w"]
    assert float(jnp.sum(new**2)) < float(jnp.sum(params["w"] ** 2))


def test_unknown_optimizer_argument_names_the_valid_ones():
    with pytest.raises(TrainError) as error:
        build_optimizer({"name": "adamw", "lr": 0.1, "params": {"beta1": 0.9}}, {}, 10)
    message = str(error.value)
    assert "'adamw'" in message and "'beta1'" in message and "b1" in message and "weight_decay" in message
    assert "learning_rate" not in optimizer_arguments("adamw")


def test_unknown_optimizer_and_schedule_are_train_errors():
    with pytest.raises(TrainError, match="unknown optimizer 'adamx'"):
        build_optimizer({"name": "adamx"}, {}, 10)
    with pytest.raises(TrainError, match="unknown schedule 'linear'"):
        build_schedule({"kind": "linear"}, 0.1, 10)


def test_momentum_defaults_to_point_nine_and_clipping_bounds_the_update():
    tx = build_optimizer({"name": "sgd", "lr": 1.0, "params": {}, "clip_norm": 1.0}, {}, 10)
    params = {"w": jnp.array([0.0, 0.0])}
    updates, _ = tx.update({"w": jnp.array([30.0, 40.0])}, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), [-0.6, -0.8], rtol=1e-6)


def test_schedules_follow_their_shapes():
    cosine = build_schedule({"kind": "cosine"}, 1.0, 100)
    assert float(cosine(0)) == pytest.approx(1.0) and float(cosine(100)) == pytest.approx(0.0, abs=1e-6)
    warm = build_schedule({"kind": "warmup_cosine", "warmup_steps": 10}, 1.0, 100)
    assert float(warm(0)) == 0.0 and float(warm(10)) == pytest.approx(1.0)
    assert float(warm(5)) == pytest.approx(0.5)
    exponential = build_schedule({"kind": "exponential", "decay_rate": 0.5}, 2.0, 100)
    assert float(exponential(100)) == pytest.approx(1.0)
    assert build_schedule({"kind": "constant"}, 0.3, 100) == 0.3  # a float: no schedule state
    warm_constant = build_schedule({"kind": "constant", "warmup_steps": 4}, 0.3, 100)
    assert float(warm_constant(2)) == pytest.approx(0.15) and float(warm_constant(50)) == pytest.approx(0.3)
