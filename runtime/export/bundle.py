"""Write an export bundle from a trained model artifact (docs/bundle-format.md)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from loopc.runtime.data import expressions
from loopc.runtime.data.expressions import columns_in
from loopc.runtime.export import bundle_score, input_cast

BUNDLE_FILES = ("bundle.json", "params.npz", "transform.json", "input_schema.json", "model.json",
                "model_card.md", "predict.jax", "score.py", "input_cast.py", "expressions.py")
PLATFORMS = ("cpu", "cuda")
COLUMNS_FILE = "columns.json"  # in a model artifact: the dataset's declared column specs


class ExportError(Exception):
    """The model cannot be exported (missing artifact files, a feature the bundle cannot replay)."""


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ExportError(f"model artifact file {path} is missing; retrain the model with `loopc run`")
    return json.loads(path.read_text(encoding="utf-8"))


def input_schema(transform: dict, columns: dict[str, dict] | None = None) -> dict:
    """The raw columns the bundle reads, in model.features order, each with whether it is text."""
    seen: dict[str, dict] = {}
    for feature in transform["features"]:
        names = [feature["column"]] if feature["column"] is not None else sorted(columns_in(feature["expr"]))
        for name in names:
            declared = (columns or {}).get(name, {}).get("type")
            entry = seen.setdefault(name, {"name": name, "text": False, "type": declared})
            entry["text"] = entry["text"] or (feature["text"] and feature["column"] == name)
    return {"format": bundle_score.BUNDLE_FORMAT, "columns": list(seen.values())}


def _serialized_predict(params: dict, architecture: dict, task: str, dim: int) -> tuple[bytes, list[str]]:
    """``jax.export`` of predictions(params, x[b, dim]) with a symbolic batch size."""
    import flatbuffers  # noqa: F401 - jax.export serializes with it (an explicit dependency of loopc)
    import jax
    import jax.numpy as jnp

    from loopc.runtime.train.nets import apply_net, outputs_to_predictions

    def predictions(p, x):
        return outputs_to_predictions(task, apply_net(p, architecture, x), p)

    (batch,) = jax.export.symbolic_shape("b")
    shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), params)
    rows = jax.ShapeDtypeStruct((batch, dim), jnp.float32)
    for platforms in (PLATFORMS, ("cpu",)):
        try:
            exported = jax.export.export(jax.jit(predictions), platforms=platforms)(shapes, rows)
            return bytes(exported.serialize()), list(platforms)
        except Exception:  # noqa: BLE001 - a platform jaxlib cannot lower for: fall back to CPU only
            if platforms == ("cpu",):
                raise
    raise AssertionError("unreachable")


def manifest(model: dict, labels: dict, transform: dict, version: int | None, platforms: list[str],
             loopc_version: str) -> dict:
    import jax

    return {"format": bundle_score.BUNDLE_FORMAT, "model": model["name"], "version": version,
            "task": model["task"], "label": model["label"], "classes": labels.get("classes"),
            "feature_names": transform["names"], "features": [f["name"] for f in transform["features"]],
            "platforms": platforms, "jax_version": jax.__version__, "loopc_version": loopc_version,
            "files": list(BUNDLE_FILES)}


def write_bundle(artifact: Path, out: Path, *, version: int | None = None, card: str | None = None,
                 columns: dict[str, dict] | None = None, loopc_version: str = "0+unknown") -> Path:
    """Write the bundle of the model in ``artifact`` (a train step's folder) to ``out`` atomically.

    The files go to a hidden folder beside ``out`` that is renamed into place last; an existing
    non-empty ``out`` is refused (ExportError), so a bundle is never half-written or mixed.
    """
    from loopc.runtime.train.checkpoint import load_params

    artifact, out = Path(artifact), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"'{out}' exists and is not empty; choose a new folder or remove it")
    model, labels = _read_json(artifact / "model.json"), _read_json(artifact / "labels.json")
    transform = _read_json(artifact / "transform.json")
    if columns is None and (artifact / COLUMNS_FILE).is_file():  # the dataset's declared types (features step)
        columns = _read_json(artifact / COLUMNS_FILE)
    schema = input_schema(transform, columns)
    params = load_params(artifact / "params.npz")
    serialized, platforms = _serialized_predict(params, model["architecture"], model["task"],
                                                len(transform["names"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        shutil.copyfile(artifact / "params.npz", staging / "params.npz")
        shutil.copyfile(artifact / "transform.json", staging / "transform.json")
        shutil.copyfile(Path(bundle_score.__file__), staging / "score.py")
        shutil.copyfile(Path(input_cast.__file__), staging / "input_cast.py")
        shutil.copyfile(Path(expressions.__file__), staging / "expressions.py")
        (staging / "predict.jax").write_bytes(serialized)
        (staging / "model_card.md").write_text(card or _plain_card(model, version), encoding="utf-8")
        for name, value in (("model.json", model), ("input_schema.json", schema),
                            ("bundle.json", manifest(model, labels, transform, version, platforms, loopc_version))):
            (staging / name).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.is_dir():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _plain_card(model: dict, version: int | None) -> str:
    """A short card when the registry has none (a model exported straight from a run's artifact)."""
    title = f"{model['name']} v{version}" if version is not None else model["name"]
    return (f"# Model card: {title}\n\n- task: {model['task']}\n- label: {model['label']}\n"
            f"- features (in input order): {', '.join(model.get('features', []))}\n")
