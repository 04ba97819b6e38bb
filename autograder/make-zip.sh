#!/usr/bin/env bash
# Makes autograder.zip, the file to upload to Gradescope: setup.sh and
# run_autograder at the top, and course/, the students' template of the
# committed course (no solutions, no fixtures), without its book.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=${1:-$top/autograder.zip}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The course as students get it (`cargo lab template`: no solutions, no
# fixtures), without its book and history, which grading does not need.
# Its advice on pushing the template is for instructors, not for this zip:
# shown only if it fails.
if ! cargo run --quiet --locked --manifest-path "$top/Cargo.toml" --package checker --bin lab -- \
    template "$work/course" 2> "$work/template.log"; then
    cat "$work/template.log" >&2
    exit 1
fi
rm -rf "$work/course/book" "$work/course/.git"
cp "$here/setup.sh" "$here/run_autograder" "$work/"
(cd "$work" && rm -f "$out" && zip -qr "$out" setup.sh run_autograder course)
echo "wrote $out"
