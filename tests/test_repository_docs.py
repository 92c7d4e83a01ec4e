"""The repository explains itself.

No file cites the reference documents kept outside the repository (the facts they held
are in docs/), and every link to a section of one of the repository's Markdown files
(``docs/graph.md#delta-tokens-expire`` in a comment, ``[...](../docs/graph.md#...)`` or
``[...](#...)`` in Markdown) names a heading of that file, by GitHub's anchor rules.
"""

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Spelled in two parts, so that this file does not cite them itself.
OUTSIDE_DOCUMENTS = ("graph" + "_contract", "booking" + "_platform")
SECTION = "\u00a7"
OUTSIDE_CITATION = re.compile(
    "|".join(
        [
            *OUTSIDE_DOCUMENTS,
            rf"\bcontract\s*{SECTION}",  # "contract" and a section sign
            rf"[(,;]\s*{SECTION}\s*\d",  # a bare section number: "(", ", " or "; "
            rf"^[\s#*/\"'-]*{SECTION}\s*\d",  # one that continues a comment line
        ]
    ),
    re.IGNORECASE,
)
# A repository path ending in .md, then #anchor; not part of a URL or a longer path.
FILE_LINK = re.compile(r"(?<![\w./:@-])(?P<path>[\w.-][\w./-]*\.md)#(?P<anchor>[\w-]+)")
SAME_FILE_LINK = re.compile(r"\]\(#(?P<anchor>[\w-]+)\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def repository_files() -> list[Path]:
    """Every file of the working tree that git tracks or would track (not .git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        paths = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if ".git" not in p.relative_to(ROOT).parts]
    return sorted({path for path in paths if path.is_file()})


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


TEXT_FILES = {
    path: text for path in repository_files() if (text := text_of(path)) is not None
}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text lower-cased, punctuation
    dropped (letters, digits, ``_``, ``-`` and spaces kept), spaces as hyphens."""
    text = MARKDOWN_LINK.sub(r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(markdown: str) -> set[str]:
    """The anchors of a Markdown text's headings (fenced code skipped; a repeated
    anchor gets ``-1``, ``-2``... as on GitHub)."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            anchor = github_anchor(match["text"].strip())
            anchors.add(f"{anchor}-{seen[anchor]}" if seen[anchor] else anchor)
            seen[anchor] += 1
    return anchors


def link_target(source: Path, link: str) -> Path | None:
    """The repository file a link names: relative to the file holding it (Markdown
    links), else to the repository root (``docs/graph.md`` in a comment)."""
    for base in (source.parent, ROOT):
        target = (base / link).resolve()
        if target.is_file() and target.is_relative_to(ROOT):
            return target
    return None


def section_links() -> list[tuple[Path, int, Path | None, str, str]]:
    """(file, line, target file or None, link as written, anchor) for every link."""
    links = []
    for path, text in TEXT_FILES.items():
        for number, line in enumerate(text.splitlines(), start=1):
            for match in FILE_LINK.finditer(line):
                target = link_target(path, match["path"])
                links.append((path, number, target, match["path"], match["anchor"]))
            if path.suffix == ".md":
                for match in SAME_FILE_LINK.finditer(line):
                    links.append((path, number, path, "", match["anchor"]))
    return links


SECTION_LINKS = section_links()


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_no_citation_of_documents_outside_the_repository():
    citations = [
        f"{where(path, number)}: {line.strip()}"
        for path, text in TEXT_FILES.items()
        for number, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE_CITATION.search(line)
    ]
    assert not citations, (
        "These lines cite documents that are not in the repository; link the section "
        "of docs/graph.md or docs/resource_booking.md that holds the fact instead:\n"
        + "\n".join(citations)
    )


def test_section_links_name_a_heading():
    anchors: dict[Path, set[str]] = {}
    broken = []
    for path, number, target, link, anchor in SECTION_LINKS:
        if target is None:
            broken.append(
                f"{where(path, number)}: {link} is not a file of the repository"
            )
            continue
        if target not in anchors:
            anchors[target] = anchors_of(target.read_text(encoding="utf-8"))
        if anchor not in anchors[target]:
            name = target.relative_to(ROOT)
            broken.append(f"{where(path, number)}: {name} has no heading #{anchor}")
    assert not broken, "Links to sections that do not exist:\n" + "\n".join(broken)


def test_the_checks_see_the_docs_and_their_links():
    targets = {
        (target.relative_to(ROOT).as_posix(), anchor)
        for _path, _line, target, _link, anchor in SECTION_LINKS
        if target is not None
    }
    assert ("docs/graph.md", "delta-tokens-expire") in targets
    assert ("docs/resource_booking.md", "writes-made-by-the-sync") in targets
    citing = {
        path.relative_to(ROOT).parts[:2]
        for path, _line, target, _link, _anchor in SECTION_LINKS
        if target is not None and target.parent == ROOT / "docs"
    }
    # Code comments and the emulator's README, not only the docs themselves.
    assert {("room_exchange_sync", "graph"), ("tests", "emulator")} <= citing
    scanned = {path.relative_to(ROOT).as_posix() for path in TEXT_FILES}
    assert {"README.md", "docs/graph.md", "tests/emulator/README.md"} <= scanned


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Delta tokens expire", "delta-tokens-expire"),
        ("The emulator's options", "the-emulators-options"),
        ("Graph routes (`/v1.0`)", "graph-routes-v10"),
        ("Create with transactionId", "create-with-transactionid"),
        ("Delta pages, replays and removals", "delta-pages-replays-and-removals"),
        ("See [the guide](../README.md) first", "see-the-guide-first"),
        ("`resource_booking` hooks", "resource_booking-hooks"),
    ],
)
def test_github_anchor(heading, anchor):
    assert github_anchor(heading) == anchor


def test_anchors_of_skip_code_and_number_repeats():
    markdown = "# Title\n\n```\n# not a heading\n```\n## Notes\n### Notes ##\n"
    assert anchors_of(markdown) == {"title", "notes", "notes-1"}


@pytest.mark.parametrize(
    "line",
    [
        f"# ({OUTSIDE_DOCUMENTS[0]}.md {SECTION}3.5)",
        f"see {OUTSIDE_DOCUMENTS[1]} {SECTION}2.9c",
        f"MSAL caches HTTP answers (contract {SECTION}8.7).",
        f"(exact body UNCONFIRMED, {SECTION}10).",
        f"# {SECTION}3.5); Outlook capitalises them differently",
    ],
    # Ids of their own, so that the names do not reach pytest's cache either.
    ids=["graph-document", "booking-document", "contract", "bare", "continued"],
)
def test_outside_citations_are_recognised(line):
    assert OUTSIDE_CITATION.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "see docs/graph.md#delta-tokens-expire",
        f"RFC 7232 {SECTION} 3.1 defines If-Match",
        "the contract of this function",
    ],
)
def test_other_lines_are_not_citations(line):
    assert not OUTSIDE_CITATION.search(line)
