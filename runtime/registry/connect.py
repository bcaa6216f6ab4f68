"""Open a registry by URL: the one place that knows which backend serves which scheme."""

from __future__ import annotations

import os

from loopc.runtime.registry.interface import Registry, RegistryError


def open_registry(url: str | os.PathLike[str]) -> Registry:
    """The registry at ``url``: ``sqlite:///path.db`` (SQLAlchemy style) or a plain file path."""
    text = os.fspath(url)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif text.startswith("sqlite:"):
        raise RegistryError(f"registry URL {url!r}: write sqlite:///relative.db or sqlite:////absolute.db")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise RegistryError(
            f"registry URL {url!r}: scheme '{scheme}' is not supported yet; "
            "use sqlite:///relative/registry.db, sqlite:////absolute/registry.db or a plain path"
        )
    if not text or text == ":memory:":
        raise RegistryError(f"registry URL {url!r} names no file; give a path such as .loopc/registry.db")
    from loopc.runtime.registry.sqlite import SqliteRegistry

    return SqliteRegistry(text)
