"""Folder listings kept between runs: ``os.walk`` that ``stat``s an unchanged folder instead of listing it.

Adding, removing or renaming an entry of a folder moves the folder's mtime and ctime, so a folder whose
device, inode, mtime and ctime are what they were when it was listed has the same entries (the technique of
git's untracked cache). A listing is kept only if the folder had not changed in the ``racy_ns`` before it
was listed (a change within the file system's timestamp granularity could otherwise go unseen) and only if
no entry is a symbolic link (a link's target can turn from a folder into a file without the folder
changing). A folder that cannot be listed is skipped, as ``os.walk`` skips it, and not kept.
"""

from __future__ import annotations

import os
import time
from typing import Iterator

_SIGNATURE = 4  # [st_dev, st_ino, st_mtime_ns, st_ctime_ns, subfolders, files]


class Listings:
    """Folder -> [device, inode, mtime, ctime, subfolders, files]; ``known`` from the last run, ``seen`` in this one."""

    def __init__(self, known: dict[str, list], racy_ns: int):
        self.known, self.racy_ns = known, racy_ns
        self.seen: dict[str, list] = {}

    def changed(self) -> bool:
        """Whether saving would write something else than what was loaded."""
        return self.seen != self.known

    def walk(self, top: str | os.PathLike, followlinks: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
        """``os.walk(top, followlinks=True)``, top-down (pruning the subfolders list works), same folders and names."""
        if not followlinks:
            raise ValueError("Listings.walk follows links, as discovery does")
        stack = [os.fspath(top)]
        while stack:
            folder = stack.pop()
            listed = self._listing(folder)
            if listed is None:
                continue
            subfolders, files = list(listed[0]), list(listed[1])
            yield folder, subfolders, files
            stack.extend(_join(folder, name) for name in reversed(subfolders))

    def _listing(self, folder: str) -> tuple[list[str], list[str]] | None:
        try:
            stat = os.stat(folder)
        except OSError:
            stat = None
        signature = None if stat is None else [stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]
        old = self.known.get(folder)
        if signature is not None and type(old) is list and old[:_SIGNATURE] == signature and _valid(old):
            self.seen[folder] = old
            return old[4], old[5]
        scanned = _scan(folder)
        if scanned is None:
            return None
        subfolders, files, linked = scanned
        if signature is not None and not linked and time.time_ns() - max(signature[2:]) >= self.racy_ns:
            self.seen[folder] = signature + [subfolders, files]
        return subfolders, files


def _scan(folder: str) -> tuple[list[str], list[str], bool] | None:
    """Subfolders and other names as ``os.walk`` sorts them, and whether any entry is a link; None if unreadable."""
    subfolders, files, linked = [], [], False
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                (subfolders if is_dir else files).append(entry.name)
                linked = linked or _is_link(entry)
    except OSError:
        return None
    return subfolders, files, linked


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return True  # not known: not kept


def _valid(record: object) -> bool:
    """A record as ``_listing`` writes it (the index file may have been damaged)."""
    if not (type(record) is list and len(record) == 6 and type(record[4]) is list and type(record[5]) is list):
        return False
    try:  # str.join takes strings only: every name is checked in C
        "".join(record[4]), "".join(record[5])
    except TypeError:
        return False
    return True


def _join(folder: str, name: str) -> str:
    """``os.path.join(folder, name)`` for a name without a slash."""
    return folder + name if folder.endswith("/") else folder + "/" + name
