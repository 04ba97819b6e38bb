//! Lab 12 — the showdown: one interface, five mechanisms, measured.
//!
//! Correctness: the checker chooses the messages (sizes from 0 to past
//! 64 KiB and past the ring's size, random bytes), hands them to `relay`
//! in a file, and compares byte for byte what came back through each
//! transport (`echoed.bin`, round trips) and what the child received
//! (`streamed.bin`, one way and as fast as possible, so that buffers fill
//! up). While the relay holds at a gate, it looks in /proc at what the
//! parent really holds: pipes, FIFOs, a socket, queues or a shared mapping.
//!
//! The harness: the checker runs `bench` twice with small counts it
//! chooses, and checks that the CSV is consistent with itself, with the
//! arguments and with the time the runs took, and that the figures were
//! measured (two runs do not give the same latencies). It makes no
//! assertion on speed.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use crate::labs::Lab;
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num};
use crate::usage::Usage;

pub static LAB: Lab = Lab {
    number: 12,
    slug: "showdown",
    title: "The showdown: five mechanisms, measured",
    scenarios: &[
        Scenario {
            name: "pipe-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay pipe` with about 30 messages of random bytes, from 0 bytes to past 64 KiB, echoed one at a time and then streamed one way",
            expects: "two pipes in the parent, and every message back exactly as sent, in order, nothing missing or extra",
            hints: &[
                "Start with `write_frame` and `read_frame`: a 4-byte length, then the bytes. Then `prepare` and `open` for Pipe.",
                "`read_exact`, not `read`: one read on a pipe returns at most what the pipe holds (64 KiB), so a large message arrives in several pieces.",
                "In `open`, the parent keeps the write end of `down` and the read end of `up`; the child the other two. Dropping the others closes them.",
            ],
            max_procs: 6,
            run: pipe_carries_every_byte,
        },
        Scenario {
            name: "fifo-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay fifo` with random messages, echoed and then streamed",
            expects: "two FIFOs open in the parent, every message back as sent, and no FIFO left in the directory afterwards",
            hints: &[
                "`prepare` makes two FIFOs with `mkfifo` (paths from `unique_path`); `open` opens them after fork.",
                "Both sides open `down` first and `up` second: an open blocks until the other side opens the same FIFO, so opposite orders deadlock.",
                "Once the parent has both open, it removes both names: open FIFOs keep working, and nothing is left behind.",
            ],
            max_procs: 6,
            run: fifo_carries_every_byte,
        },
        Scenario {
            name: "socket-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay socket` with random messages, echoed and then streamed",
            expects: "a Unix socket in the parent, and every message back as sent",
            hints: &[
                "`UnixStream::pair()` gives two connected sockets: one for each side. A stream socket has no message boundaries: frame it like a pipe.",
                "`try_clone` the socket to have one handle to read and one to write in a `StreamEnd`.",
            ],
            max_procs: 6,
            run: socket_carries_every_byte,
        },
        Scenario {
            name: "queue-carries-every-byte",
            points: 2,
            limit: Duration::from_secs(12),
            does: "runs `relay queue` with random messages, echoed and then streamed",
            expects: "two POSIX message queues in the parent, every message back as sent, and no queue left in /dev/mqueue",
            hints: &[
                "`new_queue`: `mq_open` with O_CREAT | O_EXCL | O_RDWR and an MqAttr of QUEUE_DEPTH messages of QUEUE_MSG bytes, then `mq_unlink` at once.",
                "A queue message holds at most QUEUE_MSG (8192) bytes: send a first chunk with the length and the start, then the rest in chunks.",
                "The receiver reads the length from the first chunk, then receives chunks until it has that many bytes.",
            ],
            max_procs: 6,
            run: queue_carries_every_byte,
        },
        Scenario {
            name: "ring-carries-every-byte",
            points: 3,
            limit: Duration::from_secs(12),
            does: "runs `relay ring` with random messages, some larger than the ring itself, echoed and then streamed, and watches the child's CPU time while it waits at the gate",
            expects: "a shared mapping in the parent, a child that sleeps while it waits, and every message back as sent, even when the ring fills up",
            hints: &[
                "The writer copies at most the free room (RING_DATA minus head - tail), publishes the new head, and waits for the tail to move when the ring is full.",
                "Wake-ups: the sleeper raises its flag, then looks once more before futex_wait; the other side stores first, then looks at the flag and calls futex_wake.",
                "Before sleeping, `given::spin_while(word, seen)` looks for a few microseconds; if the word changed, return with no system call. Never loop on the word without sleeping: an idle ring must not burn a CPU.",
                "A message larger than the ring goes through in pieces: the writer fills the ring, sleeps, and goes on as the reader empties it.",
            ],
            max_procs: 6,
            run: ring_carries_every_byte,
        },
        Scenario {
            name: "bench-is-measured",
            points: 3,
            limit: Duration::from_secs(60),
            does: "runs `bench` twice with message counts and sizes chosen at random, and reads its CSV files",
            expects: "a row per mechanism and the floor, the counts and sizes asked for, ratios that follow from the figures, and figures that were measured, not written in advance",
            hints: &[
                "`round_trips`: time each send and its echo with `Instant::now()` and `elapsed()`; `one_way`: time all the sends and the final ok.",
                "`Latency::of`: sort the samples and take the values at rank ceil(0.5 n) and ceil(0.99 n).",
                "Measured times differ from run to run: a harness that reports the same latencies twice did not measure them.",
            ],
            max_procs: 6,
            run: bench_is_measured,
        },
    ],
    fixtures: &[
        Fixture {
            name: "reads-once",
            caught_by: "pipe-carries-every-byte",
            says: "read_exact",
        },
        Fixture {
            name: "fifos-left-behind",
            caught_by: "fifo-carries-every-byte",
            says: "remove",
        },
        Fixture {
            name: "queue-without-chunks",
            caught_by: "queue-carries-every-byte",
            says: "chunks",
        },
        Fixture {
            name: "ring-ignores-full",
            caught_by: "ring-carries-every-byte",
            says: "wait for room",
        },
        Fixture {
            name: "ring-never-wakes",
            caught_by: "ring-carries-every-byte",
            says: "futex_wake",
        },
        Fixture {
            name: "ring-spins-forever",
            caught_by: "ring-carries-every-byte",
            says: "spins",
        },
        Fixture {
            name: "harness-invents-numbers",
            caught_by: "bench-is-measured",
            says: "not measured",
        },
    ],
    variants: &[],
};

/// The mechanisms, as `relay` and `bench` name them.
const MECHANISMS: [&str; 5] = ["pipe", "fifo", "socket", "queue", "ring"];
const PIPE_BUF: usize = 4096;
const PIPE_SIZE: usize = 65536;
const QUEUE_MSG: usize = 8192;
const RING_DATA: usize = 256 << 10;

fn pipe_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "pipe")
}

fn fifo_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "fifo")
}

fn socket_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "socket")
}

fn queue_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "queue")
}

fn ring_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "ring")
}

/// Random messages: the sizes where transports break (empty, around
/// PIPE_BUF, around a queue message, around a pipe's capacity, past the
/// ring), and random ones, in random order, of random bytes.
fn messages(run: &mut Run) -> Vec<Vec<u8>> {
    let r = &mut run.rng;
    let mut sizes = vec![
        0,
        1,
        PIPE_BUF - 1,
        PIPE_BUF,
        PIPE_BUF + 1,
        QUEUE_MSG - 4,
        QUEUE_MSG,
        QUEUE_MSG + 1,
        PIPE_SIZE - 1,
        PIPE_SIZE,
        PIPE_SIZE + 1,
        r.random_range(PIPE_SIZE + 2..RING_DATA),
        r.random_range(RING_DATA + 1..2 * RING_DATA + 50_000),
        0,
    ];
    for _ in 0..12 {
        sizes.push(r.random_range(0..3000));
    }
    for _ in 0..4 {
        sizes.push(r.random_range(3000..120_000));
    }
    sizes.shuffle(r);
    sizes
        .into_iter()
        .map(|n| {
            let mut m = vec![0u8; n];
            r.fill_bytes(&mut m);
            m
        })
        .collect()
}

fn frames(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// The frames of a file; a cut last frame is kept as what arrived of it.
fn parse_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = (at + 4 + len).min(bytes.len());
        out.push(bytes[at + 4..end].to_vec());
        at = end;
    }
    out
}

fn carries(run: &mut Run, mech: &'static str) -> Outcome {
    let sent = messages(run);
    let path = run.sandbox.tmp.join("messages.bin");
    std::fs::write(&path, frames(&sent))
        .map_err(|e| Failure::internal(format!("writing {}: {e}", path.display())))?;
    let args = vec![
        mech.to_string(),
        "messages.bin".to_string(),
        "--hold".to_string(),
    ];
    let mut p = run.spawn("relay", &args)?;
    let line = run
        .line(
            &mut p,
            "`connected parent=P child=C` once both ends are open",
        )
        .map_err(|f| with_hang_cause(f, mech))?
        .text;
    let parent = field_num(&line, "parent").unwrap_or(-1) as i32;
    if parent != p.pid {
        return Err(Failure::wrong(
            format!("`connected parent={} child=C`", p.pid),
            format!("`{line}`"),
        ));
    }
    expect_holds(run, parent, mech)?;
    if mech == "ring" {
        let child = field_num(&line, "child").unwrap_or(-1) as i32;
        expect_sleeping(run, child)?;
    }
    p.close_stdin();
    let waited = run.wait(&mut p).map_err(|f| with_hang_cause(f, mech));

    // What arrived tells more than a hang or an exit status, unless it is
    // only that the rest never came.
    for (file, round) in [
        (
            "received.bin",
            "sent one at a time, as the child received it",
        ),
        ("echoed.bin", "sent one at a time and echoed back"),
        ("streamed.bin", "streamed one way without waiting"),
    ] {
        let got = std::fs::read(run.sandbox.tmp.join(file)).unwrap_or_default();
        if let Err((f, missing)) = compare(&sent, &parse_frames(&got), mech, round) {
            if let Some(i) = missing {
                let one_at_a_time = file != "streamed.bin";
                waited.map_err(|f| {
                    let f = match mech {
                        "ring" => ring_hang_cause(f, &sent[i], one_at_a_time),
                        _ => f,
                    };
                    with_stderr(f, run, mech)
                })?;
            }
            return Err(with_stderr(f, run, mech));
        }
    }
    let status = waited?;
    if status != crate::process::Exit::Code(0) {
        return Err(Failure::wrong(
            "relay to exit with status 0",
            format!("every message arrived, but it ended with {status}"),
        ));
    }
    match mech {
        "fifo" => {
            let left: Vec<String> = std::fs::read_dir(&run.sandbox.tmp)
                .map(|d| {
                    d.flatten()
                        .filter(|e| {
                            use std::os::unix::fs::FileTypeExt;
                            e.file_type().map(|t| t.is_fifo()).unwrap_or(false)
                        })
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            if !left.is_empty() {
                return Err(Failure::wrong(
                    "no FIFO left in the directory once relay has exited",
                    format!("left: {}", left.join(", ")),
                )
                .because(
                    "the FIFOs were never removed: once the parent has opened both, it can remove \
                     their names (std::fs::remove_file); the open descriptors keep working",
                ));
            }
        }
        "queue" => {
            let left = run.sandbox.ipc_objects();
            if !left.is_empty() {
                let names: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
                return Err(Failure::wrong(
                    "no message queue left in /dev/mqueue once relay has exited",
                    format!("left: {}", names.join(", ")),
                )
                .because(
                    "mq_unlink each queue right after mq_open: the descriptors keep it alive",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// What the parent must hold while it waits at the gate.
fn expect_holds(run: &Run, pid: i32, mech: &str) -> Outcome {
    let fds: Vec<(i32, String)> = procfs::fds(pid)
        .into_iter()
        .filter(|(fd, _)| *fd > 2)
        .collect();
    let listing = || {
        let shown: Vec<String> = fds.iter().map(|(fd, t)| format!("{fd} -> {t}")).collect();
        if shown.is_empty() {
            "no descriptor besides 0, 1 and 2".to_string()
        } else {
            shown.join(", ")
        }
    };
    let count = |f: &dyn Fn(i32, &str) -> bool| fds.iter().filter(|(fd, t)| f(*fd, t)).count();
    let (ok, wanted) = match mech {
        "pipe" => (
            count(&|_, t| t.starts_with("pipe:")) >= 2,
            "two pipes (`pipe:[...]` in /proc/PID/fd): one to send, one to receive",
        ),
        "fifo" => (
            count(&|fd, t| {
                use std::os::unix::fs::FileTypeExt;
                !t.starts_with("pipe:")
                    && std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                        .map(|m| m.file_type().is_fifo())
                        .unwrap_or(false)
            }) >= 2,
            "two named FIFOs open (made with mkfifo, not anonymous pipes)",
        ),
        "socket" => (
            count(&|_, t| t.starts_with("socket:")) >= 1,
            "a Unix socket (`socket:[...]` in /proc/PID/fd)",
        ),
        "queue" => (
            count(&|_, t| t.starts_with(run.sandbox.ipc_prefix.as_str())) >= 2,
            "two message queues named from LAB_IPC_PREFIX (given::ipc_name)",
        ),
        _ => {
            let shared = procfs::mappings(pid)
                .iter()
                .any(|m| m.is_shared() && m.perms.contains('w') && m.end - m.start >= 65536);
            if shared {
                return Ok(());
            }
            return Err(Failure::wrong(
                "the parent to map shared memory for the rings (a `rw-s` mapping in /proc/PID/maps)",
                "it has no shared writable mapping of 64 KiB or more",
            )
            .because("prepare the Ring with SharedMemory::new(2 * RING_BYTES), before fork"));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Failure::wrong(
            format!("the parent of `relay {mech}`, once connected, to hold {wanted}"),
            format!("it holds {}", listing()),
        )
        .because(format!(
            "the {mech} transport must really use that mechanism: check `prepare` and `open` for Mechanism::{}",
            capitalised(mech)
        )))
    }
}

/// How long the checker watches the ring's child wait for its first
/// message, and the CPU share above which it is spinning, not sleeping.
const SLEEP_WINDOW: Duration = Duration::from_millis(400);
const SPINNING_SHARE: f64 = 0.25;

/// While the parent holds at the gate, the child waits for its first
/// message: after a few microseconds of looking, it must sleep.
fn expect_sleeping(run: &Run, child: i32) -> Outcome {
    let before = Usage::of(child);
    run.pause(SLEEP_WINDOW);
    let spent = Usage::of(child).since(&before);
    if spent.cpu_share() <= SPINNING_SHARE && !spent.never_slept() {
        return Ok(());
    }
    Err(Failure::wrong(
        format!(
            "the child (pid {child}), waiting for a message that has not been sent yet, to sleep \
             in futex_wait and use almost no CPU"
        ),
        format!(
            "it used {} ms of CPU in {} ms",
            spent.cpu.as_millis(),
            spent.wall.as_millis()
        ),
    )
    .because(
        "the ring spins without end: wait_for_change keeps looking at the counter instead of \
         sleeping. Look for a few microseconds at most (given::spin_while), then raise the flag \
         and sleep in futex_wait: an idle reader must not burn a CPU",
    ))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The first difference between what was sent and what arrived, and the
/// message that never arrived, if that is the difference.
fn compare(
    sent: &[Vec<u8>],
    got: &[Vec<u8>],
    mech: &str,
    round: &str,
) -> Result<(), (Failure, Option<usize>)> {
    for (i, want) in sent.iter().enumerate() {
        let Some(have) = got.get(i) else {
            return Err((
                Failure::wrong(
                    format!("all {} messages, {round}", sent.len()),
                    format!(
                        "only {i} arrived; message {i} ({} bytes) never did",
                        want.len()
                    ),
                ),
                Some(i),
            ));
        };
        if have == want {
            continue;
        }
        let expected = format!(
            "message {i} ({} bytes), {round}, to arrive as sent",
            want.len()
        );
        if have.len() != want.len() {
            let mut f = Failure::wrong(expected, format!("it arrived with {} bytes", have.len()));
            if have.len() < want.len() && want.starts_with(have) {
                f.happened.push_str(": the start of it, cut short");
            }
            return Err((f.because(size_cause(mech, want.len(), have.len())), None));
        }
        let at = want.iter().zip(have).position(|(a, b)| a != b).unwrap_or(0);
        let elsewhere = sent.iter().position(|m| m == have);
        let happened = match elsewhere {
            Some(j) => format!("message {j} arrived in its place: the order is wrong"),
            None => format!("its bytes differ from byte {at} on"),
        };
        return Err((
            Failure::wrong(expected, happened).because(content_cause(mech)),
            None,
        ));
    }
    if got.len() > sent.len() {
        return Err((
            Failure::wrong(
                format!("exactly {} messages, {round}", sent.len()),
                format!("{} arrived: something extra", got.len()),
            ),
            None,
        ));
    }
    Ok(())
}

fn size_cause(mech: &str, want: usize, have: usize) -> String {
    match mech {
        "queue" if want > QUEUE_MSG - 4 => format!(
            "a queue message holds at most {QUEUE_MSG} bytes (msgsize): a message of {want} bytes \
             must go as chunks, the first with the length, and be put together again"
        ),
        "ring" if want > RING_DATA => format!(
            "the ring holds {RING_DATA} bytes: a message of {want} must go through in pieces, the \
             writer waiting for room as the reader empties the ring"
        ),
        _ if want > PIPE_BUF && have < want => format!(
            "a single read() returns what is there (a pipe holds 64 KiB, and a writer's large \
             write arrives in pieces), not what you asked for: read the {want} bytes with \
             read_exact, which loops until all have arrived"
        ),
        _ => "the length sent with the message and the bytes that follow it disagree: check the \
              framing in write_frame and read_frame (4 bytes of length, little endian, then the bytes)"
            .to_string(),
    }
}

fn content_cause(mech: &str) -> String {
    match mech {
        "ring" => "bytes were overwritten before they were read: the writer must wait for room \
                   (head - tail < RING_DATA) and the reader must publish the tail only after \
                   copying"
            .to_string(),
        _ => "bytes were lost or mixed up on the way: check that every write goes out whole \
              (write_all) and every read takes exactly the bytes asked for (read_exact)"
            .to_string(),
    }
}

/// A scenario that timed out: the ring's usual cause.
fn with_hang_cause(f: Failure, mech: &str) -> Failure {
    if f.kind != crate::scenario::Kind::TimedOut || f.why.is_some() {
        return f;
    }
    match mech {
        "ring" => f.because(
            "a process sleeps in futex_wait and nobody wakes it: after storing a new head or tail, \
             look at the other side's flag and call futex_wake",
        ),
        "fifo" => f.because(
            "opening a FIFO waits for the other end: both sides must open `down` first, then `up`",
        ),
        _ => f,
    }
}

/// A ring that hung while `msg` was on its way. Sent one at a time, a
/// message finds the ring empty: if it fits, with its length, only a lost
/// wake-up can stop it. A larger one, or a stream, fills the ring, and
/// a writer that does not wait for room then overwrites a length not read
/// yet: the reader waits for bytes that will never come.
fn ring_hang_cause(f: Failure, msg: &[u8], one_at_a_time: bool) -> Failure {
    if f.kind != crate::scenario::Kind::TimedOut || (one_at_a_time && 4 + msg.len() <= RING_DATA) {
        return f;
    }
    let full = if one_at_a_time {
        format!(
            "a message of {} bytes, more than the ring's {RING_DATA}, was on its way",
            msg.len()
        )
    } else {
        "the parent was streaming without waiting, which fills the ring".to_string()
    };
    f.because(format!(
        "a process sleeps in futex_wait and nothing wakes it, and {full}. Either the writer did not \
         wait for room (while head - tail == RING_DATA) and overwrote a length the reader had not \
         read yet, so the reader now waits for bytes that will never come; or a wake-up was lost: \
         after storing a new head or tail, look at the other side's flag and call futex_wake"
    ))
}

/// Adds a cause from the program's own error, when it has one.
fn with_stderr(f: Failure, run: &Run, mech: &str) -> Failure {
    // The program has just failed: its last words may still be on their
    // way through the stderr pipe. Give them a moment.
    let stderr = || -> String { run.spawned.iter().map(|s| s.stderr.text()).collect() };
    let telling = ["EMSGSIZE", "Message too long", "out of step"];
    let err = run
        .poll(Duration::from_secs(1), || {
            let e = stderr();
            telling.iter().any(|t| e.contains(t)).then_some(e)
        })
        .unwrap_or_else(stderr);
    if mech == "queue" && (err.contains("EMSGSIZE") || err.contains("Message too long")) {
        return f.because(format!(
            "mq_send failed with EMSGSIZE: a queue message holds at most {QUEUE_MSG} bytes; send \
             a larger message as chunks, the first with the total length"
        ));
    }
    if mech == "ring" && err.contains("out of step") {
        return f.because(
            "the reader found a length that makes no sense: bytes were overwritten before they \
             were read. The writer must wait for room (head - tail < RING_DATA) when the ring is \
             full, and the reader publish the tail only after copying",
        );
    }
    f
}

// ---------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------

const HEADER: &str = "name,messages,small_bytes,median_ns,p99_ns,latency_ratio,large_bytes,mb_per_s,throughput_ratio,cpu_ns_per_msg,cpu_ratio";

#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    messages: u64,
    small_bytes: u64,
    median_ns: f64,
    p99_ns: f64,
    latency_ratio: f64,
    large_bytes: u64,
    mb_per_s: f64,
    throughput_ratio: f64,
    cpu_ns: f64,
    cpu_ratio: f64,
}

struct Bench {
    rows: Vec<Row>,
    took: Duration,
}

fn bench_once(
    run: &mut Run,
    n: usize,
    size: usize,
    small: usize,
    out: &str,
) -> Result<Bench, Failure> {
    let args: Vec<String> = [
        "--messages",
        &n.to_string(),
        "--size",
        &size.to_string(),
        "--small",
        &small.to_string(),
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let mut p = run.spawn("bench", &args)?;
    let printed: Vec<String> = run
        .rest(&mut p, "bench to print its table and exit")?
        .into_iter()
        .map(|l| l.text)
        .collect();
    run.expect_success(&mut p)?;
    let took = started.elapsed();
    let what = format!("`bench {}`", args.join(" "));
    for name in std::iter::once("floor").chain(MECHANISMS) {
        if !printed.iter().any(|l| l.starts_with(name)) {
            return Err(Failure::wrong(
                format!("{what} to print a table with a line for {name}"),
                format!("no line starts with {name}"),
            ));
        }
    }
    let text = std::fs::read_to_string(run.sandbox.tmp.join(out)).map_err(|e| {
        Failure::wrong(
            format!("{what} to write {out}"),
            format!("cannot read it: {e}"),
        )
    })?;
    let rows = parse_csv(&text)
        .map_err(|e| Failure::wrong(format!("{out}: CSV with the columns {HEADER}"), e))?;
    Ok(Bench { rows, took })
}

fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        other => return Err(format!("the first line is {other:?}")),
    }
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 11 {
            return Err(format!("`{line}` has {} fields, not 11", f.len()));
        }
        let num = |i: usize| -> Result<f64, String> {
            f[i].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("`{}` in `{line}` is not a number", f[i]))
        };
        let int = |i: usize| -> Result<u64, String> {
            f[i].parse::<u64>()
                .map_err(|_| format!("`{}` in `{line}` is not a whole number", f[i]))
        };
        rows.push(Row {
            name: f[0].to_string(),
            messages: int(1)?,
            small_bytes: int(2)?,
            median_ns: num(3)?,
            p99_ns: num(4)?,
            latency_ratio: num(5)?,
            large_bytes: int(6)?,
            mb_per_s: num(7)?,
            throughput_ratio: num(8)?,
            cpu_ns: num(9)?,
            cpu_ratio: num(10)?,
        });
    }
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let wanted: Vec<&str> = std::iter::once("floor").chain(MECHANISMS).collect();
    if names != wanted {
        return Err(format!("rows {names:?}, not {wanted:?}"));
    }
    Ok(rows)
}

/// The bars of the chart (`crate::chart`) from the text of the harness's
/// CSV, with the small and the large message sizes.
pub fn bars(text: &str) -> Result<(Vec<crate::chart::Bar>, u64, u64), String> {
    let rows = parse_csv(text)?;
    let small = rows.get(1).map_or(0, |r| r.small_bytes);
    let large = rows.first().map_or(0, |r| r.large_bytes);
    let bars = rows
        .into_iter()
        .map(|r| crate::chart::Bar {
            name: r.name,
            median_ns: r.median_ns,
            latency_ratio: r.latency_ratio,
            mb_per_s: r.mb_per_s,
            throughput_ratio: r.throughput_ratio,
        })
        .collect();
    Ok((bars, small, large))
}

fn close(printed: f64, computed: f64) -> bool {
    (printed - computed).abs() <= 0.002 + 0.005 * computed.abs()
}

/// The CSV agrees with itself, with the arguments, and with the time the
/// run took.
fn consistent(b: &Bench, n: usize, size: usize, small: usize, out: &str) -> Outcome {
    let floor = &b.rows[0];
    for r in &b.rows {
        let bad = |expected: String, happened: String| {
            Err(Failure::wrong(
                format!("{out}, row {}: {expected}", r.name),
                happened,
            ))
        };
        if r.messages != n as u64 || r.large_bytes != size as u64 {
            return bad(
                format!(
                    "messages = {n} and large_bytes = {size}, as asked with --messages and --size"
                ),
                format!("messages = {}, large_bytes = {}", r.messages, r.large_bytes),
            );
        }
        if r.name != "floor" && r.small_bytes != small as u64 {
            return bad(
                format!("small_bytes = {small}, as asked with --small"),
                format!("small_bytes = {}", r.small_bytes),
            );
        }
        if r.median_ns <= 0.0 || r.mb_per_s <= 0.0 || r.cpu_ns <= 0.0 {
            return bad(
                "a median, a throughput and a CPU time above 0".into(),
                format!(
                    "median_ns = {}, mb_per_s = {}, cpu_ns_per_msg = {}",
                    r.median_ns, r.mb_per_s, r.cpu_ns
                ),
            );
        }
        if r.p99_ns < r.median_ns {
            return bad(
                "p99_ns at least median_ns".into(),
                format!("median {} ns, p99 {} ns", r.median_ns, r.p99_ns),
            )
            .map_err(|f: Failure| {
                f.because("the samples must be sorted before picking ranks: the 99th percentile is never below the median")
            });
        }
        let ratios = [
            (
                "latency_ratio",
                r.latency_ratio,
                r.median_ns / floor.median_ns,
            ),
            (
                "throughput_ratio",
                r.throughput_ratio,
                r.mb_per_s / floor.mb_per_s,
            ),
            ("cpu_ratio", r.cpu_ratio, r.cpu_ns / floor.cpu_ns),
        ];
        for (name, printed, computed) in ratios {
            if !close(printed, computed) {
                return bad(
                    format!("{name} = the figure divided by the floor's, {computed:.3}"),
                    format!("{name} = {printed}"),
                );
            }
        }
    }
    // Every round trip and every one-way run happened inside the run: at
    // least half the round trips took the median or more.
    let mut spent = 0.0;
    for r in &b.rows {
        spent += n as f64 / 2.0 * r.median_ns / 1e9;
        spent += (n * size) as f64 / (r.mb_per_s.max(0.1) * 1e6) * 0.95;
    }
    let took = b.took.as_secs_f64();
    if spent > took + 0.05 {
        return Err(Failure::wrong(
            format!("figures that fit in the {took:.2} s the run took"),
            format!(
                "at those latencies and throughputs, the measured work alone takes {spent:.2} s"
            ),
        )
        .because("these figures were not measured: they describe more time than passed"));
    }
    Ok(())
}

fn bench_is_measured(run: &mut Run) -> Outcome {
    let n1 = run.rng.random_range(120..200);
    let n2 = n1 + run.rng.random_range(30..90);
    let sizes = [16384, 32768, 65536, 100_000];
    let s1 = sizes[run.rng.random_range(0..sizes.len())];
    let s2 = sizes
        .iter()
        .copied()
        .filter(|&s| s != s1)
        .nth(run.rng.random_range(0..3))
        .unwrap_or(65536);
    let (b1, b2) = (run.rng.random_range(8..200), run.rng.random_range(8..200));
    let first = bench_once(run, n1, s1, b1, "first.csv")?;
    consistent(&first, n1, s1, b1, "first.csv")?;
    let second = bench_once(run, n2, s2, b2, "second.csv")?;
    consistent(&second, n2, s2, b2, "second.csv")?;
    let same = first
        .rows
        .iter()
        .zip(&second.rows)
        .all(|(a, b)| a.median_ns == b.median_ns && a.p99_ns == b.p99_ns);
    if same {
        return Err(Failure::wrong(
            "latencies that differ between two runs, as measured times always do",
            format!(
                "both runs report the same median and p99 for every row (e.g. {} ns and {} ns for pipe)",
                first.rows[1].median_ns, first.rows[1].p99_ns
            ),
        )
        .because("the latencies were not measured: compute them from the samples (sort, then pick the ranks), never from constants"));
    }
    Ok(())
}
