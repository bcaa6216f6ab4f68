"""Byte-for-byte comparison of emitted files with tests/golden/<target>/<case>/ (LOOPC_UPDATE_GOLDEN=1 rewrites)."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_ROOT = Path(__file__).resolve().parent / "golden"


def _write_golden(folder: Path, files: dict[str, str]) -> None:
    for old in sorted(folder.rglob("*"), reverse=True) if folder.exists() else []:
        old.unlink() if old.is_file() else old.rmdir()
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def assert_matches_golden(target: str, case: str, files: dict[str, str]) -> None:
    """Every emitted file equals its golden copy and no golden file is missing or extra."""
    folder = GOLDEN_ROOT / target / case
    if os.environ.get("LOOPC_UPDATE_GOLDEN"):
        _write_golden(folder, files)
    expected = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert sorted(expected) == sorted(files), "files differ; review and run `make golden`"
    for path, text in files.items():
        assert text.encode("utf-8") == expected[path], f"{case}/{path} differs; review and run `make golden`"
