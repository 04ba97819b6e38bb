#!/usr/bin/env python3
"""Screenshots of every page of the built book, on a phone and a desktop.

    python3 book/screenshots.py DEST [BUILT_BOOK_DIR] [--theme THEME] [--full]

Writes DEST/PAGE-390.png (390 CSS pixels wide, a phone held upright) and
DEST/PAGE-1280.png for each page of BUILT_BOOK_DIR (default: book/book,
so run `mdbook build book` first). Each shows the top of the page (900 and
800 pixels high); with --full, the whole page. --theme picks an mdBook
theme (light, rust, coal, navy, ayu) instead of the default.

For looking at, not for CI: `layout.py` is the check.
"""

import argparse
import pathlib
import sys

import chromium
import layout

SIZES = ((390, 900), (1280, 800))
THEMES = ("light", "rust", "coal", "navy", "ayu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=pathlib.Path)
    parser.add_argument(
        "out", nargs="?", type=pathlib.Path, default=layout.BOOK / "book"
    )
    parser.add_argument("--theme", choices=THEMES)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    if not (args.out / "index.html").is_file():
        print(f"screenshots: no built book in {args.out}", file=sys.stderr)
        return 2
    path = chromium.find()
    if path is None:
        print("screenshots: no Chromium found", file=sys.stderr)
        return 2
    args.dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with chromium.Browser(path) as browser:
        for page in layout.pages_of(args.out):
            rel = page.relative_to(args.out)
            name = str(rel.with_suffix("")).replace("/", "_")
            for width, height in SIZES:
                browser.open(page.as_uri(), width, height)
                if args.theme:
                    # mdBook keeps the reader's theme in localStorage.
                    browser.evaluate(
                        f"localStorage.setItem('mdbook-theme', '{args.theme}')"
                    )
                    browser.open(page.as_uri(), width, height)
                browser.evaluate("document.fonts.ready.then(() => true)")
                tall = height
                if args.full:
                    tall = browser.evaluate("document.documentElement.scrollHeight")
                png = browser.screenshot(width, tall)
                out = args.dest / f"{name}-{width}.png"
                out.write_bytes(png)
                count += 1
    print(f"screenshots: {count} written to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
