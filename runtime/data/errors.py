"""The error types of the data package."""

from __future__ import annotations


class DataError(Exception):
    """A dataset cannot be read, does not match its schema, or fails its checks."""


class NoFiles(DataError):
    """A source matches no files (yet): late labels, an empty landing folder."""
