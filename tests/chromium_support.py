"""Open a page in headless Chromium (Debian's package; ci/chromium-up.sh installs it): the DOM it rendered
and every message the page wrote to the console (uncaught errors included)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

# Without the background-networking flags Chromium dials Google's hosts at start (refused on a closed network).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] (.*)")


@dataclass
class Dom(HTMLParser):
    """What a rendered page holds: tag counts, the text of elements with an id, the cells of each table row."""

    tags: dict[str, int] = field(default_factory=dict)
    by_id: dict[str, str] = field(default_factory=dict)
    rows: list[list[str]] = field(default_factory=list)
    _open_ids: list[tuple[str, str, list[str]]] = field(default_factory=list)
    _cell: list[str] | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        ident = dict(attrs).get("id")
        if ident:
            self._open_ids.append((tag, ident, []))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            _, ident, text = self._open_ids.pop()
            self.by_id[ident] = "".join(text).strip()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, _, text in self._open_ids:
            text.append(data)


@dataclass(frozen=True)
class Rendered:
    html: str
    dom: Dom
    console: list[str]


def render(chromium: str, page: Path) -> Rendered:
    """``page`` as headless Chromium rendered it (a fresh profile each time)."""
    with tempfile.TemporaryDirectory(prefix="loopc-chromium-") as profile:
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and done.stdout.strip(), f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    dom = Dom()
    dom.feed(done.stdout)
    dom.close()
    return Rendered(done.stdout, dom, [m.group(1) for m in CONSOLE.finditer(done.stderr)])
