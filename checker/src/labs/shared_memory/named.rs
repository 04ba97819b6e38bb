//! The named segment between unrelated programs: the student's writer
//! with the checker as reader, the checker as writer with the student's
//! reader, and the two together.

use crate::pid::Pid;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;

use super::segment::*;
use crate::peers::waiting::{described, spinning};
use crate::process::Proc;
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run, quote_lines};

pub fn writer_fills_the_segment(run: &mut Run) -> Outcome {
    let text = random_text(run);
    let (name, path) = segment_name(run);
    let mut p = run.spawn("writer", std::slice::from_ref(&text))?;
    let lines = texts(run.rest(&mut p, "the writer to finish")?);
    expect_clean_exit(run, &mut p, &lines)?;
    check_segment(run, &name, &path, &text)?;
    Ok(())
}

/// Reads the segment the writer left and compares it with `text`.
pub fn check_segment(run: &Run, name: &str, path: &PathBuf, text: &str) -> Outcome {
    let objects = run.sandbox.ipc_objects();
    if !objects.contains(path) {
        let others: Vec<String> = objects.iter().map(|o| o.display().to_string()).collect();
        return Err(Failure::wrong(
            format!("the segment {name} ({}) to exist after the writer exited", path.display()),
            if others.is_empty() {
                "there is no segment".to_string()
            } else {
                format!("only {} exist", others.join(", "))
            },
        )
        .because(
            "the writer must create the segment with shm_open (name from given::ipc_name) and leave it: the reader removes it",
        ));
    }
    let Some(seg) = Segment::open(name)? else {
        return Err(Failure::internal(format!("{name} vanished")));
    };
    let want_len = HEADER_LEN + text.len();
    if seg.len < want_len {
        return Err(Failure::wrong(
            format!("the segment to be at least {want_len} bytes (a {HEADER_LEN}-byte header, then {} bytes of text)", text.len()),
            format!("it is {} bytes", seg.len),
        )
        .because("ftruncate the segment to HEADER_LEN + the data's length before mapping it"));
    }
    let (magic, ready, len) = (
        seg.word(0).load(Ordering::Acquire),
        seg.word(1).load(Ordering::Acquire),
        seg.word(2).load(Ordering::Acquire),
    );
    let data = seg.data();
    if magic != MAGIC {
        let all_zero = magic == 0 && ready == 0 && len == 0 && data.iter().all(|&b| b == 0);
        let failure = Failure::wrong(
            format!("the segment to start with the magic number {MAGIC:#x}"),
            format!("it starts with {magic:#x}"),
        );
        return Err(if all_zero {
            failure.because(
                "the segment is all zeros: nothing the writer wrote reached it. Write through a MAP_SHARED \
                 mapping of the segment's descriptor (a MAP_PRIVATE mapping keeps its writes to itself)",
            )
        } else {
            failure
        });
    }
    if len != text.len() as u64 {
        return Err(Failure::wrong(
            format!(
                "len (offset 16) to be {}, the length of the text",
                text.len()
            ),
            format!("it is {len}"),
        ));
    }
    if let Some(at) = (0..text.len()).find(|&i| data[i] != text.as_bytes()[i]) {
        let end = (at + 16).min(text.len());
        return Err(Failure::wrong(
            format!("the text from offset {HEADER_LEN}, as given to the writer"),
            format!(
                "it differs at byte {at} of the text: `{}` instead of `{}`",
                String::from_utf8_lossy(&data[at..end]),
                &text[at..end]
            ),
        ));
    }
    if ready != READY {
        return Err(Failure::wrong(
            format!("ready (offset 8) to be {READY} once the writer is done"),
            format!("it is {ready}"),
        )
        .because("the writer must store READY in `ready` last, with Ordering::Release, after the magic, the length and the data"));
    }
    Ok(())
}

pub fn reader_waits_then_unlinks(run: &mut Run) -> Outcome {
    let text = random_text(run);
    let (name, path) = segment_name(run);
    let spare = run.rng.random_range(0..500);
    let seg = Segment::create(&name, HEADER_LEN + text.len() + spare)?;
    let mut p = run.spawn("reader", &[])?;
    let waiting = "before the checker wrote anything";
    expect_reader_waits(run, &mut p, &name, waiting)?;

    // The reader sleeps, waiting for ready: fill in the header and the
    // data one after the other, ready last. What the reader reads before
    // ready is 1 is what it would find here: nothing yet.
    seg.word(0).store(MAGIC, Ordering::Relaxed);
    seg.write_data(text.as_bytes());
    seg.word(2).store(text.len() as u64, Ordering::Relaxed);
    seg.word(1).store(READY, Ordering::Release);
    run.activity.touch();

    let lines = texts(run.rest(&mut p, "the reader's line `read N bytes: TEXT`")?);
    expect_clean_exit(run, &mut p, &lines)?;
    expect_message(&lines, &text, "the text the checker wrote")?;
    expect_no_leftover(run, &path)
}

/// The reader must print `read N bytes: TEXT`. A shorter message means
/// it read the length (or the data) before it saw ready = 1.
pub fn expect_message(lines: &[String], text: &str, whose: &str) -> Outcome {
    let wanted = format!("read {} bytes: {text}", text.len());
    if lines.contains(&wanted) {
        return Ok(());
    }
    let failure = Failure::wrong(
        format!("`read {} bytes: ...` with {whose}", text.len()),
        format!("it printed {}", quote_lines(lines)),
    );
    let printed = lines.iter().find_map(|l| {
        l.strip_prefix("read ")?
            .split_once(" bytes")?
            .0
            .parse::<usize>()
            .ok()
    });
    Err(match printed {
        Some(n) if n < text.len() => failure
            .because(format!(
                "the reader took {n} bytes: the length as it was before ready was set. It read \
                 `len` (or the data) before it saw ready = 1; the writer fills them in before \
                 ready, in any order, so they mean nothing until then"
            ))
            .hint("read `len` and copy the data only after the Acquire load of `ready` has returned READY"),
        _ => failure,
    })
}

/// Waits until the reader has mapped the segment `name` and sleeps, and
/// fails if it ends instead (it did not wait for ready) or never sleeps (it
/// waits in a busy loop). `waiting` says what the checker held back.
pub fn expect_reader_waits(run: &Run, p: &mut Proc, name: &str, waiting: &str) -> Outcome {
    let reader = p.pid;
    let bare = name.trim_start_matches('/').to_string();
    let ended = |pid: Pid| procfs::stat(pid).is_none_or(|s| s.is_zombie());
    let too_early = |run: &Run, p: &mut Proc| -> Failure {
        let lines = run
            .rest(p, "the reader to finish")
            .map(texts)
            .unwrap_or_default();
        Failure::wrong(
            "the reader to wait until ready = 1",
            format!("it ended {waiting}, after printing {}", quote_lines(&lines)),
        )
        .because(
            "the reader did not wait for the ready flag: it read the segment as soon as it had \
             mapped it, while ready was still 0",
        )
        .hint(
            "loop until `ready.load(Ordering::Acquire) == READY` (sleeping a little between \
             looks) before reading the length and the data",
        )
    };
    let mapped = run.poll(Duration::from_secs(8), || {
        if procfs::mappings(reader)
            .iter()
            .any(|m| m.path.contains(&bare))
        {
            Some(true)
        } else if ended(reader) {
            Some(false)
        } else {
            None
        }
    });
    match mapped {
        Some(true) => {}
        Some(false) => return Err(too_early(run, p)),
        None => return Err(run.timed_out(&format!("the reader to map {name}"))),
    }
    // Once it has mapped the segment, a reader that waits goes to sleep;
    // one that does not wait reads and ends, without ever sleeping.
    let settled = run.poll(Duration::from_secs(3), || {
        if ended(reader) {
            return Some(false);
        }
        let asleep = procfs::stat(reader).is_some_and(|s| s.state == 'S')
            && procfs::blocked(reader).syscall.is_some();
        asleep.then_some(true)
    });
    if settled == Some(false) {
        return Err(too_early(run, p));
    }
    if let Some((_, spent)) = spinning(run, &[reader], Duration::from_millis(500)) {
        return Err(Failure::wrong(
            "the reader to sleep while it waits for the ready flag",
            described(&spent),
        )
        .because(
            "the reader waits for the ready flag in a busy loop (it looks again and again \
             without pausing): a whole CPU burnt for nothing",
        )
        .hint(
            "sleep between two looks at `ready` (a millisecond is plenty): \
             std::thread::sleep",
        ));
    }
    if ended(reader) {
        return Err(too_early(run, p));
    }
    Ok(())
}

/// Nothing may be left in /dev/shm once the reader is done.
pub fn expect_no_leftover(run: &Run, path: &PathBuf) -> Outcome {
    let left = run.sandbox.ipc_objects();
    if left.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = left.iter().map(|o| o.display().to_string()).collect();
    let failure = Failure::wrong(
        "no segment left in /dev/shm once the reader has exited",
        format!("{} is still there", names.join(", ")),
    );
    Err(if left.contains(path) {
        failure.because(
            "the reader never removed the segment: call shm_unlink once the message is read. A named segment stays, \
             memory and all, until it is unlinked (or the machine reboots), even when no process maps it",
        )
    } else {
        failure
    })
}

pub fn writer_then_reader(run: &mut Run) -> Outcome {
    let text = random_text(run);
    let (name, path) = segment_name(run);
    let mut w = run.spawn("writer", std::slice::from_ref(&text))?;
    let lines = texts(run.rest(&mut w, "the writer to finish")?);
    expect_clean_exit(run, &mut w, &lines)?;
    if !run.sandbox.ipc_objects().contains(&path) {
        return Err(Failure::wrong(
            format!("{name} to exist after the writer exited"),
            "it does not",
        )
        .because(
            "the segment must outlive the writer: the writer does not unlink it, the reader does",
        ));
    }
    let mut r = run.spawn("reader", &[])?;
    let lines = texts(run.rest(&mut r, "the reader's line `read N bytes: TEXT`")?);
    expect_clean_exit(run, &mut r, &lines)?;
    expect_message(&lines, &text, "the writer's text")?;
    expect_no_leftover(run, &path)
}
