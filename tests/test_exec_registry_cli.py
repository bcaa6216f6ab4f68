"""``loopc registry list|show|promote|rollback`` against a real SQLite registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION

MODEL = "churn_classifier"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project whose registry holds v1 (champion) and v2 (rejected by its gate)."""
    with open_registry(f"sqlite:///{tmp_path / '.loopc' / 'registry.db'}") as registry:
        for number, status in ((1, "passed"), (2, "rejected")):
            registry.register_version(
                MODEL, artifact=f"artifacts/aa/model{number}", spec_hash="h",
                lineage={"dataset_fingerprints": {"customers": f"fp{number}" * 8}, "seed": 7, "code_version": "0.1"},
                metrics={"auc": 0.8 + number / 100}, gate={"status": status, "passed": status == "passed", "checks": []},
                actor="test")
        registry.set_alias(MODEL, CHAMPION, 1, actor="test", reason="first")
    return tmp_path


def champion(root: Path) -> int:
    with open_registry(f"sqlite:///{root / '.loopc' / 'registry.db'}") as registry:
        return registry.get_alias(MODEL, CHAMPION).version


def test_list_shows_versions_aliases_and_metrics(root, capsys):
    assert main(["registry", "list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert MODEL in out and "champion" in out and "auc=0.81" in out and "rejected" in out


def test_show_prints_one_version(root, capsys):
    assert main(["registry", "show", MODEL, "2", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert '"version": 2' in out and "model2" in out


def test_show_prints_only_json_on_stdout_and_the_card_path_on_stderr(root, capsys):
    (root / ".loopc" / "cards").mkdir(parents=True)
    (root / ".loopc" / "cards" / f"{MODEL}-v2.md").write_text("# card\n")
    assert main(["registry", "show", MODEL, "2", "--root", str(root)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["version"] == 2
    assert f"{MODEL}-v2.md" in captured.err


def test_promote_by_hand_is_audited_and_rollback_moves_back(root, capsys):
    assert main(["registry", "promote", MODEL, "2", "--reason", "business sign-off", "--actor", "ana",
                 "--root", str(root)]) == 0
    assert champion(root) == 2
    with open_registry(f"sqlite:///{root / '.loopc' / 'registry.db'}") as registry:
        entries = [(e.action, e.actor, e.reason) for e in registry.audit_log(MODEL)]
    assert ("manual_promotion", "ana", "business sign-off") in entries
    assert main(["registry", "rollback", MODEL, "--reason", "regression in prod", "--root", str(root)]) == 0
    assert champion(root) == 1
    assert "rolled back" in capsys.readouterr().out


def test_promote_requires_a_reason(root, capsys):
    assert main(["registry", "promote", MODEL, "2", "--root", str(root)]) == 2
    assert "--reason" in capsys.readouterr().err
    assert champion(root) == 1


@pytest.mark.parametrize("argv, message", [
    (["registry", "show", MODEL, "9"], "no version 9"),
    (["registry", "list"], "no registry"),
    (["registry", "list", "nosuch"], f"unknown model 'nosuch' in registry {{root}}/.loopc/registry.db; known models: {MODEL}"),
    (["registry", "rollback", "nosuch", "--reason", "r"], "unknown model 'nosuch'"),
])
def test_errors_are_one_line_without_traceback(root, tmp_path, capsys, argv, message):
    where = str(tmp_path / "empty") if argv == ["registry", "list"] else str(root)
    assert main([*argv, "--root", where]) == 1
    err = capsys.readouterr().err
    assert message.format(root=root) in err and "Traceback" not in err
