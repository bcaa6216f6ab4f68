"""Direct database access for registry tests on either backend (to tamper, as a person with a SQL shell would)."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import psycopg

DB_ERRORS = (sqlite3.Error, psycopg.Error)


@contextmanager
def raw_connection(url: str):
    """An autocommit connection to the registry database at ``url`` whose ``execute`` takes ``%s``/``?`` SQL,
    closed when the block ends."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
    else:
        conn = psycopg.connect(url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def param(url: str) -> str:
    """The placeholder of ``url``'s backend."""
    return "?" if url.startswith("sqlite:") else "%s"
