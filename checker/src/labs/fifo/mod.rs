//! Lab 03 — named pipes (FIFOs): the string-reversing server and its client.
//!
//! The checker plays the other end: it is the client of the student's
//! server (it makes its own `reply-ID` FIFOs and sends requests) and the
//! server of the student's client (it makes `requests` and answers). Its own
//! opens never block: read ends are opened with O_NONBLOCK plus a write end
//! of its own, write ends with O_NONBLOCK and retried until the deadline, so
//! a hang of the student's code becomes a report, never a stuck checker.
//! Texts are random, and the checker sometimes answers something other than
//! the reverse, so printing the expected text cannot pass.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::pid::Pid;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::Mode;
use rand::Rng;
use rand::rngs::StdRng;

use crate::labs::Lab;
use crate::process::{Exit, Proc, Waited};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant};

mod peers;
mod scenarios;
mod unkind;

use peers::*;
use scenarios::*;
use unkind::*;

/// PIPE_BUF on Linux: the largest write that stays in one piece.
const PIPE_BUF: usize = 4096;
/// Round trips in the timing scenarios, and the time they may take. A
/// correct program needs about 20 ms for all of them.
const ROUND_TRIPS: usize = 200;
const ROUND_TRIP_BUDGET: Duration = Duration::from_secs(1);

pub static LAB: Lab = Lab {
    number: 3,
    slug: "fifo",
    title: "Named pipes: a server and its clients",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "server-reverses",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `server` and, as two clients with FIFOs of their own, sends it random texts",
            expects: "the FIFO `requests` in the current directory, and each text reversed on the FIFO of the client that asked",
            hints: &[
                "The server makes the FIFO `requests` (mkfifo), then opens it for reading. A plain open for reading waits until a writer comes: open it with O_NONBLOCK, then open a write end of your own, then make the read end blocking again (Listener::open).",
                "A request is one line `PID TEXT`. Split it at the first space only: the text may hold spaces. Reply to `reply-PID` in the same directory with `send`.",
                "Reverse the characters (`text.chars().rev()`), not the bytes: `ñ` and `é` take two bytes each in UTF-8.",
            ],
            max_procs: 8,
            run: server_reverses,
        },
        Scenario {
            name: "client-asks-server",
            points: 2,
            limit: Duration::from_secs(10),
            does: "makes the FIFO `requests` and plays the server: runs `client`, types texts on its stdin and answers each request",
            expects: "a request `PID TEXT` per line typed, with the client's real pid, its reply FIFO `reply-PID` made before it asks, the checker's answer printed, and the reply FIFO removed when the client ends",
            hints: &[
                "Client::connect makes `reply-PID` (your own pid: `std::process::id()`) and listens on it with Listener::open, before any request goes out.",
                "Client::ask sends `PID TEXT` to `requests` with `send`, then `receive`s one line from its own FIFO. Print what the server answered, whatever it is.",
                "Dropping the client removes its FIFO (`impl Drop for Client`): the name belongs to this client alone.",
            ],
            max_procs: 8,
            run: client_asks_server,
        },
        Scenario {
            name: "server-round-trips",
            points: 2,
            limit: Duration::from_secs(10),
            does: "sends the server 200 requests, one after the other, each after the reply to the previous one",
            expects: "all 200 answered correctly in under a second (a correct server needs about 20 ms)",
            hints: &[
                "Nothing in the server needs to wait for time to pass: it blocks in read() until a request comes, and the reply goes to a FIFO only that client reads.",
                "The tutorial's `sleep(2)` kept the server from reading back its own reply from a FIFO used both ways. With a request FIFO and a reply FIFO per client there is nothing to sleep for: take the sleep out.",
            ],
            max_procs: 8,
            run: server_round_trips,
        },
        Scenario {
            name: "client-round-trips",
            points: 2,
            limit: Duration::from_secs(10),
            does: "plays the server and types 200 texts into `client`, answering each request at once",
            expects: "all 200 round trips in under a second (a correct client needs about 20 ms)",
            hints: &[
                "After sending its request, the client reads its own reply FIFO: that read() blocks until the reply is there. No sleep is needed, and a sleep is no synchronisation.",
                "Only this client reads `reply-PID`, so it can never read someone else's reply, nor its own request.",
            ],
            max_procs: 8,
            run: client_round_trips,
        },
        Scenario {
            name: "end-cleans-up",
            points: 2,
            limit: Duration::from_secs(10),
            does: "sends the server a few requests, then `end`",
            expects: "the server to exit with status 0 and to remove its FIFO `requests`",
            hints: &[
                "`end` makes `serve` return; dropping the Server must then remove `requests` (`impl Drop for Server`, `std::fs::remove_file`).",
                "A FIFO is a name in the file system: it outlives the process that made it unless someone removes it.",
            ],
            max_procs: 8,
            run: end_cleans_up,
        },
        Scenario {
            name: "stale-fifo",
            points: 1,
            limit: Duration::from_secs(10),
            does: "leaves a stale FIFO `requests` (as a crashed server would) before it runs `server`",
            expects: "the server to start anyway, answer, and remove `requests` at `end`",
            hints: &[
                "mkfifo fails with EEXIST when the name exists. A killed server leaves its FIFO behind, so the next one must cope.",
                "On EEXIST: if the path is a FIFO and nobody reads it (a non-blocking open for writing fails with ENXIO), it is stale. Remove it and make it again.",
            ],
            max_procs: 8,
            run: stale_fifo,
        },
        Scenario {
            name: "concurrent-clients",
            points: 2,
            limit: Duration::from_secs(15),
            does: "plays six clients at once with long texts (up to PIPE_BUF); first it stops the server while all six send, so their requests wait together in the FIFO",
            expects: "every client to get the reverse of its own text, every time",
            hints: &[
                "One read() returns whatever the FIFO holds: several requests, or a part of one. A request ends at its newline: read up to it and keep the rest for next time (BufReader::read_until).",
                "Each client writes its whole request in one write() of at most PIPE_BUF bytes, so requests never mix. They can still arrive back to back in one read.",
            ],
            max_procs: 8,
            run: concurrent_clients,
        },
        Scenario {
            name: "replies-reach-their-client",
            points: 2,
            limit: Duration::from_secs(15),
            does: "runs `server` and three `client`s at once, plus a request of the checker's own sent first",
            expects: "each client to print the reverse of its own texts, never another client's, and the checker to get its own reply",
            hints: &[
                "A FIFO that several clients read hands each reply to whichever client reads first: the wrong one. Give each client its own reply FIFO, `reply-PID`.",
                "The server finds the client's FIFO from the pid in the request: `given::reply_fifo(dir, pid)`.",
            ],
            max_procs: 12,
            run: replies_reach_their_client,
        },
        Scenario {
            name: "requests-stay-whole",
            points: 1,
            limit: Duration::from_secs(15),
            does: "plays the server for four `client`s typing long texts at once, then types one text too long for PIPE_BUF",
            expects: "every request to arrive whole, and the client to refuse (`refused: ...`) a request longer than PIPE_BUF bytes instead of sending it",
            hints: &[
                "Write each request with ONE write() call: `write!(file, \"{pid} {text}\\n\")` may make several, and another client's bytes can land between them.",
                "Only writes of at most PIPE_BUF (4096) bytes are atomic. `send` must refuse a longer line.",
            ],
            max_procs: 12,
            run: requests_stay_whole,
        },
        Scenario {
            name: "client-vanishes",
            points: 2,
            limit: Duration::from_secs(15),
            does: "holds the server stopped while two clients send a request and vanish (one closes its reply FIFO, one removes it), lets it go on, then asks as a third client; then sends `end` while a fourth client keeps `requests` open",
            expects: "the third client answered, and the server to stop at `end` with status 0 and remove `requests`, although a client still had it open",
            hints: &[
                "A client can die between its request and its reply. Opening its reply FIFO then fails (ENXIO: nobody reads it; ENOENT: it is gone): report it and go on with the next request, never stop the server.",
                "Open the reply FIFO with O_NONBLOCK: a plain open for writing waits until somebody opens it for reading, and a dead client never will.",
                "`end` stops the server at once: it must not wait for end of file on `requests`, which never comes while a client holds it open.",
            ],
            max_procs: 8,
            run: client_vanishes,
        },
        Scenario {
            name: "waiting-sleeps",
            points: 1,
            limit: Duration::from_secs(15),
            does: "watches the CPU time of the server while it waits for a request, then of the client while it waits for a reply the checker holds back",
            expects: "both to sleep while they wait (blocked in read), not to spin",
            hints: &[
                "A read() on a FIFO without O_NONBLOCK sleeps until data comes. With O_NONBLOCK it returns EAGAIN at once, and a loop that tries again burns a whole CPU.",
                "Listener::open opens with O_NONBLOCK only so that the open does not wait: make the read end blocking again (fcntl F_SETFL without O_NONBLOCK).",
            ],
            max_procs: 8,
            run: waiting_sleeps,
        },
        Scenario {
            name: "name-taken",
            points: 1,
            limit: Duration::from_secs(15),
            does: "puts a regular file with data at `requests` and runs `server`; then makes `requests` a FIFO the checker reads (a live server) and runs `server` again",
            expects: "both times the server to stop with an error and a non-zero status, the regular file intact and the checker's FIFO untouched",
            hints: &[
                "Only a stale FIFO may be replaced: check with symlink_metadata that the path is a FIFO, and never delete a file that merely has the name.",
                "A FIFO that someone reads is not stale: a non-blocking open for writing succeeds then. Stop with an error instead of stealing the name.",
            ],
            max_procs: 8,
            run: name_taken,
        },
        Scenario {
            name: "requests-back-to-back",
            points: 1,
            limit: Duration::from_secs(15),
            does: "sends one request in two writes with a pause, cut at a random byte; then twenty requests near PIPE_BUF before reading any reply, so that the replies (over 64 KiB) fill the client's FIFO",
            expects: "every reply, whole and in order",
            hints: &[
                "A request ends at its newline, however many reads it takes: read up to it (BufReader::read_until).",
                "A reply that finds the client's FIFO full must wait for room: after the non-blocking open, make the write end blocking again.",
            ],
            max_procs: 8,
            run: requests_back_to_back,
        },
    ],
    fixtures: &[
        Fixture {
            name: "reverses-bytes",
            caught_by: "server-reverses",
            says: "bytes",
        },
        Fixture {
            name: "client-keeps-fifo",
            caught_by: "client-asks-server",
            says: "still there",
        },
        Fixture {
            name: "server-sleeps",
            caught_by: "server-round-trips",
            says: "slept",
        },
        Fixture {
            name: "client-sleeps",
            caught_by: "client-round-trips",
            says: "slept",
        },
        Fixture {
            name: "server-keeps-fifo",
            caught_by: "end-cleans-up",
            says: "still there",
        },
        Fixture {
            name: "fails-on-stale-fifo",
            caught_by: "stale-fifo",
            says: "stale",
        },
        Fixture {
            name: "one-read-one-request",
            caught_by: "concurrent-clients",
            says: "several requests",
        },
        Fixture {
            name: "shared-reply-fifo",
            caught_by: "replies-reach-their-client",
            says: "another client",
        },
        Fixture {
            name: "no-size-check",
            caught_by: "requests-stay-whole",
            says: "PIPE_BUF",
        },
        Fixture {
            name: "dies-on-malformed-request",
            caught_by: "client-vanishes",
            says: "without its client's pid",
        },
        Fixture {
            name: "dies-on-gone-client",
            caught_by: "client-vanishes",
            says: "went away",
        },
        Fixture {
            name: "blocking-reply-open",
            caught_by: "client-vanishes",
            says: "without O_NONBLOCK",
        },
        Fixture {
            name: "spins-on-empty-fifo",
            caught_by: "waiting-sleeps",
            says: "busy loop",
        },
        Fixture {
            name: "removes-whatever-is-there",
            caught_by: "name-taken",
            says: "not its own",
        },
        Fixture {
            name: "steals-live-fifo",
            caught_by: "name-taken",
            says: "live server",
        },
        Fixture {
            name: "reply-stays-nonblocking",
            caught_by: "requests-back-to-back",
            says: "EAGAIN",
        },
    ],
    variants: &[Variant {
        name: "rdwr-listener",
        design: "the listener opens its FIFO once with O_RDWR instead of a read end and a write end",
    }],
};
