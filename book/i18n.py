#!/usr/bin/env python3
"""The book's translations: gettext catalogues in book/po/, one per language.

The English chapters in book/src are the source. mdbook-xgettext (from
mdbook-i18n-helpers) extracts their text into a template; each language's
catalogue (book/po/es.po, book/po/ja.po) holds the translation of every
message; mdbook-gettext puts them in place when the book is built with
`book.language` set. Code stays as it is: code blocks and included code are
not translated (see `update`).

    python3 book/i18n.py update    # after an English change: new and changed
                                   # messages become empty or fuzzy entries
    python3 book/i18n.py stats     # how much of each language is done
    python3 book/i18n.py check     # fails on untranslated or fuzzy entries,
                                   # and builds every language without a warning
    python3 book/i18n.py build     # English in book/book, each language in
                                   # book/book/LANG (what GitHub Pages serves)

Run from anywhere in the repository. Needs mdbook and mdbook-i18n-helpers
(`cargo install mdbook-i18n-helpers --locked --version 0.4.0`) and, for
`update`, GNU gettext's msgmerge (`apt-get install gettext`).
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import search_cjk  # noqa: E402

BOOK = pathlib.Path(__file__).resolve().parent
PO = BOOK / "po"
OUT = BOOK / "book"
LANGUAGES = {"es": "Español", "ja": "日本語"}
# Languages written without spaces, whose search index is rebuilt
# (book/search_cjk.py).
CJK = {"ja"}


# --- reading catalogues ----------------------------------------------------


class Entry:
    def __init__(self):
        self.msgid = None
        self.msgstr = None
        self.fuzzy = False
        self.obsolete = False
        self.refs = []

    def done(self):
        return bool(self.msgstr) and not self.fuzzy


def unquote(s):
    s = s.strip()
    assert s.startswith('"') and s.endswith('"'), s
    body = s[1:-1]
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def read_po(path):
    """The entries of a PO file, the header (msgid "") excluded."""
    entries = []
    cur = Entry()
    field = None

    def flush():
        nonlocal cur
        if cur.msgid is not None and cur.msgid != "":
            entries.append(cur)
        cur = Entry()

    for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            flush()
            field = None
            continue
        if line.startswith("#~"):
            cur.obsolete = True
            continue
        if line.startswith("#,"):
            cur.fuzzy = "fuzzy" in line
            continue
        if line.startswith("#:"):
            cur.refs += line[2:].split()
            continue
        if line.startswith("#"):
            continue
        if line.startswith("msgid "):
            if cur.msgid is not None and cur.msgstr is not None:
                flush()
            cur.msgid = unquote(line[6:])
            field = "msgid"
        elif line.startswith("msgstr "):
            cur.msgstr = unquote(line[7:])
            field = "msgstr"
        elif line.startswith('"') and field:
            setattr(cur, field, getattr(cur, field) + unquote(line))
    flush()
    return [e for e in entries if not e.obsolete]


# --- running the tools ------------------------------------------------------


def need(tool, how):
    if shutil.which(tool) is None:
        sys.exit(f"i18n: `{tool}` is not installed: {how}")


def extract(dest):
    """Writes the template of every message to DEST/messages.pot.

    The template is taken with mdBook's default preprocessors off, so that
    `{{#include}}`d code is not extracted: code stays English, and a change
    to the solutions never makes work for the translators.
    """
    need("mdbook-xgettext", "cargo install mdbook-i18n-helpers --locked --version 0.4.0")
    env = dict(os.environ)
    env["MDBOOK_OUTPUT"] = '{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}'
    env["MDBOOK_BUILD__USE_DEFAULT_PREPROCESSORS"] = "false"
    env.pop("MDBOOK_BOOK__LANGUAGE", None)
    run = subprocess.run(
        ["mdbook", "build", "-d", str(dest), str(BOOK)],
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        sys.exit(f"i18n: extracting the messages failed:\n{run.stdout}{run.stderr}")
    pot = pathlib.Path(dest) / "messages.pot"
    if not pot.is_file():
        found = list(pathlib.Path(dest).rglob("messages.pot"))
        if not found:
            sys.exit(f"i18n: mdbook-xgettext wrote no messages.pot in {dest}")
        pot = found[0]
    return pot


def build(lang, dest):
    """Builds the book in LANG (None: English) into DEST; returns the log."""
    env = dict(os.environ)
    if lang:
        env["MDBOOK_BOOK__LANGUAGE"] = lang
        # Each language is served one level down: /course/es/ and so on.
        site = env.get("MDBOOK_OUTPUT__HTML__SITE_URL")
        if site:
            env["MDBOOK_OUTPUT__HTML__SITE_URL"] = site.rstrip("/") + f"/{lang}/"
    run = subprocess.run(
        ["mdbook", "build", "-d", str(dest), str(BOOK)],
        env=env,
        capture_output=True,
        text=True,
    )
    return run.returncode, run.stdout + run.stderr


# --- commands ---------------------------------------------------------------


def cmd_update():
    need("msgmerge", "apt-get install gettext")
    with tempfile.TemporaryDirectory() as tmp:
        pot = extract(tmp)
        for lang in LANGUAGES:
            po = PO / f"{lang}.po"
            if not po.exists():
                text = pot.read_text(encoding="utf-8")
                text = text.replace(
                    '"Language: \\n"', f'"Language: {lang}\\n"'
                ).replace("charset=CHARSET", "charset=UTF-8")
                po.write_text(text, encoding="utf-8")
            subprocess.run(
                ["msgmerge", "--quiet", "--update", "--backup=none",
                 "--no-wrap", "--sort-by-file", str(po), str(pot)],
                check=True,
            )
            # Entries the English no longer has: gone, not kept as #~.
            subprocess.run(
                ["msgattrib", "--no-obsolete", "--no-wrap", "-o", str(po), str(po)],
                check=True,
            )
    cmd_stats()


def stats(lang):
    entries = read_po(PO / f"{lang}.po")
    done = sum(e.done() for e in entries)
    fuzzy = sum(e.fuzzy for e in entries)
    empty = sum(not e.msgstr for e in entries)
    return len(entries), done, fuzzy, empty


def cmd_stats():
    for lang, name in LANGUAGES.items():
        if not (PO / f"{lang}.po").exists():
            print(f"{lang} ({name}): no catalogue yet")
            continue
        total, done, fuzzy, empty = stats(lang)
        print(f"{lang} ({name}): {done} of {total} entries translated, "
              f"{fuzzy} fuzzy, {empty} untranslated")


def installed():
    return shutil.which("mdbook-xgettext") and shutil.which("mdbook-gettext")


def check(dest_root=None):
    """The problems of every translation: entries untranslated, fuzzy, or
    missing after an English change, and warnings when it is built. With
    `dest_root`, each language is built into DEST_ROOT/LANG and left there
    (book/check.py then checks its links)."""
    if not installed():
        return None
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        pot = extract(tmp)
        wanted = {e.msgid for e in read_po(pot)}
    for lang, name in LANGUAGES.items():
        po = PO / f"{lang}.po"
        if not po.exists():
            problems.append(f"{lang}: no catalogue {po.relative_to(BOOK.parent)}")
            continue
        entries = read_po(po)
        have = {e.msgid: e for e in entries}
        for e in entries:
            where = e.refs[0] if e.refs else "?"
            if e.msgid not in wanted:
                continue  # obsolete: `update` drops it
            if e.fuzzy:
                problems.append(f"{lang}: fuzzy entry ({where}): {short(e.msgid)}")
            elif not e.msgstr:
                problems.append(f"{lang}: untranslated entry ({where}): {short(e.msgid)}")
        for m in sorted(wanted - have.keys()):
            problems.append(f"{lang}: English text not in the catalogue "
                            f"(run `python3 book/i18n.py update`): {short(m)}")
        with tempfile.TemporaryDirectory() as tmp:
            dest = pathlib.Path(dest_root or tmp) / lang
            code, log = build(lang, dest)
        for line in log.splitlines():
            if re.search(r"\b(WARN|ERROR)\b", line):
                problems.append(f"{lang}: mdbook: {line.strip()}")
        if code != 0:
            problems.append(f"{lang}: mdbook build exited with {code}")
    return problems


HOW_TO_UPDATE = ("After an English change: `python3 book/i18n.py update`, translate "
                 "the empty and fuzzy entries in book/po/*.po, then "
                 "`python3 book/i18n.py check`.")


def cmd_check():
    """Fails when a language is not complete, or out of step with the
    English, or does not build cleanly."""
    need("mdbook-xgettext", "cargo install mdbook-i18n-helpers --locked --version 0.4.0")
    problems = check()
    shown = problems[:40]
    for p in shown:
        print(p, file=sys.stderr)
    if len(problems) > len(shown):
        print(f"... and {len(problems) - len(shown)} more", file=sys.stderr)
    if problems:
        print(f"translations: {len(problems)} problem(s). {HOW_TO_UPDATE}", file=sys.stderr)
        return 1
    cmd_stats()
    print("translations: complete, and every language builds without a warning")
    return 0


def short(text, n=70):
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def cmd_build():
    code, log = build(None, OUT)
    if code != 0:
        sys.exit(log)
    for lang in LANGUAGES:
        code, log = build(lang, OUT / lang)
        if code != 0:
            sys.exit(log)
        if lang in CJK:
            search_cjk.main(OUT / lang)
    print(f"built: English in {OUT}, " +
          ", ".join(f"{lang} in {OUT / lang}" for lang in LANGUAGES))


def main(argv):
    commands = {"update": cmd_update, "stats": cmd_stats, "check": cmd_check,
                "build": cmd_build}
    if len(argv) != 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[1]]() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
