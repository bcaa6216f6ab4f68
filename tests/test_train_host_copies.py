"""Training input on the host: features reach the device in the compute dtype with at most one host copy,
and streamed training reads its batches from the memory-mapped .npy without a whole converted copy."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from test_train_core import MLP, _binary_data, _train, _training

from loopc.runtime.train.inputs import CastRows, host_rows, pad_rows


def test_padding_converts_while_copying_once():
    x = np.arange(15, dtype=np.float32).reshape(5, 3) / 7
    padded, y, w = pad_rows(x, np.ones(5, np.float32), np.ones(5, np.float32), 4, jnp.bfloat16)
    assert padded.dtype == np.dtype(jnp.bfloat16) and padded.shape == (8, 3)
    assert np.array_equal(padded[:5], x.astype(jnp.bfloat16)) and not padded[5:].any()
    assert y.dtype == w.dtype == np.float32 and w[5:].sum() == 0
    same, _, _ = pad_rows(x, np.ones(5), np.ones(5), 5)
    assert same.dtype == np.float32 and np.array_equal(same, x)


def test_streamed_rows_are_the_mapped_file_cast_per_selection(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert host_rows(mapped, jnp.float32) is mapped  # already the compute dtype: the map itself
    rows = host_rows(mapped, jnp.bfloat16)
    assert isinstance(rows, CastRows) and rows.x is mapped and rows.shape == (50, 4)
    pick = np.array([3, 49, 0, 3])
    assert rows[pick].dtype == np.dtype(jnp.bfloat16)
    assert np.array_equal(rows[pick], np.asarray(mapped)[pick].astype(jnp.bfloat16))


def test_bfloat16_training_streamed_from_a_memory_map_equals_resident_training(tmp_path):
    x_tr, y_tr, x_va, y_va = _binary_data(rows=400)
    np.save(tmp_path / "x.npy", x_tr)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    training = _training(epochs=2, batch_size=32)
    resident = _train((x_tr, y_tr, x_va, y_va), architecture=MLP, training=training, precision="bfloat16")
    streamed = _train((mapped, y_tr, x_va, y_va), architecture=MLP, training=training, precision="bfloat16",
                      device_data_budget=3000)
    assert streamed.streamed and not resident.streamed
    for name in resident.params:
        for leaf in resident.params[name]:
            np.testing.assert_array_equal(streamed.params[name][leaf], resident.params[name][leaf])
