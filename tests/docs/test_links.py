"""The docs stand alone: every relative link in the repository's Markdown resolves to a file
of the repository (and to a heading, when it names one), and nothing refers readers to
files outside it."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.S | re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.M)
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md|DESIGN:")


def _markdown_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"git cannot list the repository's files: {exc}")
    return [ROOT / p for p in listed if "node_modules" not in p]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


def _broken(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        where = (path.parent / file_part).resolve() if file_part else path
        name = f"{path.relative_to(ROOT)}: ({target})"
        if not where.is_relative_to(ROOT):
            problems.append(f"{name} points outside the repository")
        elif not where.exists():
            problems.append(f"{name}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            problems.append(f"{name}: no heading with the anchor #{anchor}")
    return problems


def test_relative_links_resolve() -> None:
    files = _markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "http-api.md" in files
    problems = [p for path in files for p in _broken(path)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_nothing_refers_outside_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "*.md", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    here = Path(__file__).relative_to(ROOT).as_posix()
    found = [
        f"{p}:{n}: {line.strip()}"
        for p in listed
        if p != here
        for n, line in enumerate((ROOT / p).read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "references to documents outside the repository:\n" + "\n".join(found)


def test_slug_follows_github() -> None:
    assert slug("Watching the deployed model between experiments") == (
        "watching-the-deployed-model-between-experiments"
    )
    assert slug("`sharpen get`: one experiment") == "sharpen-get-one-experiment"
    assert slug("POST /v1/models/{name}/records") == "post-v1modelsnamerecords"
