#!/usr/bin/env python3
"""Builds the book and fails on anything mdBook lets through.

mdBook reports a missing include file in its log but still exits with 0,
silently includes nothing for an anchor that does not exist, and does not
check links at all. This script, run from anywhere in the repository
(`python3 book/check.py`), fails when:

- `mdbook build` prints a warning or an error;
- an `{{#include FILE:ANCHOR}}` names a missing file, or an anchor that is
  not in the file, or includes nothing;
- a `{{#include` is left over in the built pages;
- a link between pages of the book points at a page or a heading that
  does not exist.
"""

import html.parser
import pathlib
import re
import subprocess
import sys
import urllib.parse

BOOK = pathlib.Path(__file__).resolve().parent
SRC = BOOK / "src"
OUT = BOOK / "book"

INCLUDE = re.compile(r"\{\{#include\s+([^}\s]+)\s*\}\}")

problems = []


def build():
    run = subprocess.run(
        ["mdbook", "build", str(BOOK)], capture_output=True, text=True
    )
    log = run.stdout + run.stderr
    for line in log.splitlines():
        if re.search(r"\b(WARN|ERROR)\b", line):
            problems.append(f"mdbook: {line.strip()}")
    if run.returncode != 0:
        problems.append(f"mdbook build exited with {run.returncode}")
        print(log, file=sys.stderr)


def check_includes():
    for page in sorted(SRC.rglob("*.md")):
        for target in INCLUDE.findall(page.read_text()):
            path, _, anchor = target.partition(":")
            file = (page.parent / path).resolve()
            where = f"{page.relative_to(BOOK)}: {{{{#include {target}}}}}"
            if not file.is_file():
                problems.append(f"{where}: no file {file}")
                continue
            if not anchor or anchor[0].isdigit():
                continue  # whole file, or a line range
            text = file.read_text()
            start = re.search(rf"ANCHOR:\s*{re.escape(anchor)}\b", text)
            end = re.search(rf"ANCHOR_END:\s*{re.escape(anchor)}\b", text)
            if not start or not end:
                problems.append(f"{where}: no anchor `{anchor}` in {path}")
            elif not text[start.end():end.start()].strip("\n /"):
                problems.append(f"{where}: anchor `{anchor}` is empty")


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


def check_output():
    pages = {}
    for page in OUT.rglob("*.html"):
        parser = Links()
        text = page.read_text()
        parser.feed(text)
        pages[page.resolve()] = parser
        if "{{#include" in text:
            problems.append(f"{page.relative_to(BOOK)}: unexpanded {{{{#include")
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
            where = f"{page.relative_to(OUT.resolve())}: link {href}"
            if target not in pages:
                if not target.exists():
                    problems.append(f"{where}: no such page")
                continue
            if url.fragment and urllib.parse.unquote(url.fragment) not in pages[target].ids:
                problems.append(f"{where}: no such heading")


def main():
    build()
    check_includes()
    if OUT.is_dir():
        check_output()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"book: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("book: built, every include and link resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
