"""Artifacts on any filesystem pyarrow resolves (s3://, gs://, abfs://, hdfs://), published atomically.

Layout under the URL: ``artifacts/<key[:2]>/<key>/<writer>/...`` holds one writer's files and
``artifacts/<key[:2]>/<key>/_manifest.json`` commits them: it is written last (one PUT, atomic on
object stores) and names the writer folder and every file with its size. Readers trust only a
manifest; a writer killed mid-upload leaves a folder no manifest names, which is never read and
is swept later. Files stream in and out in chunks. Steps that need local paths read through a
bounded local cache (``LOOPC_STORE_CACHE_MB``, default 4096): a committed artifact is fetched
once into it, least recently used artifacts are evicted beyond the bound.

Credentials and endpoints come from the environment (``AWS_*`` including ``AWS_ENDPOINT_URL``) or
the filesystem's standard configuration, never from specs or generated files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pyarrow
import pyarrow.fs as pafs

from loopc.runtime import faults
from loopc.runtime.store.artifacts import MANIFEST, ArtifactStore, StoreError, check_key

CHUNK = 1 << 20
CACHE_ENV = "LOOPC_STORE_CACHE_MB"
STALE_ENV = "LOOPC_STORE_STALE_S"


def filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and base path of ``url``; S3 honours ``AWS_ENDPOINT_URL(_S3)`` and the region."""
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme == "s3":
            return pafs.S3FileSystem(**_s3_options()), url[len("s3://"):].strip("/")
        fs, path = pafs.FileSystem.from_uri(url)
        return fs, path.rstrip("/")
    except (pyarrow.ArrowException, OSError, ValueError) as error:
        raise StoreError(f"cannot open artifact store {url}: {error}; check the URL and the credentials "
                         "in the environment") from None


def _s3_options() -> dict[str, Any]:
    """Endpoint and region from the environment (pyarrow does not read AWS_ENDPOINT_URL itself)."""
    options: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(endpoint_override=parts.netloc or parts.path, scheme=parts.scheme or "https")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return options


class RemoteArtifactStore(ArtifactStore):
    """Artifacts on a pyarrow filesystem, with a bounded local cache under ``cache_dir``."""

    def __init__(self, url: str, cache_dir: str | os.PathLike[str]):
        self.url = url.rstrip("/")
        self.fs, self.base = filesystem(self.url)
        self.cache = Path(cache_dir)
        self._sizes: dict[Path, int] = {}  # bytes of each cached artifact, from its manifest

    def _prefix(self, key: str) -> str:
        key = check_key(key)
        return f"{self.base}/artifacts/{key[:2]}/{key}"

    def _call(self, what: str, action, *args):
        try:
            return action(*args)
        except (pyarrow.ArrowException, OSError) as error:
            raise StoreError(f"artifact store {self.url}: cannot {what}: {error}") from None

    def _manifest(self, key: str) -> dict[str, Any] | None:
        """The committed manifest of ``key``, or None when there is none (yet)."""
        location = f"{self._prefix(key)}/{MANIFEST}"
        info = self._call("look up an artifact", self.fs.get_file_info, location)
        if info.type != pafs.FileType.File:
            return None
        with self._call("read a manifest", self.fs.open_input_stream, location) as stream:
            return json.loads(stream.read().decode("utf-8"))

    def exists(self, key: str) -> bool:
        return self._manifest(key) is not None

    def manifest(self, key: str) -> dict[str, Any]:
        found = self._manifest(key)
        if found is None:
            raise StoreError(f"artifact {key} does not exist in {self.url}; run the step that produces it")
        return found

    def keys(self) -> list[str]:
        selector = pafs.FileSelector(f"{self.base}/artifacts", recursive=True, allow_not_found=True)
        infos = self._call("list artifacts", self.fs.get_file_info, selector)
        found = {Path(info.path).parent.name for info in infos if info.base_name == MANIFEST}
        return sorted(found)

    def open_file(self, key: str, name: str) -> BinaryIO:
        """A streaming reader of file ``name`` of the committed artifact ``key`` (nothing copied locally)."""
        manifest = self.manifest(key)
        if name not in manifest["files"]:
            raise StoreError(f"artifact {key} in {self.url} has no file {name!r}")
        return self._call("read an artifact", self.fs.open_input_stream,
                          f"{self._prefix(key)}/{manifest['writer']}/{name}")

    def _record_location(self, run_id: str, step_id: str) -> str:
        return f"{self.base}/runs/{run_id}/{step_id}.json"

    def put_record(self, run_id: str, step_id: str, record: dict[str, Any]) -> None:
        """Write a run record as one object (one PUT: readers see the old record or the new one)."""
        self._write_object(self._record_location(run_id, step_id),
                           json.dumps(record, sort_keys=True, indent=2).encode("utf-8"))

    def get_record(self, run_id: str, step_id: str) -> dict[str, Any] | None:
        location = self._record_location(run_id, step_id)
        if self._call("look up a run record", self.fs.get_file_info, location).type != pafs.FileType.File:
            return None
        with self._call("read a run record", self.fs.open_input_stream, location) as stream:
            try:
                return json.loads(stream.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return None

    def probe(self) -> None:
        location, data = f"{self.base}/.doctor-{uuid.uuid4().hex}", uuid.uuid4().bytes
        self._write_object(location, data, "write a probe object")
        try:
            with self._call("read a probe object", self.fs.open_input_stream, location) as stream:
                if stream.read() != data:
                    raise StoreError(f"artifact store {self.url}: a probe object read back different bytes")
        finally:
            self._call("delete a probe object", self.fs.delete_file, location)

    # ------------------------------------------------------------------ local cache

    def path(self, key: str) -> Path:
        """The artifact as a local folder: fetched into the cache on first use when it is committed."""
        local = self.cache / check_key(key)[:2] / key
        if (local / MANIFEST).is_file():
            os.utime(local / MANIFEST)
            return local
        manifest = self._manifest(key)
        if manifest is not None:
            self._fetch(key, manifest, local)
        return local

    def _fetch(self, key: str, manifest: dict[str, Any], local: Path) -> None:
        """Stream every file of a committed artifact into the cache; the manifest is written last."""
        temp = local.parent / f".fetch-{key}-{uuid.uuid4().hex[:8]}"
        try:
            for name, size in sorted(manifest["files"].items()):
                target = temp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with self._call("read an artifact", self.fs.open_input_stream,
                                f"{self._prefix(key)}/{manifest['writer']}/{name}") as source, \
                        target.open("wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
                if target.stat().st_size != size:
                    raise StoreError(f"artifact {key} in {self.url}: {name} has {target.stat().st_size} bytes, "
                                     f"its manifest says {size}; the store was changed by hand")
            (temp / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
            with contextlib.suppress(OSError):
                os.rename(temp, local)  # a concurrent fetch of the same key may have won; both are equal
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        self._evict(keep=local)

    def _evict(self, keep: Path) -> None:
        """Delete least recently used cached artifacts while the cache exceeds its bound.

        Cheap enough for every fetch: one stat per cached artifact (its manifest's mtime is its last use)
        and sizes from the manifests, each read once per process; the artifacts' files are never walked.
        """
        limit = int(os.environ.get(CACHE_ENV, "4096")) * 1024 * 1024
        entries = self._cached()
        total = sum(size for _, _, size in entries)
        for _, folder, size in sorted(entries, key=lambda entry: entry[0]):
            if total <= limit:
                break
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
                self._sizes.pop(folder, None)
                total -= size

    def _cached(self) -> list[tuple[float, Path, int]]:
        """(last use, folder, bytes) of every committed artifact in the cache."""
        entries = []
        for manifest in self.cache.glob(f"*/*/{MANIFEST}"):
            try:
                used = manifest.stat().st_mtime
                if manifest.parent not in self._sizes:
                    files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
                    self._sizes[manifest.parent] = sum(files.values())
            except (OSError, ValueError, KeyError):
                continue  # evicted by another process meanwhile, or not a manifest this code wrote
            entries.append((used, manifest.parent, self._sizes[manifest.parent]))
        return entries

    # ------------------------------------------------------------------ publish

    @contextlib.contextmanager
    def stage(self, key: str) -> Iterator[Path]:
        """Yield a local folder to fill; on success upload it under a fresh writer folder, then commit.

        The local copy then becomes the cached artifact, so this machine reads it without a download.
        """
        prefix, writer = self._prefix(key), f"w-{uuid.uuid4().hex[:12]}"
        staging = self.cache / key[:2] / f".staging-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            yield staging
            files = self._upload(staging, f"{prefix}/{writer}")
            manifest = {"files": files, "key": key, "writer": writer, "committed_at": time.time()}
            self._write_object(f"{prefix}/{MANIFEST}", json.dumps(manifest, sort_keys=True).encode("utf-8"))
            (staging / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
            local = self.cache / key[:2] / key
            shutil.rmtree(local, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rename(staging, local)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _upload(self, staging: Path, target: str) -> dict[str, int]:
        """Stream every staged file to ``target``; returns {relative path: size}."""
        files = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            name = path.relative_to(staging).as_posix()
            with path.open("rb") as source, \
                    self._call("write an artifact", self.fs.open_output_stream, f"{target}/{name}") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
            files[name] = path.stat().st_size
            faults.point("store.after_upload")
        return files

    def _write_object(self, location: str, data: bytes, what: str = "commit an artifact") -> None:
        with self._call(what, self.fs.open_output_stream, location) as sink:
            sink.write(data)

    # ------------------------------------------------------------------ leftovers

    def _writer_folders(self, key: str | None = None) -> Iterator[tuple[str, str, bool]]:
        """(key, writer folder, committed?) for every writer folder in the store (or of ``key``)."""
        root = f"{self.base}/artifacts"
        scope = root if key is None else self._prefix(key)
        selector = pafs.FileSelector(scope, recursive=key is None, allow_not_found=True)
        seen: dict[str, set[str]] = {}
        for info in self._call("list artifacts", self.fs.get_file_info, selector):
            parts = Path(info.path).relative_to(root).parts
            if len(parts) >= 3 and parts[2].startswith("w-"):
                seen.setdefault(parts[1], set()).add(parts[2])
        for owner, writers in sorted(seen.items()):
            committed = (self._manifest(owner) or {}).get("writer")
            for writer in sorted(writers):
                yield owner, writer, writer == committed

    def _idle_s(self, folder: str) -> float:
        """Seconds since anything in ``folder`` was last written."""
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        times = [info.mtime.timestamp() for info in self._call("list artifacts", self.fs.get_file_info, selector)
                 if info.mtime is not None]
        return time.time() - max(times, default=0.0)

    def leftover_keys(self) -> list[str]:
        return sorted({key for key, _, committed in self._writer_folders() if not committed})

    def remove_leftovers(self, key: str, older_than_s: float | None = None) -> int:
        """Delete uncommitted writer folders of ``key`` untouched for ``older_than_s`` (default
        ``$LOOPC_STORE_STALE_S`` or one hour): a writer on another machine may still be uploading a younger one."""
        limit = float(os.environ.get(STALE_ENV, "3600")) if older_than_s is None else older_than_s
        doomed = [writer for _, writer, committed in self._writer_folders(key)
                  if not committed and self._idle_s(f"{self._prefix(key)}/{writer}") >= limit]
        for writer in doomed:
            self._call("delete a leftover upload", self.fs.delete_dir, f"{self._prefix(key)}/{writer}")
        return len(doomed)
