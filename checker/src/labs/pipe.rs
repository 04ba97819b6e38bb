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

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::diagnose::syscall_name;
use crate::labs::Lab;
use crate::process::{Exit, Proc, Waited};
use crate::procfs;
use crate::sandbox::checker_pid;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num, quote_lines};

pub static LAB: Lab = Lab {
    number: 2,
    slug: "pipe",
    title: "Anonymous pipes",
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
    ],
    variants: &[],
};

/// How long the checker waits for something that takes a correct program
/// a few milliseconds: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(4);

// ---------------------------------------------------------------------
// Looking at pipes in /proc.

/// A process blocked in read() or write() on a pipe, and who holds the
/// other end of that pipe.
struct Stuck {
    pid: i32,
    comm: String,
    /// The system call: read, write, splice...
    call: &'static str,
    writing: bool,
    fd: i32,
    /// Processes holding the other end: write ends for a reader, read
    /// ends for a writer. The checker is left out (it holds the program's
    /// stdin, stdout and stderr).
    others: Vec<i32>,
}

/// Every descendant blocked in read() or write() on a pipe, right now.
fn stuck_on_pipes() -> Vec<Stuck> {
    let procs = procfs::descendants(checker_pid());
    let mut out = Vec::new();
    for s in &procs {
        let b = procfs::blocked(s.pid);
        let Some((nr, args)) = b.syscall else {
            continue;
        };
        let wchan = b.wchan.unwrap_or_default();
        let call = syscall_name(nr).unwrap_or("?");
        let (writing, fd) = match syscall_name(nr) {
            Some("read" | "readv") => (false, args[0]),
            Some("write" | "writev") => (true, args[0]),
            // std::io::copy splices between a pipe and a file: splice(in,
            // off_in, out, ...) waits either for data in or for room out.
            Some("splice") if wchan.contains("readable") => (false, args[0]),
            Some("splice") if wchan.contains("writable") => (true, args[2]),
            _ => continue,
        };
        let fd = fd as i64 as i32;
        let Some(target) = procfs::fd_target(s.pid, fd) else {
            continue;
        };
        if !target.starts_with("pipe:") {
            continue;
        }
        let others = procs
            .iter()
            .filter(|p| {
                procfs::fds(p.pid).into_iter().any(|(f, t)| {
                    t == target
                        && procfs::fd_access(p.pid, f)
                            .is_some_and(|a| if writing { a != 1 } else { a != 0 })
                })
            })
            .map(|p| p.pid)
            .collect();
        out.push(Stuck {
            pid: s.pid,
            comm: s.comm.clone(),
            call,
            writing,
            fd,
            others,
        });
    }
    out
}

fn name_pid(pid: i32, program: i32, stuck: &Stuck) -> String {
    if pid == stuck.pid {
        format!(
            "process {pid} (the {} itself)",
            if stuck.writing { "writer" } else { "reader" }
        )
    } else if pid == program {
        format!("process {pid} (the program)")
    } else {
        format!("process {pid}")
    }
}

fn names(pids: &[i32], program: i32, stuck: &Stuck) -> String {
    let v: Vec<String> = pids.iter().map(|&p| name_pid(p, program, stuck)).collect();
    match v.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A time-out, with where each process is blocked and, when a pipe is the
/// reason, the reason in one sentence. `program` is the pid the checker
/// started.
fn hang(run: &Run, program: i32, waiting_for: &str) -> Failure {
    let stuck = stuck_on_pipes();
    let failure = run.timed_out(waiting_for);
    // A reader whose pipe a process of the student's still holds open for
    // writing: the classic "no end of file".
    if let Some(s) = stuck.iter().find(|s| !s.writing && !s.others.is_empty()) {
        let who = if s.pid == program {
            format!("process {}, the program", s.pid)
        } else {
            format!("process {}, `{}`", s.pid, s.comm)
        };
        return failure.because(format!(
            "your reader ({who}) waits in {}() on a pipe (its fd {}) whose write end is still open in {}: \
             it will never see end of file while that end stays open",
            s.call,
            s.fd,
            names(&s.others, program, s)
        ));
    }
    if let Some(s) = stuck.iter().find(|s| s.writing) {
        let readers = if s.others.is_empty() {
            String::new()
        } else {
            format!(
                " (its read end is open in {})",
                names(&s.others, program, s)
            )
        };
        let who = if s.pid == program {
            format!("the program (process {})", s.pid)
        } else {
            format!("process {} (`{}`)", s.pid, s.comm)
        };
        return failure.because(format!(
            "{who} is blocked in {}() on a full pipe{readers}: nobody reads it. A pipe holds 64 KiB; \
             past that, a writer waits for a reader",
            s.call
        ));
    }
    failure
}

/// `msg` plus the diagnosis `hang` found, if any.
fn with_advice(mut f: Failure, advice: &str) -> Failure {
    f.why = Some(match f.why.take() {
        Some(why) => format!("{why}. {advice}"),
        None => advice.to_string(),
    });
    f
}

/// The next line, waiting at most `within`.
fn line_within(run: &Run, p: &mut Proc, within: Duration, what: &str) -> Result<String, Failure> {
    let until = (Instant::now() + within).min(run.deadline);
    match p.next_line(until) {
        Ok(Some(line)) => Ok(line.text),
        Ok(None) => Err(Failure::wrong(
            what.to_string(),
            format!("{} closed its output before printing it", p.name),
        )),
        Err(Waited::TimedOut) => Err(hang(run, p.pid, what)),
    }
}

/// Every line until the program's output ends, waiting at most `within`.
fn rest_within(
    run: &Run,
    p: &mut Proc,
    within: Duration,
    what: &str,
) -> Result<Vec<String>, Failure> {
    let until = (Instant::now() + within).min(run.deadline);
    let mut out = Vec::new();
    loop {
        match p.next_line(until) {
            Ok(Some(line)) => out.push(line.text),
            Ok(None) => return Ok(out),
            Err(Waited::TimedOut) => return Err(hang(run, p.pid, what)),
        }
    }
}

fn expect_exit_0(run: &Run, p: &mut Proc) -> Outcome {
    let until = (Instant::now() + PATIENCE).min(run.deadline);
    match p.wait(until) {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(other) => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            format!("it ended with {other}"),
        )),
        Err(_) => Err(hang(run, p.pid, &format!("{} to exit", p.name))),
    }
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
fn expect_child(pid: i32, parent: i32, who: &str) -> Outcome {
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

// ---------------------------------------------------------------------
// The scenarios.

fn parent_to_child(run: &mut Run) -> Outcome {
    let mut p = run.spawn("hello", &[])?;
    let program = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `parent pid=P child=C`")?;
    let (Some(pid), Some(child)) = (field_num(&first, "pid"), field_num(&first, "child")) else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    if pid != program as i64 {
        return Err(Failure::wrong(
            format!("the parent's pid={program}"),
            format!("`{first}`"),
        ));
    }
    let child = child as i32;
    expect_child(child, program, "the child")?;

    // The message exists only now, after the fork: it can reach the child
    // through the pipe and no other way.
    let lines: Vec<String> = (0..run.rng.random_range(1..=3))
        .map(|_| {
            let n = run.rng.random_range(2..=6);
            words(&mut run.rng, n)
        })
        .collect();
    let message = lines.join("\n");
    write_line(&mut p, &message)?;
    p.close_stdin();

    let rest = rest_within(run, &mut p, PATIENCE, "the child to print the message, and the parent to finish")
        .map_err(|f| {
            with_advice(
                f,
                "The child reads until end of file, which comes only once every write end of the pipe is closed: the parent's after writing, and the child's own copy right after fork",
            )
        })?;
    let header = format!(
        "child pid={child} ppid={program} read {} bytes:",
        message.len() + 1
    );
    let Some(at) = rest
        .iter()
        .position(|l| l.starts_with(&format!("child pid={child} ")))
    else {
        return Err(Failure::wrong(
            format!("the child to print `{header}` and the message"),
            format!("the program printed {}", quote_lines(&rest)),
        ));
    };
    if rest[at] != header {
        return Err(Failure::wrong(
            format!("`{header}`"),
            format!("`{}`", rest[at]),
        ));
    }
    let printed: Vec<String> = rest
        .iter()
        .skip(at + 1)
        .take(lines.len())
        .cloned()
        .collect();
    if printed != lines {
        return Err(Failure::wrong(
            format!("the child to print the message {}", quote_lines(&lines)),
            format!("it printed {}", quote_lines(&printed)),
        ));
    }
    expect_line_in(&rest, &format!("parent: child {child} exited with 0"))?;
    expect_exit_0(run, &mut p)
}

fn bytes_of_any_value(run: &mut Run) -> Outcome {
    let len = run.rng.random_range(100_000..200_000);
    let data = random_bytes(&mut run.rng, len);
    let out = run.sandbox.tmp.join("relayed.bin");
    let mut p = run.spawn("relay", &["relayed.bin".to_string()])?;
    let program = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `parent pid=P child=C`")?;
    let Some(child) = field_num(&first, "child") else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    let child = child as i32;
    expect_child(child, program, "the child")?;
    p.feed_stdin(data.clone());
    let rest = rest_within(run, &mut p, PATIENCE, "the bytes to go through and the program to finish")
        .map_err(|f| {
            with_advice(
                f,
                "Copy until the input ends, then close the write end; the child copies until end of file",
            )
        })?;
    expect_line_in(
        &rest,
        &format!("child pid={child} wrote {len} bytes to relayed.bin"),
    )?;
    expect_line_in(
        &rest,
        &format!("parent: sent {len} bytes, child {child} exited with 0"),
    )?;
    expect_exit_0(run, &mut p)?;
    compare_files(&data, &out, "the child")
}

fn more_than_a_pipe_holds(run: &mut Run) -> Outcome {
    let len = run.rng.random_range((1 << 20)..(1 << 20) + 100_000);
    let data = random_bytes(&mut run.rng, len);
    std::fs::write(run.sandbox.tmp.join("in.bin"), &data).map_err(Failure::internal)?;
    let mut p = run.spawn("gather", &["in.bin".to_string(), "out.bin".to_string()])?;
    let program = p.pid;
    let rest = rest_within(run, &mut p, PATIENCE, "the parent to collect the child's 1 MiB and finish")
        .map_err(|f| {
            with_advice(
                f,
                "The child blocked in write() is waiting for the parent to read. If the parent waits for the child to exit before it reads (a wait4() above), neither ever moves: in `collect`, read everything first, then wait",
            )
        })?;
    let Some(child_line) = rest.iter().find(|l| l.starts_with("child pid=")) else {
        return Err(Failure::wrong(
            "a line `child pid=C ppid=P sending in.bin`",
            format!("the program printed {}", quote_lines(&rest)),
        ));
    };
    let child = field_num(child_line, "pid").unwrap_or(-1);
    if child == program as i64 || field_num(child_line, "ppid") != Some(program as i64) {
        return Err(Failure::wrong(
            format!("the sender to be a child of the program (pid {program})"),
            format!("`{child_line}`"),
        ));
    }
    expect_line_in(
        &rest,
        &format!("parent pid={program} got {len} bytes; the child exited with 0"),
    )?;
    expect_exit_0(run, &mut p)?;
    compare_files(&data, &run.sandbox.tmp.join("out.bin"), "the parent")
}

fn shell_answer(dir: &Path, command: &str) -> Result<String, Failure> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .output()
        .map_err(|e| Failure::internal(format!("running sh -c '{command}': {e}")))?;
    if !out.status.success() {
        return Err(Failure::internal(format!(
            "sh -c '{command}' failed: {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ls_wc_pipeline(run: &mut Run) -> Outcome {
    let dir = run.sandbox.tmp.join("listing");
    std::fs::create_dir(&dir).map_err(Failure::internal)?;
    let n = run.rng.random_range(3..60);
    for i in 0..n {
        let size = run.rng.random_range(0..3000);
        std::fs::write(dir.join(format!("file-{i:03}")), vec![b'x'; size])
            .map_err(Failure::internal)?;
    }
    let truth = shell_answer(&run.sandbox.tmp, "ls -l listing | wc -l")?;
    let args: Vec<String> = ["ls", "-l", "listing", "|", "wc", "-l"]
        .map(String::from)
        .to_vec();
    let mut p = run.spawn("count", &args)?;
    let rest = rest_within(run, &mut p, PATIENCE, "`wc -l` to print its count and the program to finish")
        .map_err(|f| {
            with_advice(
                f,
                "`wc` counts until end of file. The parent, and each child after its dup2, must close the pipe's original descriptors",
            )
        })?;
    let Some(first) = rest.first() else {
        return Err(Failure::wrong(
            format!("`wc -l` to print {truth}"),
            "nothing",
        ));
    };
    if first.trim() != truth {
        return Err(Failure::wrong(
            format!("`{truth}`, what the shell's `ls -l listing | wc -l` prints ({n} files)"),
            format!("the first line was `{first}`"),
        ));
    }
    expect_line_in(&rest, "left: ls exited with 0")?;
    expect_line_in(&rest, "right: wc exited with 0")?;
    expect_exit_0(run, &mut p)
}

fn exec_inherits_only_stdio(run: &mut Run) -> Outcome {
    let args: Vec<String> = ["cat", "|", "wc", "-l"].map(String::from).to_vec();
    let mut p = run.spawn("count", &args)?;
    let program = p.pid;
    // Wait until both children have exec'd and wait in read(): cat on the
    // checker's pipe (the program's stdin), wc on the pipe from cat.
    let found = run.poll(PATIENCE, || {
        if procfs::stat(program).is_none_or(|s| s.is_zombie()) {
            return Some(None);
        }
        let kids: Vec<procfs::Stat> = procfs::descendants(checker_pid())
            .into_iter()
            .filter(|s| s.ppid == program)
            .collect();
        let find = |name: &str| {
            kids.iter()
                .find(|s| s.comm == name)
                .filter(|s| {
                    procfs::blocked(s.pid)
                        .syscall
                        .is_some_and(|(nr, _)| syscall_name(nr) == Some("read"))
                })
                .map(|s| s.pid)
        };
        Some(Some((find("cat")?, find("wc")?)))
    });
    if found == Some(None) {
        return Err(Failure::wrong(
            "two children running `cat` and `wc`, both waiting for input",
            "the program exited first",
        ));
    }
    let Some(Some((cat, wc))) = found else {
        let kids: Vec<String> = procfs::descendants(checker_pid())
            .iter()
            .filter(|s| s.ppid == program)
            .map(|s| format!("{} ({})", s.pid, s.comm))
            .collect();
        return Err(with_advice(
            hang(
                run,
                program,
                "two children running `cat` and `wc`, both waiting for input",
            ),
            &format!(
                "the program's children: {}",
                if kids.is_empty() {
                    "none".into()
                } else {
                    kids.join(", ")
                }
            ),
        ));
    };

    let fd_of = |pid: i32, fd: i32| procfs::fd_target(pid, fd).unwrap_or_default();
    for (pid, name) in [(cat, "cat"), (wc, "wc")] {
        let extra: Vec<String> = procfs::fds(pid)
            .into_iter()
            .filter(|(fd, _)| *fd > 2)
            .map(|(fd, t)| format!("{fd} ({t})"))
            .collect();
        if !extra.is_empty() {
            return Err(Failure::wrong(
                format!("`{name}` (pid {pid}) to hold fds 0, 1 and 2 only"),
                format!("it also holds fd {}", extra.join(", ")),
            )
            .because(format!(
                "`{name}` inherited descriptors beyond 0, 1 and 2: exec keeps every descriptor that is not close-on-exec. \
                 After dup2, close the pipe's original read and write ends in the child before execvp (an OwnedFd alive at exec is never dropped)"
            )));
        }
    }
    let pipe_between = fd_of(cat, 1);
    if !pipe_between.starts_with("pipe:") || pipe_between != fd_of(wc, 0) {
        return Err(Failure::wrong(
            "cat's fd 1 and wc's fd 0 to be the two ends of one pipe",
            format!("cat's fd 1 is {}, wc's fd 0 is {}", pipe_between, fd_of(wc, 0)),
        )
        .because("dup2 the write end onto fd 1 in the left child, the read end onto fd 0 in the right one"));
    }
    if fd_of(cat, 0) != fd_of(program, 0) || fd_of(wc, 1) != fd_of(program, 1) {
        return Err(Failure::wrong(
            "cat to read the program's stdin and wc to write to the program's stdout",
            format!(
                "cat's fd 0 is {}, wc's fd 1 is {}; the program's are {} and {}",
                fd_of(cat, 0),
                fd_of(wc, 1),
                fd_of(program, 0),
                fd_of(program, 1)
            ),
        ));
    }

    let k = run.rng.random_range(3..40);
    let mut text = String::new();
    for _ in 0..k {
        let n = run.rng.random_range(1..5);
        text.push_str(&words(&mut run.rng, n));
        text.push('\n');
    }
    p.feed_stdin(text.into_bytes());
    let rest = rest_within(
        run,
        &mut p,
        PATIENCE,
        "`wc -l` to count the lines and the program to finish",
    )?;
    if rest.first().map(|l| l.trim()) != Some(k.to_string().as_str()) {
        return Err(Failure::wrong(
            format!("`wc -l` to print {k}, the lines the checker sent through `cat`"),
            format!("the program printed {}", quote_lines(&rest)),
        ));
    }
    expect_line_in(&rest, "left: cat exited with 0")?;
    expect_line_in(&rest, "right: wc exited with 0")?;
    expect_exit_0(run, &mut p)
}

fn sigpipe_default_after_exec(run: &mut Run) -> Outcome {
    let args: Vec<String> = ["yes", "|", "head", "-n", "1"].map(String::from).to_vec();
    let mut p = run.spawn("count", &args)?;
    let rest = rest_within(run, &mut p, PATIENCE, "`head -n 1` to print `y` and both commands to end")
        .map_err(|f| {
            with_advice(
                f,
                "`yes` stops only when a write fails or SIGPIPE kills it, which happens once no read end is open: the parent must close its copies of both ends",
            )
        })?;
    if rest.first().map(String::as_str) != Some("y") {
        return Err(Failure::wrong(
            "`head -n 1` to print `y`",
            format!("the program printed {}", quote_lines(&rest)),
        ));
    }
    let wanted = "left: yes killed by SIGPIPE";
    if !rest.iter().any(|l| l == wanted) {
        let said = rest
            .iter()
            .find(|l| l.starts_with("left:"))
            .cloned()
            .unwrap_or_else(|| "nothing about it".into());
        return Err(Failure::wrong(
            format!("`{wanted}`, as in a shell"),
            format!("`{said}`"),
        )
        .because(
            "`yes` did not die of SIGPIPE when `head` left: it inherited SIGPIPE ignored from the Rust program (Rust ignores it), \
             got EPIPE instead and complained. Reset SIGPIPE to SIG_DFL in the child before execvp",
        ));
    }
    expect_line_in(&rest, "right: head exited with 0")?;
    expect_exit_0(run, &mut p)
}

fn producer_consumer_chat(run: &mut Run) -> Outcome {
    let mut p = run.spawn("chat", &[])?;
    let program = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `producer pid=P consumer=C`")?;
    let Some(consumer) = field_num(&first, "consumer") else {
        return Err(Failure::wrong(
            "a line `producer pid=P consumer=C`",
            format!("`{first}`"),
        ));
    };
    let consumer = consumer as i32;
    expect_child(consumer, program, "the consumer")?;

    let k = run.rng.random_range(5..=9);
    for i in 0..k {
        // Uneven intervals: a pause of 0 to 60 ms before each message.
        let pause = run.rng.random_range(0..60);
        std::thread::sleep(Duration::from_millis(pause));
        let n = run.rng.random_range(1..=5);
        let message = format!("{i}: {}", words(&mut run.rng, n));
        write_line(&mut p, &message)?;
        let wanted = format!("consumer pid={consumer} got: {message}");
        // The line must come before the next message is sent.
        let line = line_within(run, &mut p, PATIENCE, &format!("the consumer to print `{wanted}`"))
            .map_err(|f| {
                with_advice(
                    f,
                    "A message sent must be printed as soon as it arrives, without waiting for more: \
                     `receive` returns as soon as one line is in (read_line), and `send` writes the whole line at once",
                )
            })?;
        if line != wanted {
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
        }
    }
    // The sentinel; stdin stays open, and so does the producer's pipe.
    write_line(&mut p, "END")?;
    let mut lines = Vec::new();
    for _ in 0..3 {
        let line = line_within(run, &mut p, PATIENCE, "both processes to stop at the sentinel END")
            .map_err(|f| {
                with_advice(
                    f,
                    "After END the producer keeps its end open until the consumer exits, so the consumer must stop at the sentinel itself, not wait for end of file",
                )
            })?;
        lines.push(line);
    }
    for wanted in [
        format!("producer: sent {k} messages and the sentinel"),
        format!("consumer pid={consumer}: sentinel after {k} messages"),
        format!("producer: consumer {consumer} exited with 0"),
    ] {
        expect_line_in(&lines, &wanted)?;
    }
    let exit = expect_exit_0(run, &mut p);
    p.close_stdin();
    exit
}

/// The pipe ends a process holds beyond fds 0, 1 and 2: target -> access.
fn pipe_ends(pid: i32) -> (BTreeMap<i32, (String, u32)>, Vec<String>) {
    let mut pipes = BTreeMap::new();
    let mut other = Vec::new();
    for (fd, target) in procfs::fds(pid).into_iter().filter(|(fd, _)| *fd > 2) {
        if target.starts_with("pipe:") {
            let access = procfs::fd_access(pid, fd).unwrap_or(2);
            pipes.insert(fd, (target, access));
        } else {
            other.push(format!("{fd} ({target})"));
        }
    }
    (pipes, other)
}

fn describe_ends(ends: &BTreeMap<i32, (String, u32)>) -> String {
    if ends.is_empty() {
        return "no pipe".into();
    }
    ends.iter()
        .map(|(fd, (t, a))| {
            let mode = match a {
                0 => "read end",
                1 => "write end",
                _ => "both ends",
            };
            format!("fd {fd}: {mode} of {t}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn request_response(run: &mut Run) -> Outcome {
    let mut p = run.spawn("ask", &[])?;
    let program = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `client pid=P server=S`")?;
    let Some(server) = field_num(&first, "server") else {
        return Err(Failure::wrong(
            "a line `client pid=P server=S`",
            format!("`{first}`"),
        ));
    };
    let server = server as i32;
    expect_child(server, program, "the server")?;
    // Both wait in read() now: the client on its stdin, the server for a
    // request. Their descriptor tables are final.
    let settled = run.poll(PATIENCE, || {
        let reading = |pid| {
            procfs::blocked(pid)
                .syscall
                .is_some_and(|(nr, _)| syscall_name(nr) == Some("read"))
        };
        (reading(server) && reading(program)).then_some(())
    });
    if settled.is_none() {
        return Err(hang(
            run,
            program,
            "the client and the server to wait in read()",
        ));
    }
    let (server_ends, _) = pipe_ends(server);
    let (client_ends, _) = pipe_ends(program);
    let shape = format!(
        "the server holds {}; the client holds {}",
        describe_ends(&server_ends),
        describe_ends(&client_ends)
    );
    let targets = |ends: &BTreeMap<i32, (String, u32)>, mode: u32| -> Vec<String> {
        ends.values()
            .filter(|(_, a)| *a == mode)
            .map(|(t, _)| t.clone())
            .collect()
    };
    let (s_read, s_write) = (targets(&server_ends, 0), targets(&server_ends, 1));
    let (c_read, c_write) = (targets(&client_ends, 0), targets(&client_ends, 1));
    let distinct: std::collections::BTreeSet<&String> = server_ends
        .values()
        .chain(client_ends.values())
        .map(|(t, _)| t)
        .collect();
    if distinct.len() < 2
        || s_read.iter().any(|t| s_write.contains(t))
        || c_read.iter().any(|t| c_write.contains(t))
    {
        return Err(Failure::wrong(
            "two pipes: requests from client to server, replies from server to client",
            shape,
        )
        .because(
            "one pipe is used both ways. A pipe carries bytes one way, and whoever reads first gets them: \
             the client may read back its own request (the seeds' `sleep(2)` hack only makes that less likely). Use two pipes",
        ));
    }
    if server_ends.len() != 2 || client_ends.len() != 2 || s_read.len() != 1 || s_write.len() != 1 {
        return Err(Failure::wrong(
            "each process to hold exactly the two ends it uses, one read end and one write end",
            shape,
        )
        .because("after fork, each side drops the two ends it does not use: a forgotten write end means no end of file, a forgotten read end means no EPIPE"));
    }
    if c_write != s_read || c_read != s_write {
        return Err(Failure::wrong(
            "the client's write end and the server's read end on one pipe, and the other way round on the second",
            shape,
        ));
    }

    let n = run.rng.random_range(5..=10);
    for i in 0..n {
        let words_n = run.rng.random_range(1..=4);
        let request = format!("{} {i}", words(&mut run.rng, words_n));
        write_line(&mut p, &request)?;
        let reversed: String = request.chars().rev().collect();
        let wanted = format!("reply: {reversed}");
        let line = line_within(run, &mut p, PATIENCE, &format!("`{wanted}`"))?;
        if line != wanted {
            let why = if line == format!("reply: {request}") {
                "the reply is the request itself: the client read back its own request. Use two pipes"
            } else {
                "each request gets its own reply, in order"
            };
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")).because(why));
        }
    }
    p.close_stdin();
    let rest = rest_within(
        run,
        &mut p,
        PATIENCE,
        "the server to end once the client closes the requests pipe",
    )
    .map_err(|f| {
        with_advice(
            f,
            "`stop` closes the requests pipe; the server sees end of file and returns",
        )
    })?;
    expect_line_in(&rest, &format!("client: server {server} exited with 0"))?;
    expect_exit_0(run, &mut p)
}

fn reader_gone_epipe(run: &mut Run) -> Outcome {
    let n: u64 = run.rng.random_range(1000..30_000);
    let mut p = run.spawn("firehose", &[n.to_string()])?;
    let program = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `writer pid=P reader=C`")?;
    let Some(reader) = field_num(&first, "reader") else {
        return Err(Failure::wrong(
            "a line `writer pid=P reader=C`",
            format!("`{first}`"),
        ));
    };
    let rest = rest_within(run, &mut p, PATIENCE, "the writer to notice that its reader is gone")
        .map_err(|f| {
            with_advice(
                f,
                "A writer gets EPIPE only when no read end is open anywhere: if the writer still holds the read end itself, the pipe just fills up. Drop the read end in the parent right after fork",
            )
        })?;
    expect_line_in(
        &rest,
        &format!("reader pid={reader} read {n} bytes and leaves"),
    )?;
    let Some(epipe) = rest.iter().find(|l| l.starts_with("writer: EPIPE after ")) else {
        return Err(Failure::wrong(
            "`writer: EPIPE after N bytes: the reader is gone`",
            format!("the program printed {}", quote_lines(&rest)),
        ));
    };
    let written = epipe
        .split_whitespace()
        .nth(3)
        .and_then(|w| w.parse::<u64>().ok())
        .unwrap_or(0);
    if written < n {
        return Err(Failure::wrong(
            format!("EPIPE after at least the {n} bytes the reader read"),
            format!("`{epipe}`"),
        ));
    }
    expect_line_in(&rest, &format!("writer: reader {reader} exited with 0"))?;
    match p.wait((Instant::now() + PATIENCE).min(run.deadline)) {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(Exit::Signal(nix::sys::signal::Signal::SIGPIPE)) => Err(Failure::wrong(
            "the writer to report EPIPE and exit 0",
            "SIGPIPE killed it",
        )
        .because("the writer died of SIGPIPE: Rust programs ignore it, unless something set it back to the default")),
        Ok(other) => Err(Failure::wrong("exit status 0", format!("{other}"))),
        Err(_) => Err(hang(run, program, "the writer to exit")),
    }
}
