"""The error types of the data package."""

from __future__ import annotations


class DataError(Exception):
    """A dataset cannot be read, does not match its schema, or fails its checks."""


class NoFiles(DataError):
    """A source matches no files (yet): late labels, an empty landing folder."""


def reason(error: BaseException) -> str:
    """Why a read failed, in words for a message that already names the path: pyarrow's FileNotFoundError
    for a missing path holds only the path itself."""
    return "no such file or folder" if isinstance(error, FileNotFoundError) else str(error)
