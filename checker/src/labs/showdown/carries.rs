//! Every transport carries every message: random bytes, from empty to
//! past the ring, echoed one at a time and then streamed; what the parent
//! holds at the gate; the ring's child asleep while it waits.

use crate::pid::Pid;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use super::{PIPE_BUF, PIPE_SIZE, QUEUE_MSG, RING_DATA};
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};
use crate::usage::Usage;

pub(super) fn pipe_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "pipe")
}

pub(super) fn fifo_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "fifo")
}

pub(super) fn socket_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "socket")
}

pub(super) fn queue_carries_every_byte(run: &mut Run) -> Outcome {
    carries(run, "queue")
}

pub(super) fn ring_carries_every_byte(run: &mut Run) -> Outcome {
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
    let parent = Pid::field(&line, "parent").unwrap_or(Pid::from_raw(-1));
    if parent != p.pid {
        return Err(Failure::wrong(
            format!("`connected parent={} child=C`", p.pid),
            format!("`{line}`"),
        ));
    }
    expect_holds(run, parent, mech)?;
    if mech == "ring" {
        let child = Pid::field(&line, "child").unwrap_or(Pid::from_raw(-1));
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
fn expect_holds(run: &Run, pid: Pid, mech: &str) -> Outcome {
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
fn expect_sleeping(run: &Run, child: Pid) -> Outcome {
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
        // Where that byte was in the stream: each message before it took
        // its 4 bytes of length and its bytes, from a fresh ring.
        let offset = sent[..i].iter().map(|m| 4 + m.len()).sum::<usize>() + 4 + at;
        let failure = Failure::wrong(expected, happened);
        if mech == "ring" && elsewhere.is_none() && offset >= RING_DATA && offset % RING_DATA < 16 {
            return Err((
                failure
                    .because(format!(
                        "the bytes go wrong right where the ring wraps: byte {at} of this message \
                         is byte {offset} of the stream, {} times the ring's {RING_DATA} bytes. A \
                         copy that reaches the end of the ring must go on at its start (two copies: \
                         up to the end, then the rest from offset 0)",
                        offset / RING_DATA
                    ))
                    .hint("In `write_bytes` and `read_bytes`, copy `first = n.min(RING_DATA - at)` bytes at `at`, then `n - first` bytes at the start of the data."),
                None,
            ));
        }
        return Err((failure.because(content_cause(mech)), None));
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
        "ring" => "the bytes changed in the ring: either they were overwritten before they were \
                   read (the writer must wait for room, head - tail < RING_DATA, and the reader \
                   publish the tail only after copying), or read before they were written (the \
                   writer must publish the head only after copying)"
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
