#!/usr/bin/env bash
# Sets up the course's container (VS Code Dev Containers, GitHub
# Codespaces): what the labs and the book need besides Rust, then the
# checker, built once so that the first `cargo lab` starts at once.
# devcontainer.json runs it when the container is created, and with
# --mount-only each time it starts. It also works on a Debian or Ubuntu
# machine of your own (as root, or a user with sudo).
#
# Why the container has SYS_PTRACE and no seccomp filter (devcontainer.json):
# so that `strace -f` works, as the book's "Watch it happen" sections use it.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi

# POSIX message queues (lab 09) show as files in /dev/mqueue, where the
# checker looks for queues a program left behind. Docker and Codespaces
# mount it in every container; elsewhere, mount it when we may.
mount_mqueue() {
    if grep -qs ' /dev/mqueue ' /proc/mounts; then
        return
    fi
    if $sudo mkdir -p /dev/mqueue && $sudo mount -t mqueue none /dev/mqueue 2>/dev/null; then
        echo "setup: mounted /dev/mqueue"
    else
        echo "setup: note: /dev/mqueue is not mounted and could not be; lab 09 works, but the checker cannot list queues left behind"
    fi
}
mount_mqueue
if [ "${1:-}" = "--mount-only" ]; then
    exit 0
fi

# bubblewrap isolates submissions when grading; strace shows the system
# calls a lab makes.
need=()
for tool in bwrap strace; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing bubblewrap and strace"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends bubblewrap strace
fi

# mdBook 0.5, for the book: its release binary (seconds), or built from
# crates.io when the download fails (minutes).
MDBOOK_VERSION=0.5.4
if ! mdbook --version 2>/dev/null | grep -q '^mdbook v0\.5\.'; then
    echo "setup: installing mdBook $MDBOOK_VERSION"
    bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    mkdir -p "$bin"
    release="https://github.com/rust-lang/mdBook/releases/download/v${MDBOOK_VERSION}/mdbook-v${MDBOOK_VERSION}-$(uname -m)-unknown-linux-gnu.tar.gz"
    if ! curl -fsSL --retry 2 "$release" | tar -xz -C "$bin"; then
        echo "setup: the release binary could not be downloaded; building mdBook instead"
        cargo install mdbook --locked --version "~${MDBOOK_VERSION}"
    fi
fi

# The checker, and the dependencies every lab builds with (nix, libc,
# anyhow, rand), built now rather than at the first `cargo lab check`.
# Checking lab 01's untouched starter fails, as it should; its result goes
# to a file of its own, so `cargo lab` still says that nothing was checked.
echo "setup: building the checker"
cargo build --locked --quiet -p lab-start -p checker
echo "setup: building the labs' dependencies"
LAB_PROGRESS=$(mktemp) cargo lab check 1 --scenario fork-returns-twice >/dev/null 2>&1 || true
echo "setup: done. Run \`cargo lab\` to begin."
