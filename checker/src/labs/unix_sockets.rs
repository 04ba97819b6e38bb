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
use crate::process::{Exit, Proc, Waited};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num};

pub static LAB: Lab = Lab {
    number: 10,
    slug: "unix-sockets",
    title: "Unix domain sockets",
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
    ],
    variants: &[],
};

/// How long the checker waits for something a correct program does in a
/// few milliseconds: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);

/// The server's socket, relative to the scenario's directory (its current
/// directory): short, whatever the temporary directory's path (sun_path
/// holds 108 bytes).
const SOCKET: &str = "rev.sock";

// ---------------------------------------------------------------------
// Talking to the program over sockets, always within the deadline.

/// `now + within`, but never past the scenario's deadline.
fn until(run: &Run, within: Duration) -> Instant {
    (Instant::now() + within).min(run.deadline)
}

/// What waiting for a line on a connection gave.
enum Got {
    Line(String),
    /// The other side closed the connection.
    Closed,
    TimedOut,
    Failed(String),
}

/// One connection of the checker's to the program.
struct Conn {
    stream: UnixStream,
    /// Bytes received and not yet returned as a line.
    pending: Vec<u8>,
}

impl Conn {
    fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            pending: Vec::new(),
        }
    }

    fn connect(run: &Run, path: &str) -> Result<Conn, Failure> {
        let stream = UnixStream::connect(run.sandbox.tmp.join(path)).map_err(|e| {
            Failure::wrong(
                format!("the server to accept connections on {path}"),
                format!("connect() failed: {e}"),
            )
        })?;
        Ok(Conn::new(stream))
    }

    /// Writes all of `bytes`, giving up at `until`.
    fn write(&mut self, bytes: &[u8], until: Instant) -> Result<(), String> {
        let left = until.saturating_duration_since(Instant::now());
        let _ = self
            .stream
            .set_write_timeout(Some(left.max(Duration::from_millis(1))));
        self.stream.write_all(bytes).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                "the write timed out: the program does not read this connection".to_string()
            }
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                "the program has closed this connection".to_string()
            }
            _ => e.to_string(),
        })
    }

    /// Every whole line that has arrived by now, without waiting; they
    /// stay pending.
    fn received_now(&mut self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        if self.stream.set_nonblocking(true).is_ok() {
            while let Ok(n @ 1..) = self.stream.read(&mut buf) {
                self.pending.extend_from_slice(&buf[..n]);
            }
            let _ = self.stream.set_nonblocking(false);
        }
        self.pending
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// The next line (without its newline), waiting until `until`.
    fn line(&mut self, until: Instant) -> Got {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Got::Line(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Got::Closed,
                Err(e) => return Got::Failed(e.to_string()),
            }
        }
    }
}

/// The next line the program prints on stdout, waiting at most `within`.
fn line_within(run: &Run, p: &mut Proc, within: Duration, what: &str) -> Result<String, Failure> {
    match p.next_line(until(run, within)) {
        Ok(Some(line)) => Ok(line.text),
        Ok(None) => Err(Failure::wrong(
            what.to_string(),
            format!("{} closed its output before printing it", p.name),
        )),
        Err(Waited::TimedOut) => Err(run.timed_out(what)),
    }
}

/// Starts `revserver PATH` and waits until it says it listens.
fn start_server(run: &mut Run) -> Result<Proc, Failure> {
    let mut p = run.spawn("revserver", &[SOCKET.to_string()])?;
    let what = format!("a line `server pid=P listening on {SOCKET}`");
    let line = match p.next_line(until(run, PATIENCE)) {
        Ok(Some(line)) => line.text,
        Ok(None) => {
            // It ended before listening: say how, and what it said.
            let exit = p
                .wait(until(run, Duration::from_secs(1)))
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            let said = p.captures().1.text();
            let said = said
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!(", saying `{}`", l.trim()))
                .unwrap_or_default();
            return Err(Failure::wrong(
                what,
                format!("revserver ended before it listened{exit}{said}"),
            ));
        }
        Err(Waited::TimedOut) => return Err(run.timed_out(&what)),
    };
    if !line.contains("listening on") {
        return Err(Failure::wrong(what, format!("`{line}`")));
    }
    Ok(p)
}

/// Waits for `p` to exit, at most `within`.
fn exit_within(run: &Run, p: &mut Proc, within: Duration, what: &str) -> Result<Exit, Failure> {
    p.wait(until(run, within))
        .map_err(|_| run.timed_out(&format!("{} to {what}", p.name)))
}

/// Accepts the program's connection on the checker's own listener.
fn accept_from(
    run: &Run,
    listener: &UnixListener,
    p: &mut Proc,
    path: &str,
) -> Result<UnixStream, Failure> {
    let what = format!("{} to connect to {path}", p.name);
    listener.set_nonblocking(true).map_err(Failure::internal)?;
    let until = until(run, PATIENCE);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(Failure::internal)?;
                return Ok(stream);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(Failure::internal(format!("accept: {e}"))),
        }
        if let Ok(exit) = p.wait(Instant::now()) {
            return Err(Failure::wrong(
                what,
                format!("it ended ({exit}) without connecting"),
            ));
        }
        if Instant::now() >= until {
            return Err(run.timed_out(&what));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------
// Requests.

const WORDS: &[&str] = &[
    "socket",
    "stream",
    "accept",
    "listen",
    "bind",
    "connect",
    "client",
    "server",
    "abracadabra",
    "zócalo",
    "ñandú",
    "über",
    "señal",
    "mañana",
    "ソケット",
    "接続",
];

fn words(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"x"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

/// Cuts `bytes` into `pieces` non-empty pieces at random offsets (inside a
/// multi-byte character, too).
fn cut(rng: &mut impl Rng, bytes: &[u8], pieces: usize) -> Vec<Vec<u8>> {
    let pieces = pieces.clamp(1, bytes.len().max(1));
    let mut cuts: Vec<usize> = Vec::new();
    while cuts.len() + 1 < pieces {
        let at = rng.random_range(1..bytes.len());
        if !cuts.contains(&at) {
            cuts.push(at);
        }
    }
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for at in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[from..at].to_vec());
        from = at;
    }
    out
}

/// Sends every connection's pieces in order, picking the next connection
/// at random, with a short random pause now and then.
fn interleave(
    run: &mut Run,
    conns: &mut [Conn],
    queues: &mut [Vec<Vec<u8>>],
    until: Instant,
) -> Outcome {
    for q in queues.iter_mut() {
        q.reverse();
    }
    loop {
        let ready: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let Some(&i) = ready.choose(&mut run.rng) else {
            return Ok(());
        };
        let piece = queues[i].pop().unwrap_or_default();
        conns[i].write(&piece, until).map_err(|e| {
            Failure::wrong(
                format!("the server to read the requests on connection {i}"),
                e,
            )
        })?;
        if run.rng.random_bool(0.3) {
            std::thread::sleep(Duration::from_millis(run.rng.random_range(1..4)));
        }
    }
}

/// How many threads and child processes `pid` has, in words.
fn threads_and_children(pid: i32) -> String {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0);
    let children = procfs::children(pid).len();
    format!("the server has {threads} thread(s) and {children} child process(es)")
}

/// Reads one reply on each connection in `which` and compares it with the
/// reverse of `requests[i]`. `all` is every request of the scenario, to
/// recognise a reply that went to the wrong connection.
fn expect_replies(
    conns: &mut [Conn],
    which: &[usize],
    requests: &[String],
    all: &[(usize, String)],
    until: Instant,
    on_silence: impl Fn(usize, usize) -> Failure,
) -> Outcome {
    for (answered, &i) in which.iter().enumerate() {
        let wanted = reverse(&requests[i]);
        match conns[i].line(until) {
            Got::Line(line) if line == wanted => {}
            Got::Line(line) => {
                let f = Failure::wrong(
                    format!(
                        "`{wanted}` on connection {i}, the reverse of its request `{}`",
                        requests[i]
                    ),
                    format!("`{line}`"),
                );
                if let Some((j, req)) = all.iter().find(|(j, req)| *j != i && reverse(req) == line)
                {
                    return Err(f.because(format!(
                        "that is the reply to `{req}`, a request sent on another connection ({j}): \
                         a reply must go back on the stream its request came from. Pass each thread \
                         its own stream, and write the reply to that stream, not to a variable the \
                         threads share"
                    )));
                }
                return Err(f);
            }
            Got::Closed => {
                return Err(Failure::wrong(
                    format!("`{wanted}` on connection {i}"),
                    "the server closed connection {i} without replying"
                        .replace("{i}", &i.to_string()),
                ));
            }
            Got::Failed(e) => {
                return Err(Failure::wrong(
                    format!("`{wanted}` on connection {i}"),
                    format!("reading connection {i} failed: {e}"),
                ));
            }
            Got::TimedOut => {
                // Did the reply go to another connection?
                let wanted_here = reverse(&requests[i]);
                for (j, c) in conns.iter_mut().enumerate() {
                    if j != i && c.received_now().contains(&wanted_here) {
                        return Err(Failure::wrong(
                            format!("`{wanted_here}` on connection {i}, the reverse of its request `{}`", requests[i]),
                            format!("nothing on connection {i}; the reply arrived on connection {j}"),
                        )
                        .because(
                            "the reply went back on another connection: a reply must go back on the stream \
                             its request came from. Pass each thread its own stream, and write the reply \
                             to that stream, not to a variable the threads share",
                        ));
                    }
                }
                return Err(on_silence(i, answered));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The scenarios.

fn twenty_clients_at_once(run: &mut Run) -> Outcome {
    const N: usize = 20;
    const HELD: usize = 10;
    let server = start_server(run)?;
    let server_pid = server.pid;
    let mut conns = Vec::new();
    for _ in 0..N {
        conns.push(Conn::connect(run, SOCKET)?);
    }
    // Three requests per connection, all different.
    let requests: Vec<Vec<String>> = (0..N)
        .map(|i| {
            (0..3)
                .map(|k| {
                    let n = run.rng.random_range(1..=4);
                    format!("{} {i}.{k}", words(&mut run.rng, n))
                })
                .collect()
        })
        .collect();
    let all: Vec<(usize, String)> = requests
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.iter().map(move |q| (i, q.clone())))
        .collect();
    let first: Vec<String> = requests.iter().map(|r| r[0].clone()).collect();
    let line_of = |s: &str| format!("{s}\n").into_bytes();

    // The first HELD connections get the start of their first request
    // only: a server that waits for the rest of it blocks right there.
    let mut held_rest: Vec<Vec<Vec<u8>>> = vec![Vec::new(); N];
    for (i, rest) in held_rest.iter_mut().enumerate().take(HELD) {
        let bytes = line_of(&first[i]);
        let at = run.rng.random_range(1..bytes.len() - 1);
        let t = until(run, PATIENCE);
        conns[i]
            .write(&bytes[..at], t)
            .map_err(|e| Failure::wrong(format!("the server to read connection {i}"), e))?;
        let pieces = run.rng.random_range(1..=3);
        *rest = cut(&mut run.rng, &bytes[at..], pieces);
    }
    // The others send their whole first request, in pieces, interleaved.
    let mut queues: Vec<Vec<Vec<u8>>> = (0..N)
        .map(|i| {
            if i < HELD {
                Vec::new()
            } else {
                let pieces = run.rng.random_range(1..=4);
                cut(&mut run.rng, &line_of(&first[i]), pieces)
            }
        })
        .collect();
    let t = until(run, PATIENCE);
    interleave(run, &mut conns, &mut queues, t)?;
    let later: Vec<usize> = (HELD..N).collect();
    let t = until(run, PATIENCE);
    expect_replies(&mut conns, &later, &first, &all, t, |i, answered| {
        Failure::wrong(
            format!(
                "a reply on each of connections {HELD} to {} while connections 0 to {} are still in the middle of a request",
                N - 1,
                HELD - 1
            ),
            format!(
                "{answered} of them were answered within {} s, none on connection {i}; {}",
                PATIENCE.as_secs(),
                threads_and_children(server_pid)
            ),
        )
        .because(
            "the server handles one connection at a time: while it waits for the rest of one \
             client's request, every other client waits too. Serve each connection in a thread \
             of its own (or a process of its own, or watch them all with poll)",
        )
    })?;

    // The held connections finish their first request.
    let t = until(run, PATIENCE);
    interleave(run, &mut conns, &mut held_rest, t)?;
    let held: Vec<usize> = (0..HELD).collect();
    let t = until(run, PATIENCE);
    expect_replies(&mut conns, &held, &first, &all, t, |i, _| {
        Failure::wrong(
            format!("a reply on connection {i} once the rest of its request was sent"),
            format!("none within {} s", PATIENCE.as_secs()),
        )
        .because("a request that arrives in several pieces must be read up to its newline, however long the pauses between the pieces")
    })?;

    // Two more requests on every connection, sent together (the second
    // before the first is answered), all connections interleaved.
    let mut queues: Vec<Vec<Vec<u8>>> = (0..N)
        .map(|i| {
            let mut pieces = Vec::new();
            for request in &requests[i][1..3] {
                let n = run.rng.random_range(1..=3);
                pieces.extend(cut(&mut run.rng, &line_of(request), n));
            }
            pieces
        })
        .collect();
    let t = until(run, PATIENCE);
    interleave(run, &mut conns, &mut queues, t)?;
    let everyone: Vec<usize> = (0..N).collect();
    for k in 1..3 {
        let kth: Vec<String> = requests.iter().map(|r| r[k].clone()).collect();
        let t = until(run, PATIENCE);
        expect_replies(&mut conns, &everyone, &kth, &all, t, |i, _| {
            Failure::wrong(
                format!("a reply to request {} of connection {i}", k + 1),
                format!("none within {} s", PATIENCE.as_secs()),
            )
            .because("several requests sent back to back on one connection each get their reply, in order: read one line at a time, and keep what the buffer holds past the newline for the next request")
        })?;
    }
    Ok(())
}

fn requests_in_pieces(run: &mut Run) -> Outcome {
    let _server = start_server(run)?;
    let mut conn = Conn::connect(run, SOCKET)?;
    let k = run.rng.random_range(5..=7);
    for r in 0..k {
        let n = run.rng.random_range(2..=5);
        let request = format!("{} {r}", words(&mut run.rng, n));
        let bytes = format!("{request}\n").into_bytes();
        let count = run.rng.random_range(2..=5);
        let pieces = cut(&mut run.rng, &bytes, count);
        let mut pauses = Vec::new();
        for (p, piece) in pieces.iter().enumerate() {
            if p > 0 {
                // Long enough for the server to read each piece alone.
                let ms = run.rng.random_range(25..45);
                pauses.push(ms.to_string());
                std::thread::sleep(Duration::from_millis(ms));
            }
            let t = until(run, PATIENCE);
            conn.write(piece, t)
                .map_err(|e| Failure::wrong("the server to read the whole request", e))?;
        }
        let wanted = reverse(&request);
        let sizes: Vec<String> = pieces.iter().map(|p| p.len().to_string()).collect();
        let why = format!(
            "the request came in {} pieces ({} bytes, {} ms apart): a stream keeps no message \
             boundaries, and one read() returns whatever has arrived so far. Read up to the \
             newline (a BufReader and read_until), and decode the text only once the line is whole",
            pieces.len(),
            sizes.join(" + "),
            pauses.join(", ")
        );
        let t = until(run, PATIENCE);
        match conn.line(t) {
            Got::Line(line) if line == wanted => {}
            Got::Line(line) => {
                return Err(Failure::wrong(
                    format!("`{wanted}`, the reverse of `{request}`"),
                    format!("`{line}`"),
                )
                .because(why));
            }
            Got::Closed => {
                return Err(Failure::wrong(
                    format!("`{wanted}`, the reverse of `{request}`"),
                    "the server closed the connection",
                )
                .because(why));
            }
            Got::Failed(e) => {
                return Err(Failure::wrong(format!("`{wanted}`"), e).because(why));
            }
            Got::TimedOut => {
                return Err(run.timed_out(&format!("`{wanted}`")).because(why));
            }
        }
    }
    // Two requests in one write: each gets its own reply.
    let a = words(&mut run.rng, 2);
    let b = words(&mut run.rng, 3);
    let t = until(run, PATIENCE);
    conn.write(format!("{a}\n{b}\n").as_bytes(), t)
        .map_err(|e| Failure::wrong("the server to read both requests", e))?;
    for request in [&a, &b] {
        let wanted = reverse(request);
        let why = "two requests arrived in one write, so one read() may return both: answer each \
                   line, and keep what follows the first newline for the next request (a BufReader \
                   kept for the whole connection does that)";
        let t = until(run, PATIENCE);
        match conn.line(t) {
            Got::Line(line) if line == wanted => {}
            Got::Line(line) => {
                return Err(Failure::wrong(
                    format!("`{wanted}`, the reverse of `{request}`"),
                    format!("`{line}`"),
                )
                .because(why));
            }
            Got::TimedOut => return Err(run.timed_out(&format!("`{wanted}`")).because(why)),
            Got::Closed | Got::Failed(_) => {
                return Err(Failure::wrong(
                    format!("`{wanted}`"),
                    "the server closed the connection",
                )
                .because(why));
            }
        }
    }
    Ok(())
}

/// One request and its reply on a new connection.
fn ask_once(run: &mut Run) -> Outcome {
    let mut conn = Conn::connect(run, SOCKET)?;
    let n = run.rng.random_range(1..=4);
    let request = words(&mut run.rng, n);
    let wanted = reverse(&request);
    let t = until(run, PATIENCE);
    conn.write(format!("{request}\n").as_bytes(), t)
        .map_err(|e| Failure::wrong("the server to read a request", e))?;
    match conn.line(t) {
        Got::Line(line) if line == wanted => Ok(()),
        Got::Line(line) => Err(Failure::wrong(
            format!("`{wanted}`, the reverse of `{request}`"),
            format!("`{line}`"),
        )),
        Got::TimedOut => Err(run.timed_out(&format!("the reply `{wanted}`"))),
        Got::Closed | Got::Failed(_) => Err(Failure::wrong(
            format!("`{wanted}`"),
            "the server closed the connection without replying",
        )),
    }
}

/// Sends `end` on a new connection and expects the server to exit 0.
fn stop_server(run: &mut Run, server: &mut Proc) -> Outcome {
    let mut conn = Conn::connect(run, SOCKET)?;
    let t = until(run, PATIENCE);
    conn.write(b"end\n", t)
        .map_err(|e| Failure::wrong("the server to read `end`", e))?;
    drop(conn);
    match exit_within(run, server, PATIENCE, "stop after `end`")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "the server to stop with status 0 after `end`",
            format!("it ended with {other}"),
        )),
    }
}

fn stale_socket_file(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join(SOCKET);
    // A listener dropped without removing its file: what a crashed server
    // leaves behind.
    drop(UnixListener::bind(&path).map_err(Failure::internal)?);
    let is_socket = std::fs::symlink_metadata(&path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    if !is_socket {
        return Err(Failure::internal("could not leave a stale socket file"));
    }
    let mut server = start_server(run).map_err(|f| {
        f.because(format!(
            "a socket file left behind by a crashed run was at {SOCKET}, with nobody listening: \
             bind() fails with EADDRINUSE while the file exists. Check that connect() is refused \
             (nobody listens), remove the file, and bind again"
        ))
    })?;
    ask_once(run)?;
    stop_server(run, &mut server)
}

fn live_server_kept(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join(SOCKET);
    let listener = UnixListener::bind(&path).map_err(Failure::internal)?;
    let inode = std::fs::metadata(&path).map_err(Failure::internal)?.ino();
    let mut p = run.spawn("revserver", &[SOCKET.to_string()])?;
    // Either it exits, or it says it listens (on a path that was taken).
    let t = until(run, PATIENCE);
    let exit = loop {
        if let Ok(exit) = p.wait(Instant::now()) {
            break exit;
        }
        let next = (Instant::now() + Duration::from_millis(20)).min(t);
        let said = match p.next_line(next) {
            Ok(Some(line)) => Some(line),
            Ok(None) => {
                // Output closed: it is on its way out.
                std::thread::sleep(Duration::from_millis(2));
                None
            }
            Err(_) => None,
        };
        if let Some(line) = said {
            let f = Failure::wrong(
                format!("the server to refuse to start: the checker listens on {SOCKET}"),
                format!("it started and said `{}`", line.text),
            );
            let stolen = std::fs::metadata(&path).map(|m| m.ino()).ok() != Some(inode);
            return Err(if stolen {
                f.because(format!(
                    "the server removed the socket file of a live server (the checker, listening \
                     on {SOCKET}) and bound its own there: the first server's clients now reach the \
                     wrong one, and it never knows. Remove the file only when connect() is refused"
                ))
            } else {
                f
            });
        }
        if Instant::now() >= t {
            return Err(run.timed_out("the server to exit: the checker listens on rev.sock"));
        }
    };
    if std::fs::metadata(&path).map(|m| m.ino()).ok() != Some(inode) {
        return Err(Failure::wrong(
            format!("the checker's socket file {SOCKET} to stay as it was"),
            "it was removed or replaced",
        )
        .because(
            "the server removed the socket file of a live server: remove the file only when \
             connect() is refused, which means nobody listens",
        ));
    }
    if exit != Exit::Code(1) {
        return Err(Failure::wrong(
            "the server to report the error and exit with status 1",
            format!("it ended with {exit}"),
        ));
    }
    // The checker's listener still gets connections at its path.
    let _client = UnixStream::connect(&path).map_err(|e| {
        Failure::wrong(
            format!("connections to {SOCKET} to reach the checker's listener"),
            format!("connect() failed: {e}"),
        )
    })?;
    listener.set_nonblocking(true).map_err(Failure::internal)?;
    let reached = run.poll(PATIENCE, || {
        // Drain the server's probing connection too; any one will do.
        listener.accept().ok().map(|_| ())
    });
    if reached.is_none() {
        return Err(Failure::wrong(
            format!("connections to {SOCKET} to reach the checker's listener"),
            "none arrived",
        ));
    }
    Ok(())
}

fn socket_file_removed(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let clients = run.rng.random_range(2..=4);
    for _ in 0..clients {
        ask_once(run)?;
    }
    stop_server(run, &mut server).map_err(|f| {
        f.because(
            "after `end` the server stops accepting, removes its socket file, waits for the \
             clients still connected (none here) and returns. A thread that receives `end` must \
             wake the main thread blocked in accept() (a connection of its own does it)",
        )
    })?;
    let path = run.sandbox.tmp.join(SOCKET);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(Failure::wrong(
            format!("no {SOCKET} once the server has exited"),
            format!("{SOCKET} is still there"),
        )
        .because(format!(
            "the socket file {SOCKET} was left behind: it stays on disk after the listener is \
             closed and the process exits, and the next run's bind() fails with EADDRINUSE. \
             Remove it with std::fs::remove_file when the server stops"
        )));
    }
    Ok(())
}

/// The sockets a process holds beyond fds 0, 1 and 2: (fd, socket:[inode]).
fn sockets(pid: i32) -> Vec<(i32, String)> {
    procfs::fds(pid)
        .into_iter()
        .filter(|(fd, t)| *fd > 2 && t.starts_with("socket:"))
        .collect()
}

fn describe(socks: &[(i32, String)]) -> String {
    if socks.is_empty() {
        return "no socket".into();
    }
    socks
        .iter()
        .map(|(fd, t)| format!("fd {fd} ({t})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn socketpair_parent_child(run: &mut Run) -> Outcome {
    let mut p = run.spawn("pair", &[])?;
    let parent = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `parent pid=P child=C`")?;
    let Some(child) = field_num(&first, "child").map(|c| c as i32) else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    match procfs::stat(child) {
        Some(s) if s.ppid == parent && child != parent => {}
        _ => {
            return Err(Failure::wrong(
                format!("the child {child} to be a live child of the program ({parent})"),
                "it is not",
            ));
        }
    }
    // Both wait for input now: the parent on its stdin, the child on its
    // socket. Their descriptor tables are final.
    let reading = |pid: i32| {
        procfs::blocked(pid).syscall.is_some_and(|(nr, _)| {
            matches!(syscall_name(nr), Some("read" | "recvfrom" | "recvmsg"))
        })
    };
    if run
        .poll(PATIENCE, || {
            (reading(parent) && reading(child)).then_some(())
        })
        .is_none()
    {
        return Err(run.timed_out("the parent and the child to wait for input"));
    }
    let (ps, cs) = (sockets(parent), sockets(child));
    let shape = format!(
        "the parent holds {}; the child holds {}",
        describe(&ps),
        describe(&cs)
    );
    let shared: Vec<&String> = ps
        .iter()
        .map(|(_, t)| t)
        .filter(|t| cs.iter().any(|(_, u)| u == *t))
        .collect();
    if cs.len() > 1 || ps.len() > 1 || !shared.is_empty() {
        let who = if cs.len() > 1 || (!shared.is_empty() && cs.len() >= ps.len()) {
            "the child"
        } else {
            "the parent"
        };
        return Err(
            Failure::wrong("one end of the socket pair in each process", shape).because(format!(
                "{who} holds both ends of the pair: after fork each process must drop the end it \
             does not use. A child that keeps the parent's end never reads end of file when the \
             parent closes its own: it waits for itself"
            )),
        );
    }
    if cs.len() != 1 || ps.len() != 1 {
        return Err(Failure::wrong(
            "one end of the socket pair in each process",
            shape,
        ));
    }

    let n = run.rng.random_range(4..=8);
    for i in 0..n {
        let k = run.rng.random_range(1..=4);
        let request = format!("{} {i}", words(&mut run.rng, k));
        p.write_stdin(format!("{request}\n").as_bytes())
            .map_err(|e| {
                Failure::wrong(
                    "the parent to read its stdin",
                    format!("writing to it failed: {e}"),
                )
            })?;
        let wanted = format!("reply: {}", reverse(&request));
        let line = line_within(run, &mut p, PATIENCE, &format!("`{wanted}`"))?;
        if line != wanted {
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
        }
    }
    p.close_stdin();
    let wanted = format!("parent: child {child} exited with 0");
    let line = line_within(run, &mut p, PATIENCE, &format!("`{wanted}`")).map_err(|f| {
        f.because(
            "the parent closes its end; the child's read then returns end of file, unless some \
             process (the child itself?) still holds the parent's end",
        )
    })?;
    if line != wanted {
        return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
    }
    match exit_within(run, &mut p, PATIENCE, "exit")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "the program to exit with status 0",
            format!("it ended with {other}"),
        )),
    }
}

fn pass_a_descriptor(run: &mut Run) -> Outcome {
    let size = run.rng.random_range(2000..8000);
    let mut data = vec![0u8; size];
    run.rng.fill(&mut data[..]);
    let skip = run.rng.random_range(1..size - 1);
    let file = run.sandbox.tmp.join("data.bin");
    std::fs::write(&file, &data).map_err(Failure::internal)?;
    let file_meta = std::fs::metadata(&file).map_err(Failure::internal)?;
    let listener =
        UnixListener::bind(run.sandbox.tmp.join("fd.sock")).map_err(Failure::internal)?;
    let args: Vec<String> = ["send", "fd.sock", "data.bin"]
        .map(String::from)
        .into_iter()
        .chain([skip.to_string()])
        .collect();
    let mut p = run.spawn("fdpass", &args)?;
    let stream = accept_from(run, &listener, &mut p, "fd.sock")?;

    // Receive the payload and any descriptor that comes with it.
    let t = until(run, PATIENCE);
    let mut buf = [0u8; 256];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (bytes, fds) = loop {
        let left = t.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(run.timed_out("a message with a descriptor on fd.sock"));
        }
        let _ = stream.set_read_timeout(Some(left));
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: the kernel installed them in the checker's
                            // table just now; nothing else owns them.
                            fds.extend(
                                raw.into_iter()
                                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                            );
                        }
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(Failure::internal(format!("recvmsg: {e}"))),
        }
    };
    let got = String::from_utf8_lossy(&buf[..bytes]).into_owned();
    let Some(fd) = fds.into_iter().next() else {
        let f = Failure::wrong(
            "a descriptor in an SCM_RIGHTS control message on fd.sock",
            if bytes == 0 {
                "the program closed the connection without sending anything".to_string()
            } else {
                format!(
                    "{bytes} bytes of plain data ({:?}) and no descriptor",
                    got.trim_end()
                )
            },
        );
        return Err(f.because(
            "the descriptor must travel as ancillary data (sendmsg with ControlMessage::ScmRights): \
             a descriptor's number means nothing in another process, and plain bytes carry no \
             descriptor. The kernel copies the open file itself into the receiver's table",
        ));
    };
    let mut received = std::fs::File::from(fd);
    let meta = received.metadata().map_err(Failure::internal)?;
    if (meta.dev(), meta.ino()) != (file_meta.dev(), file_meta.ino()) {
        return Err(Failure::wrong(
            "a descriptor of data.bin",
            format!("a descriptor of another file (inode {})", meta.ino()),
        ));
    }
    let mut rest = Vec::new();
    received.read_to_end(&mut rest).map_err(Failure::internal)?;
    if rest != data[skip..] {
        let f = Failure::wrong(
            format!(
                "reading through the received descriptor to give the last {} bytes of data.bin, from byte {skip} where the program stopped reading",
                size - skip
            ),
            format!("it gave {} bytes", rest.len()),
        );
        return Err(if rest == data {
            f.because(
                "the descriptor starts at byte 0: it is a new open of the file, not the program's \
                 own open file. A passed descriptor shares the open file, offset included",
            )
        } else {
            f
        });
    }
    match exit_within(run, &mut p, PATIENCE, "exit")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "fdpass to exit with status 0",
            format!("it ended with {other}"),
        )),
    }
}

fn receive_a_descriptor(run: &mut Run) -> Outcome {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Failure::internal)?;
    let listener =
        UnixListener::bind(run.sandbox.tmp.join("fd.sock")).map_err(Failure::internal)?;
    let mut p = run.spawn("fdpass", &["recv".to_string(), "fd.sock".to_string()])?;
    let stream = accept_from(run, &listener, &mut p, "fd.sock")?;
    let token = format!(
        "token {:016x} for {}",
        run.rng.random::<u64>(),
        words(&mut run.rng, 2)
    );
    let payload = format!("{token}\n");
    let fds = [write_end.as_raw_fd()];
    let control = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload.as_bytes())];
    let _ = stream.set_write_timeout(Some(PATIENCE));
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(Failure::wrong(
                    "fdpass to wait for a descriptor on its connection",
                    format!("sending it failed: {e}"),
                ));
            }
        }
    };
    if sent < payload.len() {
        let mut s = &stream;
        let _ = s.write_all(&payload.as_bytes()[sent..]);
    }
    // Only the program's copy of the write end is left.
    drop(write_end);

    // Read the pipe until end of file, within the deadline.
    let mut pipe = std::fs::File::from(read_end);
    let flags =
        nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_GETFL).map_err(Failure::internal)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(Failure::internal)?;
    let t = until(run, PATIENCE);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                if Instant::now() >= t {
                    return Err(run.timed_out(
                        "the line to arrive through the pipe and the program to close its end",
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(Failure::internal(e)),
        }
    }
    let got = String::from_utf8_lossy(&got).into_owned();
    if got != payload {
        return Err(Failure::wrong(
            format!("`{token}` and a newline through the pipe whose write end the checker sent"),
            if got.is_empty() {
                "nothing came through the pipe".to_string()
            } else {
                format!("{:?}", got)
            },
        )
        .because(
            "write the line through the descriptor that came in the SCM_RIGHTS control message: \
             the checker holds the pipe's read end, and nothing else reaches that pipe",
        ));
    }
    match exit_within(run, &mut p, PATIENCE, "exit")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "fdpass to exit with status 0",
            format!("it ended with {other}"),
        )),
    }
}
