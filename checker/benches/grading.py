#!/usr/bin/env python3
"""Where grading, checking and verifying spend their time.

    python3 checker/benches/grading.py grade  [-n 5] [--jobs 2] [--sandbox] [--cold]
    python3 checker/benches/grading.py check  [--cold]
    python3 checker/benches/grading.py verify [LAB ...] [--jobs 2]

`grade` makes N distinct submissions (the reference solutions, each lab
with a harmless edit of its own, so that every lab of every submission
must be compiled, as in a real class) and runs `lab grade` on them.
`check` runs `lab check --all --tree` on a tree it has never seen, then
again after one changed file. `verify` runs `lab verify`.

Each reports wall time and CPU time (user and system, of every process
the command ran, from getrusage), and, for `grade` and `check`, how the
time splits between building (cargo and rustc) and running scenarios (the
checker's own threads and the programs), summed over every lab the
checkers checked: wall minus CPU in scenarios is time spent waiting.

`--cold` first removes the checker's prebuilt dependencies and the grading
slots' target directories, so the dependencies are compiled again. The
machine should be idle: on a loaded machine the wall times say little, and
CPU times (which count only work done) are the figures to compare.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_TARGET = ROOT / "target" / "lab"


def checker():
    """Builds the checker once and returns its executable: running it
    directly keeps cargo's own start-up out of the figures."""
    built = subprocess.run(
        ["cargo", "build", "--quiet", "--package", "checker", "--bin", "lab"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        sys.exit(f"the checker does not build:\n{built.stderr}")
    return ROOT / "target" / "debug" / "lab"


def make_submission(dest, k):
    """A checkout of the course as a student hands it in: the reference
    solutions, with an edit in every lab that changes nothing but the
    bytes, so that nothing compiled for another submission can be reused."""
    for lab in sorted((ROOT / "solutions").iterdir()):
        if not (lab / "src").is_dir():
            continue
        src = dest / "labs" / lab.name / "src"
        shutil.copytree(lab / "src", src)
        with open(src / "lib.rs", "a") as f:
            f.write(
                f"\n// Submission {k}: a harmless edit, so this lab compiles afresh.\n"
                f"#[allow(dead_code)]\nconst SUBMISSION: u32 = {k};\n"
            )


def measured(cmd, env=None, **kw):
    """Runs cmd; returns (wall, user, sys, completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(cmd, env={**os.environ, **(env or {})}, **kw)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        wall,
        after.ru_utime - before.ru_utime,
        after.ru_stime - before.ru_stime,
        done,
    )


def load_average():
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def report(title, wall, user, sys_, load_before):
    print(
        f"{title}: {wall:.1f} s wall, {user + sys_:.1f} s CPU "
        f"({user:.1f} user + {sys_:.1f} sys); load average {load_before} before, "
        f"{load_average()} after, on {os.cpu_count()} cores"
    )


def split(timings):
    """Sums the per-lab lines the checkers wrote (LAB_TIMINGS)."""
    total = {p: {"wall": 0.0, "user": 0.0, "sys": 0.0} for p in ("build", "scenarios")}
    total["checker"] = 0.0
    per_lab = {}
    if not timings.exists():
        return total, per_lab
    for line in timings.read_text().splitlines():
        t = json.loads(line)
        for phase in ("build", "scenarios"):
            for k in ("wall", "user", "sys"):
                total[phase][k] += t[phase][k]
        total["checker"] += t.get("scenarios_checker", 0.0)
        lab = per_lab.setdefault(t["lab"], {"n": 0, "build": 0.0, "run": 0.0, "run_cpu": 0.0})
        lab["n"] += 1
        lab["build"] += t["build"]["user"] + t["build"]["sys"]
        lab["run"] += t["scenarios"]["wall"]
        lab["run_cpu"] += t["scenarios"]["user"] + t["scenarios"]["sys"]
    return total, per_lab


def print_split(timings):
    total, per_lab = split(timings)
    b, s = total["build"], total["scenarios"]
    print(
        f"  building:  {b['wall']:.1f} s wall summed over labs, "
        f"{b['user'] + b['sys']:.1f} s CPU ({b['user']:.1f} user + {b['sys']:.1f} sys)"
    )
    cpu = s["user"] + s["sys"]
    print(
        f"  scenarios: {s['wall']:.1f} s wall summed over labs, "
        f"{cpu:.1f} s CPU ({s['user']:.1f} user + {s['sys']:.1f} sys), "
        f"{s['wall'] - cpu:.1f} s waiting; of the CPU, the checker's own "
        f"(monitor, readers, scenario code): {total['checker']:.1f} s"
    )
    print("  per lab, mean per check: build CPU / scenarios wall / scenarios CPU (s)")
    for lab, t in sorted(per_lab.items()):
        n = t["n"]
        print(f"    {lab:24} {t['build'] / n:6.1f} {t['run'] / n:6.1f} {t['run_cpu'] / n:6.1f}")


def remove_cold():
    for d in LAB_TARGET.glob("deps-*"):
        shutil.rmtree(d, ignore_errors=True)
    for d in LAB_TARGET.glob("grade-slot-*"):
        shutil.rmtree(d, ignore_errors=True)


def remove_staged(trees):
    """Removes what the checker staged for `trees` (target/lab/tree-KEY,
    KEY as stage.rs computes it), and nothing of another run's."""
    for tree in trees:
        key = 0xCBF29CE484222325
        for b in str(Path(tree).resolve()).encode():
            key = ((key ^ b) * 0x100000001B3) % 2**64
        shutil.rmtree(LAB_TARGET / f"tree-{key:016x}", ignore_errors=True)


def grade(args, lab):
    if args.cold:
        remove_cold()
    with tempfile.TemporaryDirectory(prefix="lab-grading-bench-") as tmp:
        tmp = Path(tmp)
        subs = tmp / "submissions"
        # Distinct runs get distinct edits: a submission graded before
        # would otherwise find its programs built already.
        base = int(time.time()) % 100000 * 100
        for i in range(args.submissions):
            make_submission(subs / f"student{i:03}", base + i)
        # Not under /tmp: bubblewrap gives each checker a /tmp of its own.
        timings = LAB_TARGET / f"bench-timings-{os.getpid()}.jsonl"
        cmd = [lab, "grade", subs, "--jobs", str(args.jobs), "--out", tmp / "out"]
        if not args.sandbox:
            cmd.append("--no-sandbox")
        load = load_average()
        wall, user, sys_, done = measured(
            cmd, env={"LAB_TIMINGS": str(timings)}, stdout=subprocess.PIPE, text=True
        )
        if done.returncode != 0:
            sys.exit(f"grade failed ({done.returncode})")
        report(
            f"grade: {args.submissions} distinct submissions, --jobs {args.jobs}, "
            f"{'bubblewrap' if args.sandbox else 'no sandbox'}{', cold' if args.cold else ''}",
            wall, user, sys_, load,
        )
        n = args.submissions
        print(f"  per submission: {wall / n:.1f} s wall, {(user + sys_) / n:.1f} s CPU")
        print_split(timings)
        summary = json.loads((tmp / "out" / "summary.json").read_text())
        scores = {(s["total"], s["max_score"], s["error"]) for s in summary["students"]}
        full = all(t == m and e is None for t, m, e in scores)
        print(f"  verdicts: {'every submission has full marks' if full else 'NOT all full marks: ' + str(scores)}")
        remove_staged(subs.iterdir())
        timings.unlink(missing_ok=True)
        if not full:
            kept = LAB_TARGET / f"bench-reports-{os.getpid()}"
            shutil.copytree(tmp / "out", kept)
            sys.exit(f"the reports are in {kept}")


def check(args, lab):
    if args.cold:
        remove_cold()
    with tempfile.TemporaryDirectory(prefix="lab-check-bench-") as tmp:
        tmp = Path(tmp)
        tree = tmp / "tree"
        make_submission(tree, int(time.time()))
        timings = tmp / "timings.jsonl"
        cmd = [lab, "check", "--all", "--tree", tree]
        for title in ("first check of a new tree", "again after one changed file"):
            load = load_average()
            if timings.exists():
                timings.unlink()
            wall, user, sys_, done = measured(
                cmd, env={"LAB_TIMINGS": str(timings)}, stdout=subprocess.PIPE, text=True
            )
            report(f"check --all --tree: {title}", wall, user, sys_, load)
            print_split(timings)
            if done.returncode != 0:
                sys.exit(f"check failed ({done.returncode}):\n{done.stdout}")
            with open(tree / "labs" / "03-fifo" / "src" / "lib.rs", "a") as f:
                f.write("// changed\n")
        remove_staged([tree])


def verify(args, lab):
    load = load_average()
    wall, user, sys_, done = measured([lab, "verify", *args.labs, "--jobs", str(args.jobs)])
    report(f"verify {' '.join(args.labs) or '(every lab)'} --jobs {args.jobs}", wall, user, sys_, load)
    if done.returncode != 0:
        sys.exit("verify found problems")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    g = sub.add_parser("grade")
    g.add_argument("-n", "--submissions", type=int, default=5)
    g.add_argument("--jobs", type=int, default=2)
    g.add_argument("--sandbox", action="store_true", help="bubblewrap, as grade does by default")
    g.add_argument("--cold", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("--cold", action="store_true")
    v = sub.add_parser("verify")
    v.add_argument("labs", nargs="*")
    v.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    lab = checker()
    {"grade": grade, "check": check, "verify": verify}[args.what](args, lab)


if __name__ == "__main__":
    main()
