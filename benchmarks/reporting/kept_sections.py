"""The sections of a folder's previous leaderboard that a partial store cannot rebuild.

``python -m benchmarks.leaderboard --update`` writes the settings its store holds and keeps the
others as they were: their own files stay untouched (a new generation of the folder starts as a
copy of the old one), and their sections of the index pages (``leaderboard.md``,
``leaderboard.html``) are read back from the previous pages here. This is for a store that holds
only the experiments someone recomputed (another machine, a lost store): the other settings'
tables stay those of the runs that made them, and the index names them as kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.reporting.tables import TABLELESS_FAILURES

# A setting's id, as every section's title ends: "... [setting 8f08845663d9]" (then notes).
SETTING_IN_TITLE = re.compile(r"\[setting ([0-9a-f]+)\]")
MARKDOWN_SECTION = re.compile(r"^## .*$", re.MULTILINE)
HTML_SECTION = re.compile(
    r'<section class="setting" id="(?P<slug>[^"]*)">\n<h2>(?P<title>[^<]*)</h2>.*?</section>',
    re.DOTALL,
)


@dataclass(frozen=True)
class KeptSection:
    """One setting's section of a previous index page: its title and its text as written."""

    title: str
    text: str
    slug: str = ""  # the HTML page's anchor; markdown sections have none

    @property
    def setting_id(self) -> str:
        return setting_id_of(self.title)


def setting_id_of(title: str) -> str:
    found = SETTING_IN_TITLE.search(title)
    if found is None:
        raise ValueError(f"a leaderboard section title without its setting id: {title!r}")
    return found.group(1)


def markdown_sections(page: Path) -> list[KeptSection]:
    """Each ``## <title>`` section of a markdown index, up to the next one or to the index's
    closing list of failures in settings with no table, which the new store rewrites (none: no
    file)."""
    if not page.is_file():
        return []
    text = page.read_text()
    tableless = text.find(f"\n\n### {TABLELESS_FAILURES}")  # the store's, not a section's
    if tableless >= 0:
        text = text[:tableless]
    starts = [m.start() for m in MARKDOWN_SECTION.finditer(text)]
    ends = [start - 1 for start in starts[1:]]  # the sections were joined by one newline
    return [
        KeptSection(first_line(text[start:end]).removeprefix("## "), text[start:end])
        for start, end in zip(starts, [*ends, len(text)], strict=True)
    ]


def first_line(text: str) -> str:
    """A section's title line: what the index pages are ordered by."""
    return text.split("\n", 1)[0]


def html_sections(page: Path) -> list[KeptSection]:
    """Each ``<section class="setting">`` of an HTML index (none: no file)."""
    if not page.is_file():
        return []
    return [
        KeptSection(m.group("title"), m.group(0), m.group("slug"))
        for m in HTML_SECTION.finditer(page.read_text())
    ]


def kept(previous: list[KeptSection], rebuilt_ids: set[str]) -> list[KeptSection]:
    """The previous sections of settings this store does not rebuild."""
    return [s for s in previous if s.setting_id not in rebuilt_ids]


def kept_note(sections: list[KeptSection]) -> str:
    """The index's line that names the settings shown as a previous generation wrote them."""
    titles = "; ".join(s.title for s in sections)
    return (
        f"Kept from this folder's previous leaderboard (not in this store, written with "
        f"--update): {titles}."
    )
