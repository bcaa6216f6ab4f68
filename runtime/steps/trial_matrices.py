"""Sweep trials share their matrices: every trial of one features artifact trains on the same rows through the
same fitted transform (only hyperparameters differ), so the first trial builds the train and valid matrices and
counts the reference profile, and the others memory-map what it left.

The shared copy is ``<state>/scratch/shared/matrices/<features key>/``: ``x_train.npy``, ``x_valid.npy``,
``y_train.npy``, ``y_valid.npy``, ``profile_columns.json`` (the counted profile) and ``complete.json``, written
last. The first trial builds it in a staging folder under a lock and renames it into place; a trial that finds it
complete maps it; an incomplete one (a trial killed while building) is built again. The sweep's select step
removes it (``remove_shared``). Only a state folder with a local artifact store shares: with a remote store each
worker has its own scratch, which select could not clean (``shares``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopc.runtime.execution.locks import exclusive
from loopc.runtime.steps.files import read_json, writing
from loopc.runtime.steps.matrices import BatchHook, MatrixSource, SplitMatrix, build_matrices
from loopc.runtime.store.artifacts import LocalArtifactStore, atomic_write_json

if TYPE_CHECKING:
    from loopc.runtime.monitor.profile import ProfileSketch

COMPLETE, PROFILE = "complete.json", "profile_columns.json"
MATRIX_SPLITS = ("train", "valid")  # the splits a train step builds matrices of


def shares(config: dict, store: Any, processes: int) -> bool:
    """Whether a train step shares its matrices: a sweep trial, one process, a local artifact store."""
    return config.get("trial") is not None and processes == 1 and isinstance(store, LocalArtifactStore)


def shared_folder(state: Path, features_key: str) -> Path:
    return Path(state) / "scratch" / "shared" / "matrices" / features_key


def trial_matrices(state: Path, features_key: str, source: MatrixSource, sketch: ProfileSketch, count: BatchHook,
                   log: logging.Logger) -> tuple[SplitMatrix, SplitMatrix, dict]:
    """(train, valid, the profile's counted columns) of the features artifact ``features_key``: mapped from the
    shared copy, or built (``count`` counting ``sketch`` over the train rows on the way) and shared.
    ProfileError from counting leaves nothing shared."""
    folder = shared_folder(state, features_key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(folder.parent / f"{features_key}.lock"):
        shared = _mapped(folder)
        if shared is not None:
            log.info("matrices shared by an earlier trial: %s", folder)
            return shared
        staging = folder.with_name(f"{features_key}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        built = build_matrices(source, MATRIX_SPLITS, staging, hook=count, hook_columns=tuple(sketch.numeric), on_disk=True)
        columns = sketch.sketches()
        with writing(staging):
            for split in MATRIX_SPLITS:
                np.save(staging / f"y_{split}.npy", built[split].y)
                built[split].x.flush()
            atomic_write_json(staging / PROFILE, columns)
            atomic_write_json(staging / COMPLETE, {s: len(built[s].y) for s in MATRIX_SPLITS})
            staging.rename(folder)
        log.info("matrices built and shared with the other trials: %s", folder)
        return built["train"], built["valid"], columns


def _mapped(folder: Path) -> tuple[SplitMatrix, SplitMatrix, dict] | None:
    """The shared copy, memory-mapped; None (an incomplete folder removed) when it is not complete."""
    if not (folder / COMPLETE).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        return None
    train, valid = (SplitMatrix(np.load(folder / f"x_{s}.npy", mmap_mode="r"), np.load(folder / f"y_{s}.npy"))
                    for s in MATRIX_SPLITS)
    return train, valid, read_json(folder / PROFILE)


def remove_shared(state: Path, features_key: str) -> None:
    """Remove the shared copy of ``features_key``'s matrices (the sweep is done); none is fine. A trial still
    mapping it keeps its files until it unmaps them."""
    folder = shared_folder(state, features_key)
    if not folder.parent.is_dir():
        return
    with exclusive(folder.parent / f"{features_key}.lock"):
        shutil.rmtree(folder, ignore_errors=True)
