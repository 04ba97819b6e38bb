"""What every preprocessor of this book's own shares: mdBook 0.5's protocol.

mdBook runs `COMMAND supports RENDERER` (exit 0: yes), then `COMMAND` with
`[context, book]` as JSON on stdin, and reads the book back on stdout.
"""

import json
import sys


def chapters(book):
    """Every chapter of `book`, sub-chapters included."""

    def walk(items):
        for item in items:
            if isinstance(item, dict) and "Chapter" in item:
                chapter = item["Chapter"]
                yield chapter
                yield from walk(chapter.get("sub_items", []))

    # mdBook 0.5 calls them `items`; 0.4 called them `sections`.
    return walk(book.get("items", book.get("sections", [])))


def rewrite(transform, argv=None):
    """Runs a preprocessor that passes each chapter's text through
    `transform`; returns the exit status."""
    argv = sys.argv if argv is None else argv
    if len(argv) > 1 and argv[1] == "supports":
        return 0
    _context, book = json.load(sys.stdin)
    for chapter in chapters(book):
        chapter["content"] = transform(chapter["content"])
    json.dump(book, sys.stdout)
    return 0
