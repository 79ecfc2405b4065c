"""README.md and docs/: short README, generated CLI page, links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import cli_doc, paths

REPO = paths.REPO
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
TEXTS = [README, *PAGES]

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where links are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text()))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_docs_exist() -> None:
    assert PAGES, "docs/*.md: no pages"


def test_readme_at_most_250_lines() -> None:
    n = len(README.read_text().splitlines())
    assert n <= 250, f"README.md has {n} lines; at most 250 (move the detail to docs/)"


def test_cli_doc_is_generated() -> None:
    assert (DOCS / "cli.md").read_text() == cli_doc.render(), (
        "docs/cli.md differs from the argument parser: run "
        "`python -m harness.cli_doc > docs/cli.md`")


def test_cli_doc_check_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_doc.main(["--check"]) == 0


@pytest.mark.parametrize("path", TEXTS, ids=_name)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.is_relative_to(REPO):
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_name(dest)}")
    assert not broken, f"{_name(path)}: " + "; ".join(broken)


@pytest.mark.parametrize("path", TEXTS, ids=_name)
def test_no_paths_outside_the_repository(path: Path) -> None:
    text = path.read_text()
    for needle in ("../shared", "/work/"):
        assert needle not in text, f"{_name(path)} cites {needle!r}, outside the repository"


def test_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in _links(README)}
    missing = [_name(p) for p in PAGES if p.resolve() not in linked]
    assert not missing, f"README.md does not link {', '.join(missing)}"


def test_link_checker_sees_links() -> None:
    """The checks above would pass vacuously if the pattern found nothing."""
    assert len(_links(README)) >= len(PAGES)
    images = [t for t in _links(DOCS / "experiment.md") if t.endswith(".png")]
    assert images and all(t.startswith("../selftests/results/") for t in images)
