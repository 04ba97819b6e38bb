#!/usr/bin/env python3
"""Does every page of the built book read on a phone?

    python3 book/layout.py [BUILT_BOOK_DIR]     (default: book/book)

Opens each page in headless Chromium, 390 CSS pixels wide (a phone held
upright), and fails when something sticks out past the right edge of the
page where it cannot be scrolled to: mdBook clips the page sideways
(`overflow-x: hidden` on <body>), so such text is simply cut off.

Allowed to be wider than the page: whatever is inside a scroll container
in the chapter (`overflow-x: auto` or `scroll`: a code block, the
wrapper mdBook puts around each table), since the reader can scroll it
sideways and course.js marks it with a shadow.

How: one headless Chromium (chromium.py) loads the pages one after the
other in a phone-sized viewport and runs PROBE in each.

Without Chromium the check is skipped, with a note; with the environment
variable BOOK_LAYOUT_REQUIRED=1 (CI sets it) a missing Chromium is a
failure.
"""

import os
import pathlib
import sys

import chromium

BOOK = pathlib.Path(__file__).resolve().parent
WIDTH = 390
HEIGHT = 900
# Runs in each page once it has loaded (and course.js has run): lists the
# outermost elements whose right edge is past the viewport's, except those
# inside an allowed scroll container, and whether the page as a whole is
# wider than the viewport.
PROBE = r"""
(async function () {
  await document.fonts.ready;
  await new Promise(function (done) { requestAnimationFrame(function () { setTimeout(done, 50); }); });
  var width = document.documentElement.clientWidth;
  var main = document.querySelector("main");
  function scrolls(el) {
    var s = getComputedStyle(el);
    return s.overflowX === "auto" || s.overflowX === "scroll";
  }
  function allowed(el) {
    for (var a = el; a && a !== main; a = a.parentElement) {
      if (a.tagName === "PRE" || scrolls(a)) return true;
    }
    return false;
  }
  function visible(el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return false;
    var s = getComputedStyle(el);
    return s.visibility !== "hidden" && s.display !== "none";
  }
  function describe(el) {
    var name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    if (el.className && typeof el.className === "string" && el.className.trim())
      name += "." + el.className.trim().split(/\s+/).join(".");
    var text = (el.textContent || el.getAttribute("src") || "")
      .replace(/\s+/g, " ").trim().slice(0, 60);
    var r = el.getBoundingClientRect();
    return {element: name, right: Math.round(r.right),
            width: Math.round(r.width), text: text};
  }
  var found = [];
  var over = new Set();
  if (main) {
    main.querySelectorAll("*").forEach(function (el) {
      if (!visible(el)) return;
      if (el.getBoundingClientRect().right <= width + 0.5) return;
      if (allowed(el)) return;
      over.add(el);
      if (over.has(el.parentElement)) return;  // its parent is reported
      found.push(describe(el));
    });
  }
  return {
    viewport: width,
    main: !!main,
    height: document.documentElement.scrollHeight,
    overflow: found.slice(0, 20),
    count: found.length
  };
})()
"""

SKIP = {"toc.html"}  # the sidebar's own page, shown inside other pages


def pages_of(out):
    return sorted(
        p for p in out.rglob("*.html") if p.name not in SKIP and p.is_file()
    )


def check(out):
    """Problems (strings); None when Chromium is missing."""
    path = chromium.find()
    if path is None:
        return None
    problems = []
    try:
        with chromium.Browser(path) as browser:
            for page in pages_of(out):
                rel = page.relative_to(out)
                browser.open(page.as_uri(), WIDTH, HEIGHT)
                found = browser.evaluate(PROBE)
                if not found.get("main"):
                    problems.append(f"{rel}: no <main> element: not an mdBook page?")
                    continue
                if found["viewport"] != WIDTH:
                    problems.append(
                        f"{rel}: the page was {found['viewport']} px wide, not {WIDTH}"
                    )
                for item in found["overflow"]:
                    problems.append(
                        f"{rel}: at {WIDTH} px, <{item['element']}> is "
                        f"{item['width']} px wide and ends at {item['right']} px, "
                        f"past the page's edge, and cannot scroll: "
                        f"\"{item['text']}\""
                    )
                if found["count"] > len(found["overflow"]):
                    problems.append(
                        f"{rel}: ... and {found['count'] - len(found['overflow'])} more"
                    )
    except chromium.Error as error:
        problems.append(f"Chromium: {error}")
    return problems


def main(argv):
    out = pathlib.Path(argv[1]) if len(argv) > 1 else BOOK / "book"
    if not (out / "index.html").is_file():
        print(f"layout: no built book in {out}: run `mdbook build book`", file=sys.stderr)
        return 2
    problems = check(out)
    if problems is None:
        print("layout: no Chromium: phone layout not checked", file=sys.stderr)
        return 1 if os.environ.get("BOOK_LAYOUT_REQUIRED") == "1" else 0
    for problem in problems:
        print(f"layout: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"layout: every page fits {WIDTH} px")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
