#!/usr/bin/env bash
# Makes autograder.zip, the file to upload to Gradescope: setup.sh and
# run_autograder at the top, and course/, the committed course without
# its solutions, fixtures or book.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=${1:-$top/autograder.zip}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/course"
git -C "$top" archive HEAD | tar -x -C "$work/course"
rm -rf "$work/course/solutions" "$work/course/checker/fixtures" "$work/course/book"
cp "$here/setup.sh" "$here/run_autograder" "$work/"
(cd "$work" && rm -f "$out" && zip -qr "$out" setup.sh run_autograder course)
echo "wrote $out"
