"""Direct database access for registry tests on either backend (to tamper, as a person with a SQL shell would)."""

from __future__ import annotations

import sqlite3

import psycopg

DB_ERRORS = (sqlite3.Error, psycopg.Error)


def raw_connection(url: str):
    """An autocommit connection to the registry database at ``url`` whose ``execute`` takes ``%s``/``?`` SQL."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
    return psycopg.connect(url, autocommit=True)


def param(url: str) -> str:
    """The placeholder of ``url``'s backend."""
    return "?" if url.startswith("sqlite:") else "%s"
