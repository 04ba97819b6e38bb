#!/usr/bin/env python3
"""Makes mdBook's search work for Japanese.

mdBook's search index cuts text into words at spaces and hyphens, then
trims, filters and stems each word as English. Japanese has no spaces: a
whole sentence becomes one "word", and the trimmer, which keeps only ASCII
letters and digits at a word's ends, empties it. So a Japanese search finds
nothing (mdBook issue #2393).

After a translated book is built, this script rebuilds its index with the
words cut the way `theme/search-cjk.js` cuts a query on the same pages:
Latin words as before (lower case, no stemming), and every run of Japanese
or Chinese characters as its overlapping pairs of characters (bigrams),
which needs no dictionary. A query's pairs then match the pairs of the text.

    python3 book/search_cjk.py book/book/ja
"""

import glob
import json
import math
import pathlib
import re
import sys

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
RUN = re.compile(f"[{CJK}]+|[^{CJK}]+")
IS_CJK = re.compile(f"[{CJK}]")
EDGES = re.compile(r"^[^0-9A-Za-z_]+|[^0-9A-Za-z_]+$")


def tokens(text):
    """The words of `text`, as theme/search-cjk.js cuts a query."""
    out = []
    for chunk in re.split(r"[\s\-]+", text.lower()):
        for part in RUN.findall(chunk):
            if IS_CJK.match(part):
                if len(part) == 1:
                    out.append(part)
                else:
                    out.extend(part[i:i + 2] for i in range(len(part) - 1))
            else:
                word = EDGES.sub("", part)
                if word:
                    out.append(word)
    return out


def add(root, token, ref, tf):
    node = root
    for ch in token:
        node = node.setdefault(ch, {"docs": {}, "df": 0})
    if ref not in node["docs"]:
        node["df"] += 1
    node["docs"][ref] = {"tf": tf}


def rebuild(index):
    store = index["documentStore"]
    fields = index["fields"]
    trees = {f: {"root": {"docs": {}, "df": 0}} for f in fields}
    for ref, doc in store["docs"].items():
        info = {}
        for field in fields:
            words = tokens(doc.get(field, "") or "")
            info[field] = len(words)
            counts = {}
            for w in words:
                counts[w] = counts.get(w, 0) + 1
            for w, n in counts.items():
                add(trees[field]["root"], w, ref, math.sqrt(n))
        store["docInfo"][ref] = info
    index["index"] = trees
    # No trimmer, stop words or stemmer: they are English, and the trimmer
    # would empty every Japanese word.
    index["pipeline"] = []
    return index


def js_unescape(raw):
    return re.sub(r"\\(.)", lambda m: m.group(1), raw, flags=re.S)


def js_escape(text):
    return text.replace("\\", "\\\\").replace("'", "\\'")


def main(book_dir):
    files = glob.glob(str(pathlib.Path(book_dir) / "searchindex-*.js"))
    if not files:
        print(f"search_cjk: no search index in {book_dir}", file=sys.stderr)
        return 1
    for file in files:
        text = pathlib.Path(file).read_text(encoding="utf-8")
        start = text.index("JSON.parse('") + len("JSON.parse('")
        end = text.rindex("'));")
        data = json.loads(js_unescape(text[start:end]))
        data["index"] = rebuild(data["index"])
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        pathlib.Path(file).write_text(
            text[:start] + js_escape(body) + text[end:], encoding="utf-8"
        )
    # searchindex.json, when mdBook writes one, is the same index.
    plain = pathlib.Path(book_dir) / "searchindex.json"
    if plain.exists():
        data = json.loads(plain.read_text(encoding="utf-8"))
        data["index"] = rebuild(data["index"])
        plain.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
