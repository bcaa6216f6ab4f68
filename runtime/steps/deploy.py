"""Deploy step kinds: gate (candidate vs champion), register (lineage, card), shadow, promote."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.registry.interface import (
    CHALLENGER,
    CHAMPION,
    NO_VERSION,
    AliasConflict,
    RegistryError,
)
from loopc.runtime.steps.common import (
    current_champion,
    evaluation,
    load_bundle,
    loopc_version,
)
from loopc.runtime.steps.files import read_json, writing
from loopc.runtime.steps.split_scores import score_split
from loopc.runtime.steps.validate import verify_sources
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact


def _actor(ctx: StepContext) -> str:
    return f"loopc run {ctx.run_id}"


def _once(ctx: StepContext) -> str:
    """The event key of this step in this run: a resumed step records its event once."""
    return f"{ctx.run_id}/{ctx.doc.id}"


CHAMPION_PREDICTIONS = "champion_predictions.npy"  # in a gate artifact: the champion's predictions of eval_rows


def _champion_evaluation(ctx: StepContext, champion, eval_rows: dict,
                         gate: dict[str, Any]) -> tuple[dict, int, bool]:
    """The champion scored on the SAME raw rows as the candidate, through its own fitted transform,
    read by record batches: (its evaluation, the batches read, whether it was scored here). A champion trained on
    these rows predicted them then (only labels and groups are read). Its predictions are kept in the gate's artifact
    (``CHAMPION_PREDICTIONS``): shadow compares the champion on the same rows without scoring them again."""
    bundle = load_bundle(local_artifact(ctx.state, champion.artifact))
    split = eval_rows["split"]
    stored = bundle.stored_predictions(eval_rows["split_artifact"], (split,)).get(split)
    scores = score_split(ctx.state, eval_rows["split_artifact"], eval_rows["split"], [bundle], labels_by=bundle,
                         gate=gate, known=[stored])
    if scores.labels is None:
        raise StepFailed(f"the {eval_rows['split']} rows lack the label column '{bundle.model['label']}'")
    with writing(ctx.out_dir / CHAMPION_PREDICTIONS) as path:
        np.save(path, scores.predictions[0])
    return evaluation(bundle.task, scores.labels, scores.predictions[0], scores.groups, gate,
                      bundle.num_classes), scores.batches, stored is None


def _gated_champion_predictions(ctx: StepContext, champion, split_artifact: str, split: str) -> np.ndarray | None:
    """The gate's predictions of ``champion`` on ``split`` of ``split_artifact``, when it scored exactly those."""
    gate_id, _ = ctx.upstream_of_kind("gate")
    folder = ctx.artifact(gate_id)
    if not (folder / "gate.json").is_file() or not (folder / CHAMPION_PREDICTIONS).is_file():
        return None
    scored = read_json(folder / "gate.json").get("champion_rows")
    if scored != {"artifact": champion.artifact, "split_artifact": split_artifact, "split": split}:
        return None
    return np.load(folder / CHAMPION_PREDICTIONS)


def run_gate(ctx: StepContext) -> dict[str, Any]:
    """Decide whether the candidate may replace the champion; a rejection stops later steps."""
    from loopc.runtime.gate.decide import GateError, decide_gate

    name, gate = ctx.config["model_name"], ctx.config["gate"]
    evaluate_id, evaluated = ctx.upstream_of_kind("evaluate")
    candidate = read_json(ctx.artifact(evaluate_id) / "metrics.json")
    artifact = evaluated["outputs"]["model_artifact"]
    champion = current_champion(ctx, name)
    if champion is not None and champion.artifact == artifact:
        message = f"this model is already the champion (version {champion.version}): nothing new to gate"
        return {"passed": True, "status": "champion", "summary": message, "champion_version": champion.version,
                "stop": f"already the champion (version {champion.version})"}
    champion_eval, batches, scored = (None, 0, False) if champion is None else _champion_evaluation(
        ctx, champion, evaluated["outputs"]["eval_rows"], gate)
    try:
        decision = decide_gate(gate, task=ctx.config["task"], candidate=candidate, champion=champion_eval)
    except GateError as exc:
        raise StepFailed(f"gate of model '{name}': {exc}") from None
    eval_rows = evaluated["outputs"]["eval_rows"]
    details = {**decision.to_dict(), "champion_version": champion.version if champion else None,
               "candidate": candidate, "champion": champion_eval, "model_artifact": artifact,
               "champion_rows": None if champion is None else {"artifact": champion.artifact, **eval_rows}}
    atomic_write_json(ctx.out_dir / "gate.json", details)
    outputs = {"passed": decision.passed, "status": decision.status, "summary": decision.summary,
               "champion_version": champion.version if champion else None, "decision": decision.to_dict(),
               "batches": batches, "scored": ["champion"] if scored else []}
    if decision.status == "rejected":
        ctx.registry.record_event("gate_rejected", name, None, _actor(ctx), decision.summary,
                                  {"run_id": ctx.run_id, "artifact": artifact}, event_key=_once(ctx))
        outputs["stop"] = rejection(decision)
    ctx.log.info("gate: %s", decision.summary)
    return outputs


def rejection(decision) -> str:
    """Why the gate stopped the run, naming each failed rule (the run summary shows it)."""
    failed = "; ".join(f"{check.rule}: {check.detail}" for check in decision.failures)
    return f"the gate rejected the candidate ({failed})" if failed else "the gate rejected the candidate"


def _lineage(ctx: StepContext, model: dict[str, Any]) -> dict[str, Any]:
    datasets = {r["outputs"]["dataset"]: r["outputs"]["fingerprint"]
                for r in ctx.upstream.values() if r.get("kind") == "validate"}
    return {
        "step_fingerprints": {step: r.get("fingerprint") for step, r in sorted(ctx.upstream.items())},
        "step_keys": {step: r.get("key") for step, r in sorted(ctx.upstream.items())},
        "dataset_fingerprints": datasets, "code_version": loopc_version(),
        "seed": model.get("training", {}).get("seed"), "run_id": ctx.run_id, "pipeline": ctx.doc.pipeline,
    }


def _model_card(ctx: StepContext, version, pipeline: dict[str, Any], model: dict[str, Any]) -> None:
    """Write the model card into the artifact and at its stable path under the state dir."""
    from loopc.runtime.registry.modelcard import card_path, render_model_card
    from loopc.runtime.store.artifacts import atomic_write_bytes

    evaluate_id, _ = ctx.upstream_of_kind("evaluate")
    evaluation_result = read_json(ctx.artifact(evaluate_id) / "metrics.json")
    _, features = ctx.upstream_of_kind("features")
    datasets = {r["outputs"]["dataset"]: {"fingerprint": r["outputs"]["fingerprint"], "rows": r["outputs"]["rows"],
                                          "splits": features["outputs"].get("rows", {})}
                for r in ctx.upstream.values() if r.get("kind") == "validate"}
    _, gate = ctx.upstream_of_kind("gate")
    fairness = {column: {k: v for k, v in gaps.items() if k.endswith("_difference")}
                for column, gaps in evaluation_result.get("fairness", {}).items()}
    text = render_model_card(version, pipeline=pipeline, model=model, gate=gate["outputs"].get("decision"),
                             fairness=fairness, data=datasets, slices=evaluation_result.get("slices"),
                             trained=_trained(ctx, evaluated_model_artifact(ctx)))
    (ctx.out_dir / "model_card.md").write_text(text, encoding="utf-8")
    atomic_write_bytes(card_path(ctx.state, version.model, version.version), text.encode("utf-8"))


def evaluated_model_artifact(ctx: StepContext) -> str:
    _, evaluated = ctx.upstream_of_kind("evaluate")
    return evaluated["outputs"]["model_artifact"]


def _trained(ctx: StepContext, artifact: str) -> dict[str, Any] | None:
    """{"epochs", "best_epoch"} from the model's training history (None when the artifact has none)."""
    path = local_artifact(ctx.state, artifact) / "history.json"
    if not path.is_file():
        return None
    history = read_json(path)
    return {"epochs": len(history.get("history", [])), "best_epoch": history.get("best_epoch")}


def run_register(ctx: StepContext) -> dict[str, Any]:
    """A new registry version with lineage (nothing new when this artifact is registered already)."""
    name, model, pipeline = ctx.config["model"]["name"], ctx.config["model"], ctx.config["pipeline"]
    _, gate = ctx.upstream_of_kind("gate")
    evaluate_id, evaluated = ctx.upstream_of_kind("evaluate")
    artifact = evaluated["outputs"]["model_artifact"]
    existing = ctx.registry.find_by_artifact(name, artifact)
    if existing is None:
        verify_sources(ctx)
    version = existing or ctx.registry.register_version(
        name, artifact=artifact, spec_hash=ctx.doc.spec_hash, lineage=_lineage(ctx, model),
        metrics=evaluated["outputs"]["metrics"], gate=gate["outputs"].get("decision"), actor=_actor(ctx))
    atomic_write_json(ctx.out_dir / "version.json", version.to_dict())
    _model_card(ctx, version, pipeline, model)
    champion = ctx.registry.get_alias(name, CHAMPION)
    candidate = gate["outputs"].get("passed") or gate["outputs"].get("status") == "needs_approval"
    challenger = candidate and (champion is None or champion.version != version.version)
    if challenger and ctx.registry.aliases(name).get(CHALLENGER) != version.version:
        ctx.registry.set_alias(name, CHALLENGER, version.version, actor=_actor(ctx),
                               reason=f"passed the gate: {gate['outputs'].get('summary', '')}")
    ctx.log.info("model %s version %d (%s)", name, version.version, "new" if existing is None else "existing")
    return {"model": name, "version": version.version, "new": existing is None, "status": version.status,
            "model_artifact": artifact}


def run_shadow(ctx: StepContext) -> dict[str, Any]:
    """Challenger and champion score the same newest rows (the test split); agreement decides."""
    from loopc.runtime.gate.shadow import ShadowError, compare_shadow

    name, task, shadow = ctx.config["model_name"], ctx.config["task"], ctx.config["shadow"]
    _, registered = ctx.upstream_of_kind("register")
    number = registered["outputs"]["version"]
    champion = ctx.registry.get_alias(name, CHAMPION)
    if champion is None or champion.version == number:
        why = "no champion yet" if champion is None else "the challenger is the champion"
        return {"passed": True, "rows": 0, "summary": f"{why}: nothing to compare"}
    _, features = ctx.upstream_of_kind("features")
    split_artifact = features["outputs"]["split_artifact"]
    challenger = load_bundle(local_artifact(ctx.state, ctx.registry.version(name, number).artifact))
    incumbent = load_bundle(local_artifact(ctx.state, champion.artifact))
    # the gate scored the champion on these rows (or its train step did, on the same data), and the challenger's
    # train step did: neither is scored again
    gated = _gated_champion_predictions(ctx, champion, split_artifact, "test")
    known = [incumbent.stored_predictions(split_artifact, ("test",)).get("test") if gated is None else gated,
             challenger.stored_predictions(split_artifact, ("test",)).get("test")]
    scores = score_split(ctx.state, split_artifact, "test", [incumbent, challenger], labels_by=challenger,
                         known=known)
    try:
        result = compare_shadow(task, *scores.predictions, scores.labels, shadow)
    except ShadowError as exc:
        raise StepFailed(f"shadow of model '{name}': {exc}") from None
    short = shadow_rows_warning(result.rows, shadow)
    if short:
        ctx.log.warning("%s", short)
    atomic_write_json(ctx.out_dir / "shadow.json", {**result.to_dict(), "champion_version": champion.version,
                                             "challenger_version": number, "warning": short})
    ctx.registry.record_event("shadow", name, number, _actor(ctx), result.summary,
                              {"champion_version": champion.version, "agreement": result.agreement},
                              event_key=_once(ctx))
    return {"passed": result.passed, "rows": result.rows, "agreement": result.agreement,
            "summary": result.summary + (f" ({short})" if short else ""), "champion_version": champion.version,
            "batches": scores.batches,
            "scored": [role for role, k in zip(("champion", "challenger"), known, strict=True) if k is None]}


def shadow_rows_warning(rows: int, shadow: dict[str, Any]) -> str:
    """Why no challenger can pass this shadow when the test split has fewer rows than ``min_rows`` ('' if it has
    enough). ``loopc validate`` warns beforehand when the dataset's row_count max bounds the split (LPC601)."""
    need = int(shadow.get("min_rows", 100))
    if rows >= need:
        return ""
    return (f"the test split has {rows} rows, fewer than deploy.shadow.min_rows {need}: no challenger can pass the "
            "shadow on this data; lower deploy.shadow.min_rows or give the test split more rows")


def _holds(ctx: StepContext) -> list[str]:
    """Why the version may not be promoted automatically (empty: it may)."""
    _, gate = ctx.upstream_of_kind("gate")
    held = []
    if not gate["outputs"].get("passed"):
        held.append(f"the gate says {gate['outputs'].get('status')}: {gate['outputs'].get('summary', '')}")
    shadow = next((r for r in ctx.upstream.values() if r.get("kind") == "shadow"), None)
    if shadow is not None and not shadow["outputs"].get("passed", False):
        held.append(f"shadow {shadow['outputs'].get('summary', 'failed')}")
    if ctx.config.get("human_approval_required"):
        held.append("a person must approve the promotion (deploy.approval is manual or the risk class is high)")
    return held


def _already_champion(ctx: StepContext, name: str, number: int) -> dict[str, Any]:
    """Resumed after the promotion committed (or promoted by someone else): clear a stale challenger, report."""
    ctx.registry.promote(name, number, actor=_actor(ctx), reason=f"resumed run {ctx.run_id}", expect_current=number)
    moves = [e for e in ctx.registry.audit_log(name)
             if e.action == "set_alias" and e.alias == CHAMPION and e.version == number and e.actor == _actor(ctx)]
    if not moves:
        return {"promoted": False, "version": number, "summary": f"version {number} is already {CHAMPION}"}
    previous = moves[-1].from_version
    return {"promoted": True, "version": number, "previous": previous,
            "summary": f"version {number} is now {CHAMPION}" + (f" (was {previous})" if previous else "")}


def run_promote(ctx: StepContext) -> dict[str, Any]:
    """Move the champion alias when gate, shadow and approval allow; otherwise say how to approve.

    The move (archive the old champion, move the alias, clear the challenger, audit) is one registry
    transaction; a resumed step repeats it harmlessly and clears a challenger left on the champion.
    """
    name, alias = ctx.config["model_name"], CHAMPION
    _, registered = ctx.upstream_of_kind("register")
    number = registered["outputs"]["version"]
    current = ctx.registry.get_alias(name, alias)
    if current is not None and current.version == number:
        return _already_champion(ctx, name, number)
    held = _holds(ctx)
    if held:
        how = f"approve with: loopc registry promote {name} {number} --reason \"...\" --root {ctx.root}"
        summary = f"version {number} stays {CHALLENGER}: {'; '.join(held)}; {how}"
        ctx.registry.record_event("promotion_held", name, number, _actor(ctx), "; ".join(held), event_key=_once(ctx))
        return {"promoted": False, "version": number, "summary": summary, "held": held}
    reason = f"gate and shadow passed in run {ctx.run_id}"
    try:
        previous = ctx.registry.promote(name, number, actor=_actor(ctx), reason=reason,
                                        expect_current=current.version if current else NO_VERSION)
    except AliasConflict as exc:
        raise StepFailed(f"{alias} of '{name}' moved while this run was going ({exc}); run again") from None
    except RegistryError as exc:
        raise StepFailed(f"promoting '{name}' version {number}: {exc}") from None
    ctx.log.info("promoted %s version %d to %s (previous %s)", name, number, alias, previous)
    return {"promoted": True, "version": number, "previous": previous,
            "summary": f"version {number} is now {alias}" + (f" (was {previous})" if previous else "")}
