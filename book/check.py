#!/usr/bin/env python3
"""Builds the book, both editions, and fails on anything mdBook lets through.

mdBook reports a missing include file in its log but still exits with 0,
silently includes nothing for an anchor that does not exist, and does not
check links at all. This script, run from anywhere in the repository
(`python3 book/check.py`), fails when:

- `mdbook build` prints a warning or an error (either edition);
- an `{{#include FILE:ANCHOR}}` names a missing file, or an anchor that is
  not in the file, or includes nothing;
- a `{{#include` is left over in the built pages;
- a link between pages of the book points at a page or a heading that
  does not exist, or a page SUMMARY.md lists was not built;
- a figure's .svg is missing, or is not the rendering of its .bob
  (figures.py --check);
- the student edition (built into book/student with
  MDBOOK_STUDENT_EDITION=1) still holds a line of reference code: each
  distinctive line of what a `<details class="reference">` block includes
  from solutions/ must be in the full edition and nowhere in the student
  one (pages and search index);
- a page is wider than a phone (390 px) where it cannot scroll
  (layout.py; needs Chromium, skipped with a note when there is none,
  unless BOOK_LAYOUT_REQUIRED=1);
- the coverage map of sources.md does not add up: an item without
  exactly one mark, a scenario the checker does not have, counts that
  are not the map's;
- reference code is shown open: a chapter includes a file the student
  edits (anything under solutions/, which holds nothing else) outside a reference block. Reported apart, last; the environment
  variable BOOK_ALLOW_OPEN_REFERENCE=1 lets it pass (for work on the
  machinery while chapters are being converted; CI never sets it).
"""

import html
import html.parser
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.parse

BOOK = pathlib.Path(__file__).resolve().parent
ROOT = BOOK.parent
SRC = BOOK / "src"
OUT = BOOK / "book"
STUDENT = BOOK / "student"

sys.path.insert(0, str(BOOK))
import edition  # noqa: E402
import figures  # noqa: E402
import i18n  # noqa: E402
import layout  # noqa: E402

# `{{#include PATH}}`, not escaped with a backslash (mdBook shows
# `\{{#include ...}}` as written).
INCLUDE = re.compile(r"(?<!\\)\{\{#(?:rustdoc_)?include\s+([^}\s]+)\s*\}\}")
ANCHOR_LINE = re.compile(r"ANCHOR(?:_END)?:\s*\w+")
WORD = re.compile(r"[A-Za-z0-9_]+")

problems = []
open_reference = []


def build(dest, student=False):
    env = dict(os.environ)
    env["MDBOOK_STUDENT_EDITION"] = "1" if student else "0"
    run = subprocess.run(
        ["mdbook", "build", str(BOOK), "--dest-dir", str(dest)],
        capture_output=True,
        text=True,
        env=env,
    )
    log = run.stdout + run.stderr
    edition_name = "student edition" if student else "mdbook"
    for line in log.splitlines():
        if re.search(r"\b(WARN|ERROR)\b", line):
            problems.append(f"{edition_name}: {line.strip()}")
    if run.returncode != 0:
        problems.append(f"{edition_name}: mdbook build exited with {run.returncode}")
        print(log, file=sys.stderr)


def chapters():
    return sorted(SRC.rglob("*.md"))


def includes(page):
    """Each include of a page: (line number, target, in a reference block)."""
    for number, line, block in edition.scan(page.read_text(), str(page)):
        for target in INCLUDE.findall(line):
            yield number, target, block is not None


def included_text(file, spec):
    """What `{{#include file:spec}}` includes, as mdBook reads it; None when
    the anchor is not in the file."""
    lines = file.read_text().splitlines()
    if not spec:
        return "\n".join(lines)
    if re.fullmatch(r"\d*(:\d*)?", spec):
        first, _, last = spec.partition(":")
        start = int(first) - 1 if first else 0
        if not _:
            end = start + 1 if first else len(lines)
        else:
            end = int(last) if last else len(lines)
        return "\n".join(lines[start:end])
    start = end = None
    for i, line in enumerate(lines):
        if start is None and re.search(rf"ANCHOR:\s*{re.escape(spec)}\b", line):
            start = i + 1
        elif start is not None and re.search(rf"ANCHOR_END:\s*{re.escape(spec)}\b", line):
            end = i
            break
    if start is None or end is None:
        return None
    return "\n".join(l for l in lines[start:end] if not ANCHOR_LINE.search(l))


def check_includes():
    for page in chapters():
        for _, target, _ in includes(page):
            path, _, anchor = target.partition(":")
            file = (page.parent / path).resolve()
            where = f"{page.relative_to(BOOK)}: {{{{#include {target}}}}}"
            if not file.is_file():
                problems.append(f"{where}: no file {file}")
                continue
            if not anchor or anchor[0].isdigit() or anchor[0] == ":":
                continue  # whole file, or a line range
            text = included_text(file, anchor)
            if text is None:
                problems.append(f"{where}: no anchor `{anchor}` in {path}")
            elif not text.strip("\n /"):
                problems.append(f"{where}: anchor `{anchor}` is empty")


def student_edits(file):
    """Whether `file` is one the student edits: under solutions/NN-topic/
    (given code lives in labs/ only; src/given.rs and src/bin/ are kept
    out should one be put back there). Returns (lab dir, relative path)
    or None."""
    try:
        rel = file.relative_to(ROOT / "solutions")
    except ValueError:
        return None
    parts = rel.parts
    if len(parts) < 2:
        return None
    inner = pathlib.PurePath(*parts[1:])
    if inner == pathlib.PurePath("src/given.rs") or inner.parts[:2] == ("src", "bin"):
        return None
    return parts[0], inner


def given_in_starter(file, spec):
    """Whether what `spec` includes from a solution file is given to the
    student as it is: every line of code in it (comments, attributes and
    blank lines aside) is a line of the starter's copy of the file. A type
    the starter declares for the student may then be shown open."""
    edits = student_edits(file)
    if not edits:
        return False
    lab, inner = edits
    starter = ROOT / "labs" / lab / inner
    if not starter.is_file():
        return False
    given = {line.strip() for line in starter.read_text().splitlines()}

    def code(line):
        line = line.strip()
        return line and not line.startswith(("//", "#[", "#!["))

    lines = [line.strip() for line in (included_text(file, spec) or "").splitlines() if code(line)]
    return bool(lines) and all(line in given for line in lines)


def check_open_reference():
    for page in chapters():
        for number, target, folded in includes(page):
            path, _, anchor = target.partition(":")
            file = (page.parent / path).resolve()
            if folded or not student_edits(file) or given_in_starter(file, anchor):
                continue
            open_reference.append(
                f"{page.relative_to(BOOK)}:{number}: {{{{#include {target}}}}} "
                "shows what the student writes outside a "
                '<details class="reference"> block'
            )


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def check_summary(out):
    """Every page SUMMARY.md lists was built: mdBook drops some silently
    (a chapter after a part title that is not in a list, for one)."""
    summary = (SRC / "SUMMARY.md").read_text()
    for target in re.findall(r"\]\(([^)#]+\.md)\)", summary):
        page = out / pathlib.PurePath(target).with_suffix(".html")
        if not page.is_file():
            problems.append(f"src/SUMMARY.md lists {target}, but {page.relative_to(BOOK)} was not built")


def shown_includes(out, page):
    """How many `{{#include` a built page shows on purpose: its source
    writes them escaped, `\\{{#include ...}}`, to show the syntax."""
    def escaped(md):
        return md.read_text().count("\\{{#include") if md.is_file() else 0

    if page.name == "print.html":
        return sum(escaped(md) for md in chapters())
    return escaped(SRC / page.relative_to(out).with_suffix(".md"))


def check_output(out):
    pages = {}
    for page in out.rglob("*.html"):
        parser = Links()
        text = page.read_text()
        parser.feed(text)
        pages[page.resolve()] = parser
        left = text.count("{{#include") - shown_includes(out, page)
        if left > 0:
            problems.append(f"{page.relative_to(BOOK)}: {left} unexpanded {{{{#include")
    for page, parser in sorted(pages.items()):
        if page.name in ("print.html", "toc.html", "404.html"):
            continue  # made by mdBook from the other pages
        for href in parser.hrefs:
            url = urllib.parse.urlparse(href)
            if url.scheme or url.netloc or href.startswith("mailto:"):
                continue  # external: not checked here
            target = (page.parent / url.path).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(out.resolve())}: link {href}"
            if target not in pages:
                if not target.exists():
                    problems.append(f"{where}: no such page")
                continue
            if url.fragment and urllib.parse.unquote(url.fragment) not in pages[target].ids:
                problems.append(f"{where}: no such heading")


def words(text):
    """Text as a string of its words, one space apart and around: code
    compares equal however HTML, highlighting or the search index spaced,
    split or escaped it."""
    return " " + " ".join(WORD.findall(text)) + " "


def rendered_words(out):
    """Each built page and search index, as words."""
    found = {}
    for file in sorted(out.rglob("*")):
        if file.suffix == ".html":
            text = re.sub(r"<[^>]*>", " ", file.read_text())
            found[file.relative_to(out)] = words(html.unescape(text))
        elif file.name.startswith("searchindex") and file.suffix in (".js", ".json"):
            text = file.read_text().replace("\\n", " ")
            found[file.relative_to(out)] = words(text)
    return found


def given_files():
    """The text of every file students are given, in every lab (the starter
    crates with their given.rs and programs, and the course's own crates):
    a line found there is no secret, wherever the book shows it."""
    given = sorted((ROOT / "labs").rglob("*.rs"))
    given += sorted((ROOT / "crates").rglob("*.rs"))
    return "\n".join(p.read_text() for p in given)


def distinctive(text, known):
    """The lines of `text` that identify it: at least four words and 20
    characters, and not in `known` (as words)."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        w = words(line)
        if len(line) >= 20 and len(w.split()) >= 4 and w not in known:
            lines.append((line, w))
    return lines


def check_student_edition():
    full = rendered_words(OUT)
    student = rendered_words(STUDENT)
    if not student:
        problems.append(f"student edition: nothing built in {STUDENT}")
        return 0, 0
    blocks = lines_checked = 0
    known = words(given_files())
    for page in chapters():
        for number, target, folded in includes(page):
            if not folded:
                continue
            path, _, spec = target.partition(":")
            file = (page.parent / path).resolve()
            edited = student_edits(file)
            if not edited or not file.is_file():
                continue
            text = included_text(file, spec)
            if text is None:
                continue  # reported by check_includes
            where = f"{page.relative_to(BOOK)}:{number} ({target})"
            lines = distinctive(text, known)
            if not lines:
                continue  # nothing in it the starter does not show
            blocks += 1
            seen = [l for l, w in lines if any(w in t for t in full.values())]
            if not seen:
                problems.append(
                    f"{where}: none of its reference lines is in the full "
                    "edition, so their absence from the student edition proves "
                    "nothing (is the block rendered?)"
                )
                continue
            for line, w in lines:
                lines_checked += 1
                leaks = [str(f) for f, t in student.items() if w in t]
                if leaks:
                    problems.append(
                        f"student edition: reference line of {where} is in "
                        f"{', '.join(leaks)}: {line}"
                    )
    return blocks, lines_checked


SCENARIO = re.compile(r'Scenario \{\s*name: "([^"]+)"')
ITEM = re.compile(r"^- \*\*([A-Z])(\d+)\*\* (.*?)(?=^- \*\*|^#|^\n|\Z)", re.M | re.S)
MARK = re.compile(r"\*\*(Full|Partly|Not)\.\*\*")


def check_sources():
    """sources.md: each item of the coverage map has one mark, names only
    scenarios the checker has, and the counts at the end add up."""
    page = SRC / "sources.md"
    if not page.is_file():
        problems.append("src/sources.md: missing")
        return
    text = page.read_text()
    scenarios = set()
    for lab in (ROOT / "checker" / "src" / "labs").rglob("*.rs"):
        scenarios.update(SCENARIO.findall(lab.read_text()))
    counts = {"Full": 0, "Partly": 0, "Not": 0}
    seen = {}
    for item in ITEM.finditer(text):
        key = item.group(1) + item.group(2)
        where = f"src/sources.md: item {key}"
        if key in seen:
            problems.append(f"{where}: a second item with that name")
        seen[key] = True
        marks = MARK.findall(item.group(3))
        if len(marks) != 1:
            problems.append(f"{where}: {len(marks)} marks, expected one of Full, Partly, Not")
            continue
        counts[marks[0]] += 1
        body = " ".join(item.group(3).split())
        for named in re.findall(r"checked by (.*?)(?:\.\s|;|$)", body):
            for name in re.findall(r"`([^`]+)`", named):
                if name not in scenarios:
                    problems.append(f"{where}: `{name}` is not a scenario of the checker")
    stated = dict(re.findall(r"^\| (full|partly|not|in all) \| (\d+) \|$", text, re.M))
    actual = {
        "full": counts["Full"],
        "partly": counts["Partly"],
        "not": counts["Not"],
        "in all": sum(counts.values()),
    }
    for name, number in actual.items():
        if stated.get(name) != str(number):
            problems.append(
                f"src/sources.md: the counts say {name} {stated.get(name)}, "
                f"the map has {number}"
            )
    return actual


def main():
    started = time.monotonic()
    build(OUT)
    build(STUDENT, student=True)
    check_includes()
    check_open_reference()
    if OUT.is_dir():
        check_summary(OUT)
        check_output(OUT)
    if STUDENT.is_dir():
        check_output(STUDENT)
    blocks, lines = check_student_edition()
    check_sources()
    renderer = figures.renderer()
    figure_problems, figure_notes = figures.check(
        renderer, sorted(figures.FIGURES.glob("*.bob"))
    )
    problems.extend(f"figures: {p}" for p in figure_problems)
    for note in figure_notes:
        print(f"figures: note: {note}", file=sys.stderr)
    layout_problems = layout.check(OUT) if OUT.is_dir() else []
    if layout_problems is None:
        if os.environ.get("BOOK_LAYOUT_REQUIRED") == "1":
            problems.append("layout: no Chromium, and BOOK_LAYOUT_REQUIRED=1")
        else:
            print(
                "book: note: no Chromium (chromium or chromium-browser): "
                "the phone layout was not checked",
                file=sys.stderr,
            )
    else:
        problems.extend(f"layout: {p}" for p in layout_problems)
    translated = BOOK / "translated"
    translation_problems = (
        i18n.check(translated) if list(i18n.PO.glob("*.po")) else []
    )
    for lang in i18n.LANGUAGES:
        if translation_problems is not None and (translated / lang).is_dir():
            check_output(translated / lang)
    if translation_problems is None:
        if os.environ.get("BOOK_TRANSLATIONS_REQUIRED") == "1":
            problems.append("translations: mdbook-i18n-helpers is not installed, "
                            "and BOOK_TRANSLATIONS_REQUIRED=1")
        else:
            print("book: note: no mdbook-i18n-helpers: the translations were not checked",
                  file=sys.stderr)
    else:
        problems.extend(f"translations: {p}" for p in translation_problems[:40])
        if len(translation_problems) > 40:
            problems.append(f"translations: ... and {len(translation_problems) - 40} more")
        if translation_problems:
            problems.append(f"translations: {i18n.HOW_TO_UPDATE}")
    for problem in problems:
        print(problem, file=sys.stderr)
    allowed = os.environ.get("BOOK_ALLOW_OPEN_REFERENCE") == "1"
    if open_reference:
        print(
            f"\nreference code shown open ({len(open_reference)}): "
            + ("allowed by BOOK_ALLOW_OPEN_REFERENCE=1" if allowed else "a failure"),
            file=sys.stderr,
        )
        for problem in open_reference:
            print(f"  {problem}", file=sys.stderr)
    failed = len(problems) + (0 if allowed else len(open_reference))
    seconds = time.monotonic() - started
    if failed:
        print(
            f"book: {len(problems)} problem(s), "
            f"{len(open_reference)} open reference include(s) ({seconds:.1f} s)",
            file=sys.stderr,
        )
        return 1
    print(
        "book: both editions built, every include and link resolves, "
        f"{blocks} reference block(s) ({lines} lines) absent from the student "
        "edition, "
        + ("figures up to date, " if renderer else "figures present (no svgbob to re-render them), ")
        + ("layout not checked" if layout_problems is None else "every page fits 390 px")
        + ("" if translation_problems is None or not list(i18n.PO.glob("*.po"))
           else ", every translation complete")
        + f" ({seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
