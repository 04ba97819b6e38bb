//! Lab 02 — anonymous pipes.
//!
//! The checker is the far end wherever it can be: it writes the message
//! after the child exists (so the bytes can only travel through the pipe),
//! feeds random bytes, plays the producer and the client one line at a time
//! (a line must come back before the next is sent), and reads the
//! descriptor tables of the processes in /proc while they are blocked, so
//! "which process holds which end" is checked, not guessed. A hang is
//! explained from /proc: who waits in read() on a pipe whose write end is
//! still open where, who is stuck in write() on a full pipe.
//!
//! It is an unkind peer too: it joins the chat's pipe as a second writer
//! and sends halves, bursts and pieces, counts the producer's write()
//! calls, kills a writer in the middle of a message, and watches the CPU
//! of a process that should be asleep.
//!
//! Here the declarations; `ends` reads pipes in /proc, `basics`, `exec`,
//! `talk` and `pieces` hold the scenarios.

mod basics;
mod ends;
mod exec;
mod pieces;
mod talk;

use crate::pid::Pid;
use std::path::Path;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::labs::Lab;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, Variant, quote_lines};
use crate::usage::Usage;

use basics::{bytes_of_any_value, more_than_a_pipe_holds, parent_to_child};
use ends::with_pipe_cause;
use exec::{exec_inherits_only_stdio, ls_wc_pipeline, sigpipe_default_after_exec};
use pieces::{chat_in_pieces, chat_refuses_broken_messages, each_process_holds_its_end};
use talk::{producer_consumer_chat, reader_gone_epipe, request_response};

pub static LAB: Lab = Lab {
    number: 2,
    slug: "pipe",
    title: "Anonymous pipes",
    student: &["src/lib.rs"],
    scenarios: &[
        Scenario {
            name: "parent-to-child",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `hello`, waits until its child exists, then writes a random message on the parent's stdin",
            expects: "the child (a real child of the program) to print the message it read from the pipe, and exit 0",
            hints: &[
                "`pipe()` gives two descriptors: the read end and the write end. After `fork()` both processes hold both ends; each must close the end it does not use.",
                "In `spawn_reader`, the child drops the write end and reads the read end; the parent drops the read end and returns the write end. Wrap the OwnedFd in `File::from(...)`.",
                "The child's read() returns end of file only when every write end is closed, its own copy included. A child that keeps the write end waits for itself forever.",
            ],
            max_procs: 8,
            run: parent_to_child,
        },
        Scenario {
            name: "bytes-of-any-value",
            points: 2,
            limit: Duration::from_secs(10),
            does: "feeds `relay OUT` some 100 to 200 KiB of random bytes (NUL, 0xff, newlines included) on stdin",
            expects: "the child to write exactly those bytes to OUT, after they went through the pipe",
            hints: &[
                "A pipe carries bytes, not text: read and write `[u8]`, never assume UTF-8 or lines.",
                "The parent copies until its stdin ends, then closes the write end so that the child's copy loop sees end of file.",
            ],
            max_procs: 8,
            run: bytes_of_any_value,
        },
        Scenario {
            name: "more-than-a-pipe-holds",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `gather IN OUT`: a child sends a random file of about 1 MiB through the pipe, the parent collects it",
            expects: "every byte to arrive in OUT, in order, and the child to exit 0",
            hints: &[
                "A pipe holds 64 KiB. A writer with more to say blocks in write() until someone reads.",
                "In `collect`, read everything first (`read_to_end`), and only then wait for the child. Waiting first deadlocks: the child cannot finish writing, so it never exits.",
            ],
            max_procs: 8,
            run: more_than_a_pipe_holds,
        },
        Scenario {
            name: "ls-wc-pipeline",
            points: 2,
            limit: Duration::from_secs(10),
            does: "prepares a directory with a random number of files and runs `count ls -l DIR '|' wc -l`",
            expects: "the same number as the shell's `ls -l DIR | wc -l`, and both commands to exit 0",
            hints: &[
                "One pipe, two children. The first `dup2`s the write end onto fd 1 (`dup2_stdout`), the second the read end onto fd 0 (`dup2_stdin`); then each calls `execvp`.",
                "The parent must close both ends before it waits: `wc` counts until end of file, and there is no end of file while anyone, the parent included, holds the write end.",
            ],
            max_procs: 16,
            run: ls_wc_pipeline,
        },
        Scenario {
            name: "exec-inherits-only-stdio",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `count cat '|' wc -l` and reads /proc/PID/fd of `cat` and `wc` while both wait for input, then sends random lines",
            expects: "each exec'd program to hold fds 0, 1 and 2 only, cat's stdout and wc's stdin to be the same pipe, and wc to count the lines",
            hints: &[
                "exec keeps every descriptor that is not close-on-exec. After `dup2`, close the pipe's original two descriptors in the child, before `execvp`.",
                "Destructors do not run across exec: an `OwnedFd` still alive when you call `execvp` is never closed. Drop both ends explicitly.",
            ],
            max_procs: 16,
            run: exec_inherits_only_stdio,
        },
        Scenario {
            name: "sigpipe-default-after-exec",
            points: 1,
            limit: Duration::from_secs(10),
            does: "runs `count yes '|' head -n 1`: head reads one line and exits while yes is still writing",
            expects: "head to print `y` and yes to be killed by SIGPIPE, as in a shell",
            hints: &[
                "Rust programs ignore SIGPIPE, and an ignored signal stays ignored across exec. Then `yes` gets EPIPE errors instead of dying quietly.",
                "In the child, before `execvp`: `unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }`.",
            ],
            max_procs: 16,
            run: sigpipe_default_after_exec,
        },
        Scenario {
            name: "producer-consumer-chat",
            points: 2,
            limit: Duration::from_secs(15),
            does: "plays the producer's source in `chat`: sends random messages at uneven intervals, each only after the previous one was printed, then END, keeping stdin open",
            expects: "the consumer to print each message as soon as it arrives, and both processes to stop at the sentinel END",
            hints: &[
                "`send` writes the message and its newline in one write(); `receive` reads one line (`BufRead::read_line`) and returns it without waiting for more.",
                "`consume` stops when it receives the sentinel, not at end of file: the producer keeps the pipe open until the consumer has exited.",
            ],
            max_procs: 8,
            run: producer_consumer_chat,
        },
        Scenario {
            name: "chat-in-pieces",
            points: 2,
            limit: Duration::from_secs(20),
            does: "joins the chat's pipe as a second writer (through /proc): sends a message in two writes cut inside a character with a pause between them, three messages in one write, a message in random pieces, and, through the producer, one of 4095 bytes; counts the producer's write() calls",
            expects: "each message printed whole, once, when its last byte arrives; the consumer asleep while it waits; one write() per message sent by the producer",
            hints: &[
                "A read returns what the pipe holds at that moment: half a message, or three. `receive` reads up to the newline (`BufRead::read_line`), however many reads that takes, and keeps the rest for the next call.",
                "Make one BufReader in `consume`, before the loop, and pass it to every `receive`: what it read ahead belongs to the next messages.",
                "`send` builds the line (message and newline) in one buffer and writes it with one write(): at most PIPE_BUF bytes in one write is atomic, even with several writers on the pipe.",
            ],
            max_procs: 8,
            run: chat_in_pieces,
        },
        Scenario {
            name: "chat-refuses-broken-messages",
            points: 1,
            limit: Duration::from_secs(15),
            does: "gives the producer a line longer than MAX_MESSAGE; in a second chat, puts half a message (no newline) in the consumer's pipe and kills the producer",
            expects: "`send` to refuse the long message (the producer fails, the consumer never prints it); the consumer not to print the half message as if it were whole",
            hints: &[
                "`send` refuses a message longer than MAX_MESSAGE (or holding a newline) before writing anything: past PIPE_BUF bytes, one write() is no longer atomic.",
                "`receive`: a line without its newline at end of file means its writer died in the middle of it. That is an error, not a message.",
            ],
            max_procs: 8,
            run: chat_refuses_broken_messages,
        },
        Scenario {
            name: "each-process-holds-its-end",
            points: 2,
            limit: Duration::from_secs(15),
            does: "reads /proc/PID/fd of `hello` and its reading child, and of `gather` and its writing child, while they wait; then feeds the writer child more than a pipe holds, in random pieces, through a FIFO",
            expects: "each process to hold exactly one pipe end beyond 0, 1 and 2, the one it uses, both on one pipe; and every byte to arrive",
            hints: &[
                "After fork each process holds both ends. The reader drops the write end, the writer drops the read end, in `spawn_reader` and in `spawn_writer` alike, parent and child.",
                "A writer that keeps the read end never gets EPIPE: if its reader dies, it fills the pipe and blocks for ever. A reader that keeps the write end never sees end of file.",
            ],
            max_procs: 8,
            run: each_process_holds_its_end,
        },
        Scenario {
            name: "request-response",
            points: 2,
            limit: Duration::from_secs(15),
            does: "checks in /proc which pipe ends `ask` and its server hold, then sends random requests one at a time",
            expects: "two pipes, each process holding only the ends it uses, and each reply (the request reversed) before the next request",
            hints: &[
                "A pipe carries bytes one way. A conversation needs two pipes: requests from client to server, replies back.",
                "The server keeps the read end of the requests pipe and the write end of the replies pipe; the client keeps the other two. Drop the rest on both sides.",
            ],
            max_procs: 8,
            run: request_response,
        },
        Scenario {
            name: "reader-gone-epipe",
            points: 1,
            limit: Duration::from_secs(10),
            does: "runs `firehose N`: the child reads N bytes and exits while the parent keeps writing",
            expects: "the writer to get EPIPE, say so, and exit 0 after reaping the reader",
            hints: &[
                "write() fails with EPIPE only when no read end is open anywhere. If the writer still holds the read end itself, the pipe just fills and write() blocks forever.",
                "In `spawn_reader`, the parent drops the read end right after fork.",
            ],
            max_procs: 8,
            run: reader_gone_epipe,
        },
    ],
    fixtures: &[
        Fixture {
            name: "child-keeps-write-end",
            caught_by: "parent-to-child",
            says: "whose write end is still open in process",
        },
        Fixture {
            name: "waits-before-reading",
            caught_by: "more-than-a-pipe-holds",
            says: "blocked in write() on a full pipe",
        },
        Fixture {
            name: "parent-keeps-write-end",
            caught_by: "ls-wc-pipeline",
            says: "whose write end is still open in process",
        },
        Fixture {
            name: "exec-keeps-pipe-fds",
            caught_by: "exec-inherits-only-stdio",
            says: "beyond 0, 1 and 2",
        },
        Fixture {
            name: "sigpipe-stays-ignored",
            caught_by: "sigpipe-default-after-exec",
            says: "SIGPIPE",
        },
        Fixture {
            name: "consumer-ignores-sentinel",
            caught_by: "producer-consumer-chat",
            says: "sentinel",
        },
        Fixture {
            name: "receive-reads-to-eof",
            caught_by: "producer-consumer-chat",
            says: "as soon as",
        },
        Fixture {
            name: "one-pipe-both-ways",
            caught_by: "request-response",
            says: "two pipes",
        },
        Fixture {
            name: "parent-keeps-read-end",
            caught_by: "reader-gone-epipe",
            says: "read end",
        },
        Fixture {
            name: "receive-one-read",
            caught_by: "chat-in-pieces",
            says: "one read() returned only part of it",
        },
        Fixture {
            name: "bufreader-per-message",
            caught_by: "chat-in-pieces",
            says: "lost them",
        },
        Fixture {
            name: "decodes-each-read",
            caught_by: "chat-in-pieces",
            says: "decoded each read on its own",
        },
        Fixture {
            name: "send-in-two-writes",
            caught_by: "chat-in-pieces",
            says: "more than one write()",
        },
        Fixture {
            name: "send-no-size-limit",
            caught_by: "chat-refuses-broken-messages",
            says: "no longer atomic",
        },
        Fixture {
            name: "receive-keeps-partial-line",
            caught_by: "chat-refuses-broken-messages",
            says: "died in the middle",
        },
        Fixture {
            name: "writer-child-keeps-read-end",
            caught_by: "each-process-holds-its-end",
            says: "never fail with EPIPE",
        },
        Fixture {
            name: "receive-retries-at-eof",
            caught_by: "request-response",
            says: "never sleeps once the client has closed",
        },
    ],
    variants: &[Variant {
        name: "cloexec-pipes-raw-write",
        design: "pipe2(O_CLOEXEC) in spawn_reader and the pipeline, so exec closes the originals by itself; send with one raw libc::write; receive with read_until",
    }],
};

/// How long the checker waits for something that takes a correct program
/// a few milliseconds: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(4);

/// The next line `p` prints, within [`PATIENCE`]; a hang gets its cause.
fn line(run: &Run, p: &mut Proc, what: &str) -> Result<String, Failure> {
    let program = p.pid;
    run.line_within(p, PATIENCE, what)
        .map(|l| l.text)
        .map_err(|f| with_pipe_cause(f, program))
}

/// Every line until `p`'s output ends, within [`PATIENCE`].
fn rest(run: &Run, p: &mut Proc, what: &str) -> Result<Vec<String>, Failure> {
    let program = p.pid;
    run.rest_within(p, PATIENCE, what)
        .map(|lines| lines.into_iter().map(|l| l.text).collect())
        .map_err(|f| with_pipe_cause(f, program))
}

/// `p` exits with 0, within [`PATIENCE`].
fn exit_0(run: &Run, p: &mut Proc) -> Outcome {
    let program = p.pid;
    match run.exit_within(p, PATIENCE) {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(other) => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            format!("it ended with {other}"),
        )),
        Err(f) => Err(with_pipe_cause(f, program)),
    }
}

/// A wait that failed while `pid` (`who`) should have seen end of file
/// (`because`, e.g. "the client has closed the requests pipe") and ended:
/// if it is still there and never slept since `before`, it reads end of
/// file again and again instead of stopping.
fn spins_at_eof(f: Failure, pid: Pid, who: &str, because: &str, before: &Usage) -> Failure {
    let used = Usage::of(pid).since(before);
    let alive = procfs::stat(pid).is_some_and(|s| !s.is_zombie());
    if f.why.is_some() || !alive || !used.never_slept() {
        return f;
    }
    f.because(format!(
        "{who} (pid {pid}) never sleeps once {because}: it used {:.0} ms of CPU in {:.0} ms. \
         A read at end of file returns 0 at once, every time: a loop that reads again after 0 \
         spins for ever. 0 bytes is the end: `receive` returns None",
        used.cpu.as_secs_f64() * 1000.0,
        used.wall.as_secs_f64() * 1000.0
    ))
    .hint("In `receive`, a read of 0 bytes (read_line returned 0) means end of file: return Ok(None), do not read again.")
}

/// A time-out now, with where each process is and the pipe cause.
fn timed_out(run: &Run, program: Pid, waiting_for: &str) -> Failure {
    with_pipe_cause(run.timed_out(waiting_for), program)
}

fn write_line(p: &mut Proc, text: &str) -> Outcome {
    p.write_stdin(format!("{text}\n").as_bytes()).map_err(|e| {
        Failure::wrong(
            format!("{} to read its stdin", p.name),
            format!("the checker could not write to it ({e}): the program has exited or closed its stdin"),
        )
    })
}

/// `pid` is alive and a child of `parent`.
fn expect_child(pid: Pid, parent: Pid, who: &str) -> Outcome {
    if pid == parent {
        return Err(Failure::wrong(
            format!("{who} to be a child process"),
            format!("{who} has the program's own pid {pid}"),
        ));
    }
    match procfs::stat(pid) {
        Some(s) if s.ppid == parent => Ok(()),
        Some(s) => Err(Failure::wrong(
            format!("{who} (pid {pid}) to be a child of the program (pid {parent})"),
            format!("its parent is {}", s.ppid),
        )),
        None => Err(Failure::wrong(
            format!("{who} (pid {pid}) to be a live child of the program"),
            format!("there is no process {pid}"),
        )),
    }
}

fn expect_line_in(lines: &[String], wanted: &str) -> Outcome {
    if lines.iter().any(|l| l.trim_end() == wanted) {
        Ok(())
    } else {
        Err(Failure::wrong(
            format!("a line `{wanted}`"),
            format!("the program printed {}", quote_lines(lines)),
        ))
    }
}

const WORDS: &[&str] = &[
    "pipe", "fork", "read", "write", "kernel", "buffer", "child", "parent", "exec", "byte",
    "signal", "wait", "end", "file", "stream", "mañana", "ñandú", "über", "señal", "tubería",
];

fn words(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"x"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first offset where `a` and `b` differ.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn random_bytes(rng: &mut impl Rng, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng.fill(&mut data[..]);
    // Make sure the awkward ones are there, wherever the dice fell.
    for (i, b) in [0u8, 0xff, b'\n', b'\r', 0x80, 0].into_iter().enumerate() {
        let at = rng.random_range(0..len);
        data[at] = b;
        data[i] = b;
    }
    data
}

fn compare_files(expected: &[u8], path: &Path, who: &str) -> Outcome {
    let got = std::fs::read(path).map_err(|e| {
        Failure::wrong(
            format!(
                "{who} to write {} bytes to {}",
                expected.len(),
                path.display()
            ),
            format!("cannot read it: {e}"),
        )
    })?;
    if got != expected {
        let at = first_difference(expected, &got);
        return Err(Failure::wrong(
            format!("the {} bytes the checker sent, byte for byte", expected.len()),
            format!("{} bytes, first different at offset {at}", got.len()),
        )
        .because(if got.len() < expected.len() {
            "bytes were lost on the way: a short read or write not retried, or the reader stopped before end of file"
        } else {
            "the bytes changed on the way: treat the data as bytes, not text"
        }));
    }
    Ok(())
}
