#!/usr/bin/env python3
"""An mdBook preprocessor that runs after `links`: a code block included
from the middle of a function (`{{#include file.rs:anchor}}` around a few
lines of a body, or a method inside an `impl`) keeps its source
indentation, 4 or 8 columns of nothing at the left of every line, which a
phone pays for in width. This removes the indentation all the lines of a
fenced code block share. Text outside code blocks is left as it is.
"""

import re
import sys

import preprocessor

FENCE = re.compile(r"^(?P<fence>```+|~~~+)")


def dedent_blocks(text):
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        fence = m["fence"]
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        body = lines[i + 1 : end]
        margins = [len(l) - len(l.lstrip(" ")) for l in body if l.strip()]
        cut = min(margins, default=0)
        out.append(lines[i])
        out.extend(l[cut:] if l.strip() else l.strip(" ") for l in body)
        if end < len(lines):
            out.append(lines[end])
        i = end + 1
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(preprocessor.rewrite(dedent_blocks))
