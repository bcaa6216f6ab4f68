"""Params files and training checkpoints: atomic, byte-for-byte deterministic .npz archives."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from loopc.runtime.store.artifacts import atomic_write_bytes
from loopc.runtime.train.nets import TrainError

CHECKPOINT_NAME = "checkpoint.npz"
_EPOCH_1980 = (1980, 1, 1, 0, 0, 0)


def flatten_tree(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """``{"a": {"b": x}}`` -> ``{"a/b": np.asarray(x)}`` (nested dicts of arrays only)."""
    flat = {}
    for key in sorted(tree):
        path = f"{prefix}{key}"
        value = tree[key]
        if isinstance(value, dict):
            flat.update(flatten_tree(value, path + "/"))
        else:
            flat[path] = np.asarray(value)
    return flat


def unflatten_tree(flat: dict[str, np.ndarray]) -> dict:
    """Inverse of :func:`flatten_tree`."""
    tree: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _archive_bytes(arrays: dict[str, np.ndarray], meta: dict | None) -> bytes:
    """A zip of ``<name>.npy`` members (sorted, fixed timestamps) plus an optional ``meta.json``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name], order="C"), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", _EPOCH_1980), member.getvalue())
        if meta is not None:
            text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
            archive.writestr(zipfile.ZipInfo("meta.json", _EPOCH_1980), text.encode())
    return buffer.getvalue()


def _read_archive(path: Path) -> tuple[dict[str, np.ndarray], dict | None]:
    """Arrays and meta of an archive written by :func:`_archive_bytes`."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays, meta = {}, None
            for name in archive.namelist():
                data = archive.read(name)
                if name == "meta.json":
                    meta = json.loads(data)
                else:
                    arrays[name[: -len(".npy")]] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        raise TrainError(f"cannot read {path}: {error}; delete it and train again") from error
    return arrays, meta


def save_params(path: Path | str, params: dict) -> None:
    """Write a params pytree (nested dicts of arrays) atomically; same params -> same bytes."""
    atomic_write_bytes(Path(path), _archive_bytes(flatten_tree(params), None))


def load_params(path: Path | str) -> dict:
    """Read params written by :func:`save_params` as nested dicts of numpy arrays."""
    arrays, _ = _read_archive(Path(path))
    return unflatten_tree(arrays)


def save_checkpoint(directory: Path, trees: dict[str, dict], leaves: dict[str, list], meta: dict) -> None:
    """Write ``checkpoint.npz`` in ``directory``: named pytrees, named leaf lists and JSON meta."""
    arrays = {}
    for name, tree in trees.items():
        arrays.update(flatten_tree(tree, f"{name}/"))
    for name, values in leaves.items():
        arrays.update({f"{name}/{i:06d}": np.asarray(v) for i, v in enumerate(values)})
    atomic_write_bytes(Path(directory) / CHECKPOINT_NAME, _archive_bytes(arrays, meta))


def load_checkpoint(directory: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """``(flat arrays, meta)`` of the checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    arrays, meta = _read_archive(path)
    if meta is None:
        raise TrainError(f"{path} has no meta.json; it is not a loopc checkpoint: delete it")
    return arrays, meta


def subtree(arrays: dict[str, np.ndarray], name: str) -> dict:
    """The pytree saved under ``name`` by :func:`save_checkpoint`."""
    prefix = f"{name}/"
    return unflatten_tree({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


def leaf_list(arrays: dict[str, np.ndarray], name: str) -> list[np.ndarray]:
    """The leaf list saved under ``name`` by :func:`save_checkpoint`, in order."""
    prefix = f"{name}/"
    return [arrays[k] for k in sorted(k for k in arrays if k.startswith(prefix))]
