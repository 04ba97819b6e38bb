#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# The zip made by make-zip.sh unpacks to /autograder/source: this script,
# run_autograder, and course/ (the course without its solutions).
set -euo pipefail
cd /autograder/source

apt-get update
apt-get install -y --no-install-recommends build-essential curl ca-certificates bubblewrap

if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
# shellcheck disable=SC1091
source "$HOME/.cargo/env"

# Build the checker once, and build every lab's dependencies once, so that
# grading a submission only compiles the student's own code.
cd course
cargo build --release --locked -p checker
# run_autograder builds every submission in this target directory.
LAB_TARGET_DIR=$PWD/target/lab/autograder ./target/release/lab check --all --tree . >/dev/null || true
