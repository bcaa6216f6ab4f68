"""Where a pipeline keeps its state: artifact store and registry URLs as a spec may write them.

A spec (and so every emitted file) names places, never secrets: a URL with a password or a credential
in its query is refused; passwords and keys come from the environment (PGPASSWORD, ~/.pgpass, AWS_*)
or the filesystem's standard configuration.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

STORE_SCHEMES = ("file", "s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs")
REGISTRY_SCHEMES = ("postgresql", "postgres", "sqlite")
_SECRET_KEYS = re.compile(r"pass|secret|token|key|credential|sig", re.IGNORECASE)
_PLAIN = re.compile(r"^[^\s\x00-\x1f\x7f'\"`$\\]{1,1000}$")


def location_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` cannot be a store/registry location in a spec, or None."""
    if not _PLAIN.match(url):
        return (f"{url[:60]!r} is not a plain URL: no spaces, control characters, quotes, '$' or '\\', "
                "at most 1000 characters")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in schemes:
        return f"{url!r} needs one of the schemes {', '.join(s + '://' for s in schemes)}"
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as error:
        return f"{url!r} is not a valid URL ({error})"
    if password is not None or any(_SECRET_KEYS.search(key) for key, _ in parse_qsl(parts.query)):
        return ("a spec names places, not secrets: remove the password or key from the URL and give it in the "
                "environment (PGPASSWORD or ~/.pgpass for PostgreSQL, AWS_* for S3) where the jobs run")
    return None
