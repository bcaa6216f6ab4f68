"""Folder listings kept in the validate cache's index (compiler/spec/listing.py): a walk gives what ``os.walk`` gives
for the tree as it is now, and an unchanged folder is not listed again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import loopc.compiler.api as api
from loopc.compiler.spec import cache as cache_module
from loopc.compiler.spec import listing as listing_module
from loopc.compiler.spec.cache import ValidateCache
from loopc.compiler.spec.listing import Listings

BASE = Path(__file__).resolve().parent / "diff_cases" / "base"
PAST_NS = 1_700_000_000_000_000_000  # 2023: far from the tick in which a test changes a folder


def make_tree(root: Path) -> Path:
    for relative in ("a/pipeline.yaml", "a/model/m.yaml", "a/model/deep/x.yaml", "b/notes.txt", "top.yaml"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("x: 1\n")
    return root


def age(root: Path | str) -> None:
    """Every folder's mtime set far in the past, so the next change of a folder gives it another mtime."""
    for folder, _, _ in os.walk(root, followlinks=True):
        os.utime(folder, ns=(PAST_NS, PAST_NS))


def walked(walk, root: Path | str) -> list:
    return [(folder, sorted(subfolders), sorted(files)) for folder, subfolders, files in walk(root, followlinks=True)]


def kept_walk(root: Path | str, known: dict | None = None) -> tuple[list, Listings]:
    listings = Listings(json.loads(json.dumps(known or {})), racy_ns=0)  # as saved and loaded
    return walked(listings.walk, root), listings


def counting_scans(monkeypatch) -> list[str]:
    scanned: list[str] = []
    scan = listing_module._scan
    monkeypatch.setattr(listing_module, "_scan", lambda folder: scanned.append(folder) or scan(folder))
    return scanned


@pytest.mark.parametrize("spelling", ["ABSOLUTE", ".", "tree", "tree/", "./tree"])
def test_a_walk_gives_what_os_walk_gives_and_an_unchanged_folder_is_not_listed_again(tmp_path, monkeypatch, spelling):
    make_tree(tmp_path / "tree")
    monkeypatch.chdir(tmp_path / "tree" if spelling == "." else tmp_path)
    root = str(tmp_path / "tree") if spelling == "ABSOLUTE" else spelling  # as given: "tree/" keeps its slash
    age(root)
    cold, listings = kept_walk(root)
    assert cold == walked(os.walk, root) and len(listings.seen) == 5
    scanned = counting_scans(monkeypatch)
    warm, again = kept_walk(root, listings.seen)
    assert warm == cold and scanned == [] and not again.changed()


def test_pruning_subfolders_is_obeyed_as_by_os_walk(tmp_path):
    root = make_tree(tmp_path / "tree")
    age(root)

    def pruned(walk) -> list[str]:
        folders = []
        for folder, subfolders, _ in walk(root, followlinks=True):
            subfolders[:] = [d for d in subfolders if d != "model"]
            folders.append(folder)
        return folders

    listings = Listings({}, racy_ns=0)
    assert pruned(listings.walk) == pruned(os.walk) == pruned(Listings(listings.seen, racy_ns=0).walk)
    assert str(root / "a" / "model") not in listings.seen  # never visited, never kept


@pytest.mark.parametrize("change", ["add a file", "remove a file", "rename a file", "add a folder", "remove a folder",
                                    "file replaced by a folder", "folder replaced by a file"])
def test_a_changed_folder_is_listed_again(tmp_path, change):
    root = make_tree(tmp_path / "tree")
    age(root)
    before, listings = kept_walk(root)
    model = root / "a" / "model"
    if change == "add a file":
        (model / "new.yaml").write_text("x: 2\n")
    elif change == "remove a file":
        (model / "m.yaml").unlink()
    elif change == "rename a file":
        (model / "m.yaml").rename(model / "n.yaml")
    elif change == "add a folder":
        (model / "more").mkdir()
    elif change == "remove a folder":
        shutil.rmtree(model / "deep")
    elif change == "file replaced by a folder":
        (model / "m.yaml").unlink()
        (model / "m.yaml").mkdir()
        (model / "m.yaml" / "inner.yaml").write_text("x: 3\n")
    else:
        shutil.rmtree(model / "deep")
        (model / "deep").write_text("x: 4\n")
    after, _ = kept_walk(root, listings.seen)
    assert after == walked(os.walk, root) != before


def test_a_folder_changed_within_the_racy_window_is_not_kept(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "tree")  # every folder changed just now
    listings = Listings({}, racy_ns=2_000_000_000)
    assert walked(listings.walk, root) == walked(os.walk, root) and listings.seen == {}
    scanned = counting_scans(monkeypatch)
    walked(Listings(listings.seen, racy_ns=2_000_000_000).walk, root)
    assert len(scanned) == 5  # listed again: a change in the same timestamp tick would keep its mtime


def test_a_folder_holding_a_link_is_never_kept(tmp_path):
    root = make_tree(tmp_path / "tree")
    target = tmp_path / "elsewhere" / "target"
    target.mkdir(parents=True)
    (target / "linked.yaml").write_text("x: 5\n")
    (root / "b" / "link").symlink_to(target)
    age(root)
    before, listings = kept_walk(root)
    assert (str(root / "b" / "link"), [], ["linked.yaml"]) in before
    assert str(root / "b") not in listings.seen
    shutil.rmtree(target)  # the link now names a file; the folder holding the link did not change
    target.write_text("x: 6\n")
    after, _ = kept_walk(root, listings.seen)
    assert after == walked(os.walk, root)
    assert (str(root / "b"), [], ["link", "notes.txt"]) in after


def test_a_folder_that_vanishes_during_the_walk_is_skipped_as_by_os_walk(tmp_path):
    root = make_tree(tmp_path / "tree")
    age(root)
    _, listings = kept_walk(root)

    def removing(walk) -> list[str]:
        folders = []
        for folder, _, _ in walk(root, followlinks=True):
            folders.append(folder)
            if folder == str(root / "a"):
                shutil.rmtree(root / "a" / "model")  # after 'a' was listed: its listing still names it
        return folders

    kept = removing(Listings(listings.seen, racy_ns=0).walk)
    make_tree(root)
    assert kept == removing(os.walk)
    assert sorted(kept) == [str(root), str(root / "a"), str(root / "b")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder whatever its mode")
def test_an_unreadable_folder_is_skipped_as_by_os_walk(tmp_path):
    root = make_tree(tmp_path / "tree")
    age(root)
    _, listings = kept_walk(root)
    (root / "a" / "model").chmod(0)
    try:
        assert kept_walk(root, listings.seen)[0] == walked(os.walk, root)
        assert str(root / "a" / "model") not in kept_walk(root, listings.seen)[1].seen
    finally:
        (root / "a" / "model").chmod(0o755)


@pytest.mark.parametrize("damage", [5, "abcdef", [1, 2], [0, 0, 0, 0, "x", []], [0, 0, 0, 0, [1], []],
                                    [0, 0, 0, 0, [], [None]], {"a": 1}])
def test_a_damaged_record_is_listed_again(tmp_path, damage):
    root = make_tree(tmp_path / "tree")
    stat = os.stat(root)
    if isinstance(damage, list) and len(damage) == 6:  # a matching signature with damaged names
        damage[:4] = [stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]
    assert kept_walk(root, {str(root): damage})[0] == walked(os.walk, root)


def test_a_new_pipeline_in_a_kept_folder_is_found_by_validate(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "_RACY_NS", 0)
    project = tmp_path / "specs"
    shutil.copytree(BASE, project / "one")
    age(project)
    cache = ValidateCache(tmp_path / "cache")
    assert api.validate_project(project, cache=cache) == 1
    scanned = counting_scans(monkeypatch)
    assert api.validate_project(project, cache=cache) == 1 and scanned == []  # every listing from the index
    shutil.copytree(BASE, project / "two")
    pipeline = project / "two" / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("name: churn", "name: churn_two", 1))
    assert api.validate_project(project, cache=cache) == 2
    assert scanned[0] == str(project)  # the root changed: listed again


def test_the_index_keeps_listings_and_a_damaged_folders_table_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "_RACY_NS", 0)
    project = tmp_path / "specs"
    shutil.copytree(BASE, project)
    age(project)
    cache = ValidateCache(tmp_path / "cache")
    assert api.validate_project(project, cache=cache) == 1
    (index,) = cache.folder.glob("index/*.json")
    data = json.loads(index.read_bytes())
    assert set(data["folders"]) == {str(project)}  # the config group folders are not walked
    data["folders"] = [1]
    index.write_text(json.dumps(data))
    assert api.validate_project(project, cache=cache) == 1


def test_listings_walk_only_follows_links(tmp_path):
    with pytest.raises(ValueError, match="follows links"):
        next(Listings({}, racy_ns=0).walk(tmp_path, followlinks=False))
