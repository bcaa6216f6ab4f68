"""Open a registry by URL: the one place that knows which backend serves which scheme."""

from __future__ import annotations

import os
from pathlib import Path

from loopc.runtime.registry.interface import Registry, RegistryError, RegistryMissing

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
REGISTRY_ENV = "LOOPC_REGISTRY"


def project_registry_url(state: str | os.PathLike[str]) -> str:
    """The registry a run uses: ``$LOOPC_REGISTRY`` when set (it overrides the compiled one), else
    ``registry.db`` in the state folder."""
    return os.environ.get(REGISTRY_ENV) or f"sqlite:///{Path(state) / 'registry.db'}"


def registry_exists(url: str) -> bool:
    """True when a registry exists at ``url``; asking creates nothing (other failures raise RegistryError)."""
    try:
        open_registry(url, read_only=True).close()
    except RegistryMissing:
        return False
    return True


def open_registry(url: str | os.PathLike[str], *, read_only: bool = False, create: bool = True) -> Registry:
    """The registry at ``url``: ``postgresql://user@host:port/db``, ``sqlite:///path.db`` or a plain file path.

    ``read_only`` opens it for reading only (no write lock, works beside a writer and in a read-only
    folder; a missing registry is an error). ``create`` (writers) makes a new registry where none
    exists (a new SQLite file, or the tables in an empty PostgreSQL database); one that is damaged,
    not a loopc registry or newer is always refused.
    """
    text = os.fspath(url)
    if text.startswith(POSTGRES_SCHEMES):
        from loopc.runtime.registry.postgres import PostgresRegistry

        return PostgresRegistry(text, read_only=read_only, create=create and not read_only)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif text.startswith("sqlite:"):
        raise RegistryError(f"registry URL {url!r}: write sqlite:///relative.db or sqlite:////absolute.db")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise RegistryError(
            f"registry URL scheme '{scheme}' is not supported; use postgresql://user@host:port/database, "
            "sqlite:///relative/registry.db, sqlite:////absolute/registry.db or a plain path"
        )
    if not text or text == ":memory:":
        raise RegistryError(f"registry URL {url!r} names no file; give a path such as .loopc/registry.db")
    from loopc.runtime.registry.sqlite import SqliteRegistry

    return SqliteRegistry(text, read_only=read_only, create=create and not read_only)
