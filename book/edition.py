#!/usr/bin/env python3
"""The student edition of the book: an mdBook preprocessor.

A chapter shows the reference code of what the student writes only folded,
in a block of exactly this shape:

    <details class="reference">
    <summary>The reference <code>serve</code></summary>

    ```rust
    {{#include ../../solutions/03-fifo/src/lib.rs:serve}}
    ```

    </details>

When the environment variable MDBOOK_STUDENT_EDITION is 1, or it is unset
and book.toml says

    [preprocessor.edition]
    student = true

this preprocessor drops every such block whole, from `<details
class="reference">` to its matching `</details>`, and changes nothing else.
Otherwise (MDBOOK_STUDENT_EDITION=0 wins over book.toml) it hands the
book back unchanged. It runs before mdBook's `links`
preprocessor (`before = ["links"]` in book.toml), so that the `{{#include}}`s
of a dropped block are never expanded.

Fenced code blocks are copied as they are: a page may show the shape above
as an example (inside a fence) without losing it.

The protocol (mdBook 0.5): `edition.py supports RENDERER` exits with 0 (the
edition is a matter of text, so every renderer is supported); otherwise
stdin holds the JSON array [context, book], and stdout gets the book back.
In 0.5 the book's top-level list is `items` (it was `sections` before); both
are handled.
"""

import json
import os
import re
import sys

import preprocessor

OPEN = re.compile(r'^\s*<details\s+class\s*=\s*"reference"\s*>', re.IGNORECASE)
DETAILS_OPEN = re.compile(r"<details\b", re.IGNORECASE)
DETAILS_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def scan(text, where="?"):
    """Each line of `text` as (number, line, where): `where` is "open" on
    the first line of a reference block, "inside" on its other lines, and
    None outside.

    A block starts at a line beginning with `<details class="reference">`
    (outside a fenced code block) and ends at the line holding the
    `</details>` that closes it (nested `<details>` are counted). Both of
    those lines belong to the block.
    """
    fence = None  # the fence of the code block we are in
    depth = 0  # > 0: inside a reference block
    start = 0
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        match = FENCE.match(line)
        if match:
            mark = match.group(1)
            if fence is None:
                fence = mark
            elif (
                mark[0] == fence[0]
                and len(mark) >= len(fence)
                and not line.strip()[len(mark):].strip()
            ):
                fence = None
            yield number, line, "inside" if depth > 0 else None
            continue
        if fence is not None:
            yield number, line, "inside" if depth > 0 else None
            continue
        if depth == 0:
            if OPEN.match(line):
                start = number
                depth = len(DETAILS_OPEN.findall(line)) - len(DETAILS_CLOSE.findall(line))
                yield number, line, "open"
                continue
            yield number, line, None
            continue
        depth += len(DETAILS_OPEN.findall(line)) - len(DETAILS_CLOSE.findall(line))
        yield number, line, "inside"
    if depth > 0:
        raise SystemExit(
            f"edition.py: {where}: the reference block opened at line {start} "
            "has no closing </details>"
        )


def strip_references(text, where="?"):
    """`text` without its reference blocks; the number of blocks dropped."""
    out = []
    dropped = 0
    for _, line, block in scan(text, where):
        if block == "open":
            dropped += 1
        if block is None:
            out.append(line)
    return "".join(out), dropped


def student_edition(context):
    """1 in the environment: the student edition; 0: the full one; unset
    (or empty): as book.toml says."""
    env = os.environ.get("MDBOOK_STUDENT_EDITION", "")
    if env:
        if env not in ("0", "1"):
            raise SystemExit(
                f"edition.py: MDBOOK_STUDENT_EDITION={env!r}: expected 1 or 0"
            )
        return env == "1"
    config = context.get("config", {}).get("preprocessor", {}).get("edition", {})
    student = config.get("student", False)
    if not isinstance(student, bool):
        raise SystemExit(
            f"edition.py: [preprocessor.edition] student = {student!r}: "
            "expected true or false"
        )
    return student


def main(argv):
    if len(argv) > 1 and argv[1] == "supports":
        return 0
    context, book = json.load(sys.stdin)
    if student_edition(context):
        dropped = 0
        for chapter in preprocessor.chapters(book):
            where = chapter.get("source_path") or chapter.get("path") or chapter.get("name")
            chapter["content"], count = strip_references(chapter["content"], where)
            dropped += count
        print(
            f"edition.py: student edition, {dropped} reference block(s) left out",
            file=sys.stderr,
        )
    json.dump(book, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
