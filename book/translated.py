#!/usr/bin/env python3
"""An mdBook preprocessor that runs after mdbook-gettext, for translated
builds: mdbook-gettext writes each translated chapter back as Markdown, and
in doing so escapes the brackets of an admonition's marker (`> \\[!NOTE\\]`)
and may put an empty quoted line before it: mdBook then shows it as text. This puts the marker back, on a line of its
own, as mdBook's admonitions need. English passes through unchanged.
"""

import json
import re
import sys

MARKER = re.compile(
    r"^(?:[ \t]*>[ \t]*\n)*(?P<quote>(?:[ \t]*>)+)[ \t]*\\\[!(?P<kind>NOTE|TIP|IMPORTANT|WARNING|CAUTION)\\\][ \t]*(?P<rest>.*)$",
    re.MULTILINE,
)


def fix(text):
    def put_back(m):
        line = f"{m['quote']} [!{m['kind']}]"
        if m["rest"]:
            line += f"\n{m['quote']} {m['rest']}"
        return line

    return MARKER.sub(put_back, text)


def walk(items):
    for item in items:
        chapter = item.get("Chapter") if isinstance(item, dict) else None
        if chapter:
            chapter["content"] = fix(chapter["content"])
            walk(chapter.get("sub_items", []))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "supports":
        return 0
    context, book = json.load(sys.stdin)
    walk(book.get("items", book.get("sections", [])))
    json.dump(book, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
