#!/usr/bin/env python3
"""Renders the book's figures: every book/src/figures/NAME.bob to NAME.svg.

    python3 book/figures.py          render each .bob whose .svg is missing
                                     or older than it
    python3 book/figures.py --all    render every .bob
    python3 book/figures.py --check  change nothing; exit with 1 when an
                                     .svg is missing or differs from a
                                     fresh render of its .bob

The .svg files are checked in, so building the book needs no svgbob. The
renderer is svgbob (`cargo install svgbob_cli`), whose binary is called
`svgbob_cli` or `svgbob`. Without it, `--check` can only check that each
.bob has its .svg (and says so); an .svg older than its .bob is then only
reported, because git does not keep modification times: after a clone they
say nothing about which file was written first.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

FIGURES = pathlib.Path(__file__).resolve().parent / "src" / "figures"


def renderer():
    for name in ("svgbob_cli", "svgbob"):
        path = shutil.which(name)
        if path:
            return path
    cargo_bin = pathlib.Path.home() / ".cargo" / "bin"
    for name in ("svgbob_cli", "svgbob"):
        if (cargo_bin / name).is_file():
            return str(cargo_bin / name)
    return None


def render(svgbob, bob, svg):
    """Renders `bob` into `svg`; an error message, or None."""
    run = subprocess.run(
        [svgbob, str(bob), "-o", str(svg)], capture_output=True, text=True
    )
    if run.returncode != 0 or not svg.is_file():
        return f"{bob.name}: {svgbob} exited with {run.returncode}: {run.stderr.strip()}"
    return None


def check(svgbob, bobs):
    problems = []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for bob in bobs:
            svg = bob.with_suffix(".svg")
            if not svg.is_file():
                problems.append(
                    f"{svg.name} is missing: run `python3 book/figures.py`"
                )
                continue
            if svgbob is None:
                if svg.stat().st_mtime < bob.stat().st_mtime:
                    notes.append(f"{svg.name} is older than {bob.name} (not checked: no svgbob)")
                continue
            fresh = pathlib.Path(tmp) / svg.name
            error = render(svgbob, bob, fresh)
            if error:
                problems.append(error)
            elif fresh.read_bytes() != svg.read_bytes():
                problems.append(
                    f"{svg.name} is not the rendering of {bob.name}: "
                    "run `python3 book/figures.py`"
                )
    return problems, notes


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode not in ("", "--all", "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    bobs = sorted(FIGURES.glob("*.bob")) if FIGURES.is_dir() else []
    svgbob = renderer()
    if mode == "--check":
        problems, notes = check(svgbob, bobs)
        for line in notes:
            print(f"figures: note: {line}", file=sys.stderr)
        for line in problems:
            print(f"figures: {line}", file=sys.stderr)
        how = "compared with a fresh render" if svgbob else "present (no svgbob: not re-rendered)"
        if problems:
            return 1
        print(f"figures: {len(bobs)} .svg {how}")
        return 0
    if svgbob is None:
        print(
            "figures: no svgbob: install it with `cargo install svgbob_cli`",
            file=sys.stderr,
        )
        return 2
    done = 0
    for bob in bobs:
        svg = bob.with_suffix(".svg")
        stale = not svg.is_file() or svg.stat().st_mtime < bob.stat().st_mtime
        if mode == "--all" or stale:
            error = render(svgbob, bob, svg)
            if error:
                print(f"figures: {error}", file=sys.stderr)
                return 1
            done += 1
            print(f"figures: {svg.relative_to(FIGURES.parent.parent)}")
    print(f"figures: {done} of {len(bobs)} rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
