"""Emitted files in tests: write them to a folder, compare them with tests/golden/<target>/<case>/.

LOOPC_UPDATE_GOLDEN=1 rewrites the golden folders for review.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_ROOT = Path(__file__).resolve().parent / "golden"


def write_tree(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``folder`` and return it."""
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return folder


def _write_golden(folder: Path, files: dict[str, str]) -> None:
    for old in sorted(folder.rglob("*"), reverse=True) if folder.exists() else []:
        old.unlink() if old.is_file() else old.rmdir()
    write_tree(folder, files)


def assert_matches_golden(target: str, case: str, files: dict[str, str]) -> None:
    """Every emitted file equals its golden copy and no golden file is missing or extra."""
    folder = GOLDEN_ROOT / target / case
    if os.environ.get("LOOPC_UPDATE_GOLDEN"):
        _write_golden(folder, files)
    expected = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert sorted(expected) == sorted(files), "files differ; review and run `make golden`"
    for path, text in files.items():
        assert text.encode("utf-8") == expected[path], f"{case}/{path} differs; review and run `make golden`"
