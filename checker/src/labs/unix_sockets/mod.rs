//! Lab 10 — Unix domain sockets.
//!
//! The checker is every client of the student's server: it opens twenty
//! connections at once, holds half of them in the middle of a request
//! while it expects replies on the others (a server that serves one client
//! at a time cannot pass), and writes its requests in random pieces at
//! random moments. It leaves a stale socket file in the server's way, and
//! listens on the path itself to see that a live server is not robbed. For
//! descriptor passing it is the other process: it receives the student's
//! descriptor and reads through it, or sends one end of a pipe only it
//! holds and reads what arrives at the other. All socket I/O has timeouts
//! taken from the scenario's deadline, so a server that hangs becomes a
//! report of where it is blocked, never a stuck checker.

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::diagnose::syscall_name;
use crate::labs::Lab;
use crate::pid::Pid;
use crate::process::{Exit, Proc, Waited};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant};

mod pairs;
mod peers;
mod server;
mod unkind;

use pairs::*;
use peers::*;
use server::*;
use unkind::*;

pub static LAB: Lab = Lab {
    number: 10,
    slug: "unix-sockets",
    title: "Unix domain sockets",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "twenty-clients-at-once",
            points: 4,
            limit: Duration::from_secs(20),
            does: "runs `revserver rev.sock`, opens 20 connections, leaves 10 of them in the middle of a request, and sends the other 10 their requests in random pieces, interleaved; then more requests on all 20",
            expects: "every request's reverse on its own connection, the later connections answered while the first ones are still half-written",
            hints: &[
                "A server that waits for one client's request blocks every other client meanwhile. Serve each connection in a thread of its own (`std::thread::scope` and `scope.spawn`).",
                "`serve` loops on `listener.accept()` and hands each stream to a new thread that calls `answer(&stream)`; the main thread goes straight back to `accept`.",
                "`answer` writes each reply to the stream the request came from: `send(stream, &reverse(&request))`. Nothing shared between threads should decide where a reply goes.",
            ],
            max_procs: 64,
            run: twenty_clients_at_once,
        },
        Scenario {
            name: "requests-in-pieces",
            points: 3,
            limit: Duration::from_secs(15),
            does: "sends requests to `revserver` cut in 2 to 5 pieces at random bytes (inside a character, too), with pauses between pieces, then two requests in one write",
            expects: "one reply per whole request, each the request reversed",
            hints: &[
                "A stream socket keeps no message boundaries: one read() returns whatever has arrived, half a request or two requests.",
                "Frame messages as lines and read up to the newline: `BufReader::new(stream)` and `read_until(b'\\n', ...)`. Decode UTF-8 only once the line is whole.",
            ],
            max_procs: 16,
            run: requests_in_pieces,
        },
        Scenario {
            name: "stale-socket-file",
            points: 2,
            limit: Duration::from_secs(10),
            does: "leaves a socket file at rev.sock that nobody listens on (as a crashed server would), then runs `revserver rev.sock`",
            expects: "the server to start anyway, answer a request, and stop on `end` with status 0",
            hints: &[
                "A socket file stays on disk after its server is gone, and bind() on its path fails with EADDRINUSE.",
                "In `bind_fresh`, on `ErrorKind::AddrInUse`: if the file is a socket and `UnixStream::connect(path)` is refused (`ErrorKind::ConnectionRefused`), nobody listens: remove it and bind again.",
            ],
            max_procs: 16,
            run: stale_socket_file,
        },
        Scenario {
            name: "live-server-kept",
            points: 1,
            limit: Duration::from_secs(10),
            does: "listens on rev.sock itself, then runs `revserver rev.sock`",
            expects: "the server to refuse to start (exit status 1) and leave the checker's socket file and listener alone",
            hints: &[
                "Removing whatever is at the path steals it from a server that is still running: its clients would reach the new one, and it would never know.",
                "Before removing the file, try `UnixStream::connect(path)`: if it connects, somebody is listening. Return an error instead.",
            ],
            max_procs: 16,
            run: live_server_kept,
        },
        Scenario {
            name: "socket-file-removed",
            points: 2,
            limit: Duration::from_secs(10),
            does: "sends a few clients' requests to `revserver rev.sock`, closes them, then sends `end` on a new connection",
            expects: "the server to exit with status 0 and no rev.sock left behind",
            hints: &[
                "The socket file is not removed when the listener is closed or the process exits: the server must remove it.",
                "After the accept loop ends, `std::fs::remove_file(path)`. To leave the loop when a thread receives `end`, set an `AtomicBool` and wake `accept()` with a connection of your own.",
            ],
            max_procs: 64,
            run: socket_file_removed,
        },
        Scenario {
            name: "socketpair-parent-child",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `pair`, reads the socket descriptors of parent and child in /proc, sends random lines one at a time, then closes the parent's stdin",
            expects: "one socket end in each process, each line back reversed, and the child to end when the parent closes its end",
            hints: &[
                "`socketpair` gives two connected sockets. Unlike a pipe, each end reads and writes: one pair is a two-way conversation.",
                "After fork, each process drops the end it does not use. A child that keeps the parent's end never reads end of file: it waits for itself.",
            ],
            max_procs: 8,
            run: socketpair_parent_child,
        },
        Scenario {
            name: "pass-a-descriptor",
            points: 2,
            limit: Duration::from_secs(10),
            does: "listens on fd.sock and runs `fdpass send fd.sock data.bin SKIP` on a random file; reads through the descriptor it receives",
            expects: "an SCM_RIGHTS descriptor for data.bin that reads on from byte SKIP, where the program's own reading stopped",
            hints: &[
                "A descriptor is a number that only means something in its own process. To give another process the open file itself, send it with `sendmsg` in an `SCM_RIGHTS` control message.",
                "`sendmsg::<()>(fd, &[IoSlice::new(payload)], &[ControlMessage::ScmRights(&[raw_fd])], MsgFlags::empty(), None)`: the payload must be at least one byte.",
            ],
            max_procs: 8,
            run: pass_a_descriptor,
        },
        Scenario {
            name: "receive-a-descriptor",
            points: 2,
            limit: Duration::from_secs(10),
            does: "listens on fd.sock, runs `fdpass recv fd.sock`, and sends it the write end of a pipe only the checker holds, with a random line",
            expects: "the line to come out of the pipe's read end, written through the descriptor the program received",
            hints: &[
                "`recvmsg` with a control buffer from `nix::cmsg_space!(RawFd)`; the descriptor is in `ControlMessageOwned::ScmRights(fds)` among `msg.cmsgs()?`.",
                "The kernel installs the received descriptor in your table: make it an `OwnedFd` (`unsafe { OwnedFd::from_raw_fd(fd) }`) so it is closed once.",
            ],
            max_procs: 8,
            run: receive_a_descriptor,
        },
        Scenario {
            name: "client-vanishes",
            points: 2,
            limit: Duration::from_secs(15),
            does: "holds the server stopped while three clients go away (one after its request, one in the middle of it, one at once), lets it go on and asks on a fourth connection; then sends `end` while a fifth client is still connected",
            expects: "the fourth answered; after `end`, rev.sock removed at once, the fifth still served, and the server to exit with status 0 when it hangs up",
            hints: &[
                "A client can hang up at any moment: its request is cut short, or the reply's write fails (EPIPE). Report it and end that client's thread; never `unwrap` what a client can make fail.",
                "After `end`, remove the socket file first, so that no new client connects, then wait for the clients still connected.",
            ],
            max_procs: 64,
            run: client_vanishes,
        },
        Scenario {
            name: "waiting-sleeps",
            points: 1,
            limit: Duration::from_secs(15),
            does: "watches the server's CPU time while it waits for a connection, then while a connection is open and silent",
            expects: "the server to sleep while it waits (blocked in accept and read), not to spin",
            hints: &[
                "accept() and read() on a blocking socket sleep until something comes. On a socket set to non-blocking they return WouldBlock at once, and a loop that tries again burns a whole CPU.",
                "To stop the accept loop at `end`, wake accept() with a connection of your own rather than polling a flag.",
            ],
            max_procs: 64,
            run: waiting_sleeps,
        },
        Scenario {
            name: "file-not-ours",
            points: 1,
            limit: Duration::from_secs(10),
            does: "puts a regular file with data (every byte value) at rev.sock, then runs `revserver rev.sock`",
            expects: "the server to stop with an error and a non-zero status, and the file left as it was",
            hints: &[
                "connect() to a regular file is refused, just as to a stale socket: that alone does not tell a stale socket file from somebody's data.",
                "Before removing anything, check with symlink_metadata that the path is a socket (`file_type().is_socket()`).",
            ],
            max_procs: 16,
            run: file_not_ours,
        },
        Scenario {
            name: "long-requests",
            points: 1,
            limit: Duration::from_secs(15),
            does: "sends requests past a read buffer, past a page and PIPE_BUF, and of several pages, each in random pieces with pauses; then one in two writes, then ten back to back; then, on a new connection, a line one byte past MAX_MESSAGE that never ends",
            expects: "every reply whole and in order, and the endless line's connection closed by the server, which goes on serving",
            hints: &[
                "A request may be up to MAX_MESSAGE bytes (64 KiB): many reads' worth. Read up to the newline, however many reads it takes.",
                "Keep one BufReader for the whole connection, so that what one read brings past a newline is the start of the next request.",
            ],
            max_procs: 16,
            run: long_requests,
        },
    ],
    fixtures: &[
        Fixture {
            name: "one-client-at-a-time",
            caught_by: "twenty-clients-at-once",
            says: "one connection at a time",
        },
        Fixture {
            name: "reply-to-latest-client",
            caught_by: "twenty-clients-at-once",
            says: "another connection",
        },
        Fixture {
            name: "single-read-no-framing",
            caught_by: "requests-in-pieces",
            says: "one read()",
        },
        Fixture {
            name: "stale-socket-refused",
            caught_by: "stale-socket-file",
            says: "crashed run",
        },
        Fixture {
            name: "removes-live-socket",
            caught_by: "live-server-kept",
            says: "live server",
        },
        Fixture {
            name: "socket-file-left-behind",
            caught_by: "socket-file-removed",
            says: "left behind",
        },
        Fixture {
            name: "child-keeps-parents-end",
            caught_by: "socketpair-parent-child",
            says: "both ends",
        },
        Fixture {
            name: "fd-sent-as-number",
            caught_by: "pass-a-descriptor",
            says: "means nothing in another process",
        },
        Fixture {
            name: "answer-unwraps",
            caught_by: "client-vanishes",
            says: "never `unwrap`",
        },
        Fixture {
            name: "socket-removed-after-clients",
            caught_by: "client-vanishes",
            says: "only once every client",
        },
        Fixture {
            name: "nonblocking-accept-loop",
            caught_by: "waiting-sleeps",
            says: "busy loop",
        },
        Fixture {
            name: "removes-any-file",
            caught_by: "file-not-ours",
            says: "not its own",
        },
        Fixture {
            name: "no-length-limit",
            caught_by: "long-requests",
            says: "with no limit",
        },
        Fixture {
            name: "page-sized-limit",
            caught_by: "long-requests",
            says: "refused it",
        },
    ],
    variants: &[Variant {
        name: "poll-loop",
        design: "one thread serves every client with a poll loop over non-blocking sockets",
    }],
};

/// How long the checker waits for something a correct program does in a
/// few milliseconds: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);

/// The server's socket, relative to the scenario's directory (its current
/// directory): short, whatever the temporary directory's path (sun_path
/// holds 108 bytes).
const SOCKET: &str = "rev.sock";
