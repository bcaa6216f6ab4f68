"""Params files and training checkpoints: atomic, byte-for-byte deterministic .npz archives.

A checkpoint folder holds ``checkpoint-<epoch>-<step>.npz`` archives and ``checkpoint.json``, the
manifest written last: the newest two archives with their size and sha256. A damaged archive
(truncated, edited) is detected there and the previous one is used, with a warning naming both.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from loopc.runtime.store.artifacts import atomic_write_bytes, atomic_write_json
from loopc.runtime.train.errors import TrainError

CHECKPOINT_NAME = "checkpoint.json"  # the manifest
KEEP = 2
LOG = logging.getLogger("loopc.train.checkpoint")
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


def _read_archive(path: Path, data: bytes | None = None) -> tuple[dict[str, np.ndarray], dict | None]:
    """Arrays and meta of an archive written by :func:`_archive_bytes` (``data``: its bytes, already read)."""
    try:
        with zipfile.ZipFile(path if data is None else io.BytesIO(data)) as archive:
            arrays, meta = {}, None
            for name in archive.namelist():
                member = archive.read(name)
                if name == "meta.json":
                    meta = json.loads(member)
                else:
                    arrays[name[: -len(".npy")]] = np.lib.format.read_array(io.BytesIO(member), allow_pickle=False)
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


def save_checkpoint(directory: Path, trees: dict[str, dict], leaves: dict[str, list], meta: dict) -> Path:
    """Write an archive of named pytrees, leaf lists and JSON meta, then the manifest; returns the archive."""
    directory = Path(directory)
    arrays = {}
    for name, tree in trees.items():
        arrays.update(flatten_tree(tree, f"{name}/"))
    for name, values in leaves.items():
        arrays.update({f"{name}/{i:06d}": np.asarray(v) for i, v in enumerate(values)})
    data = _archive_bytes(arrays, meta)
    name = f"checkpoint-{int(meta.get('epoch', 0)):06d}-{int(meta.get('step', 0)):08d}.npz"
    atomic_write_bytes(directory / name, data)
    entry = {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    older = [e for e in _manifest(directory) if e["file"] != name][: KEEP - 1]
    atomic_write_json(directory / CHECKPOINT_NAME, {"checkpoints": [entry, *older]})
    kept = {entry["file"], *(e["file"] for e in older)}
    for stale in directory.glob("checkpoint-*.npz"):
        if stale.name not in kept:
            stale.unlink(missing_ok=True)
    return directory / name


def _manifest(directory: Path) -> list[dict]:
    """The manifest's entries, newest first; [] when there is none."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8"))["checkpoints"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainError(f"cannot read the checkpoint manifest {path}: {error}; delete the folder to train "
                         "from scratch") from error


def _damage(path: Path, entry: dict) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` when ``path`` matches its manifest entry, else ``(None, why not)`` (missing, size, sha256)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    if len(data) != entry["bytes"]:
        return None, f"has {len(data)} bytes, the manifest says {entry['bytes']} (truncated?)"
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return None, "does not match the sha256 in the manifest"
    return data, None


def load_checkpoint(directory: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """``(flat arrays, meta)`` of the newest intact checkpoint in ``directory``, or None when there is none."""
    directory = Path(directory)
    entries = _manifest(directory)
    damaged: list[str] = []
    for entry in entries:
        path = directory / entry["file"]
        data, problem = _damage(path, entry)
        if problem is None:
            if damaged:
                LOG.warning("checkpoint %s; resuming from the previous checkpoint %s instead",
                            "; ".join(damaged), path)
            return _checked(path, data)
        damaged.append(f"{path} {problem}")
    if damaged:
        raise TrainError(f"no intact checkpoint in {directory}: {'; '.join(damaged)}; delete the folder to "
                         "train from scratch")
    return None


def _checked(path: Path, data: bytes) -> tuple[dict[str, np.ndarray], dict]:
    arrays, meta = _read_archive(path, data)
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
