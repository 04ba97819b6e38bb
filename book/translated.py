#!/usr/bin/env python3
"""An mdBook preprocessor that runs after mdbook-gettext, for translated
builds: mdbook-gettext writes each translated chapter back as Markdown, and
in doing so escapes the brackets of an admonition's marker (`> \\[!NOTE\\]`)
and may put an empty quoted line before it: mdBook then shows it as text. This puts the marker back, on a line of its
own, as mdBook's admonitions need. English passes through unchanged.
"""

import re
import sys

import preprocessor

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


if __name__ == "__main__":
    sys.exit(preprocessor.rewrite(fix))
