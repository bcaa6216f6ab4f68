"""The Python and JAX versions of the compiling side, recorded beside compiled plans for ``loopc doctor``."""

from __future__ import annotations

import platform
from importlib import metadata


def toolchain() -> dict[str, str]:
    """``{"python": "3.11.7", "jax": "0.4.38", "loopc": "0.1.0"}`` of this interpreter (JAX is not imported)."""
    return {"python": platform.python_version(), "jax": _version("jax"), "loopc": _version("loopc")}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def mismatches(compiled: dict[str, str], here: dict[str, str]) -> list[str]:
    """One line per version that differs: Python by major.minor, JAX and loopc exactly."""
    problems = []
    for name, label in (("python", "Python"), ("jax", "JAX"), ("loopc", "loopc")):
        want, have = str(compiled.get(name, "unknown")), here[name]
        same = want.split(".")[:2] == have.split(".")[:2] if name == "python" else want == have
        if not same:
            problems.append(f"{label} {have} here, but the plans were compiled with {label} {want}; "
                            f"install {label} {want} on this worker or recompile here")
    return problems
