//! Races provoked on purpose: the writer held halfway through copying its
//! message (at the given `pause_point("copy")` in `Mapping::write_data`),
//! while the checker looks at the segment and starts a reader.

use crate::pid::Pid;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;

use super::named::{check_segment, expect_message, expect_no_leftover, expect_reader_waits};
use super::segment::*;
use crate::peers::gate::Gate;
use crate::process::{Exit, Proc};
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};
use crate::traffic;

fn ended(pid: Pid) -> bool {
    procfs::stat(pid).is_none_or(|s| s.is_zombie())
}

/// Starts `writer TEXT` with the copy gate open; `Some` once the writer is
/// held halfway through its copy, `None` if it ended without reaching the
/// gate (it copies its data some other way: nothing to hold then).
fn writer_held(run: &mut Run, gate: &mut Gate, text: &str) -> Result<(Proc, bool), Failure> {
    let w = run.spawn("writer", &[text.to_string()])?;
    let writer = w.pid;
    let held = gate.wait_for_one(run, Duration::from_secs(8), || ended(writer));
    match held {
        Some(_) => Ok((w, true)),
        None if ended(writer) => Ok((w, false)),
        None => Err(run.timed_out("the writer to reach Mapping::write_data")),
    }
}

fn ready_too_early(len: usize) -> Failure {
    Failure::wrong(
        "ready = 0 while the writer is still copying the data",
        format!(
            "the checker held the writer halfway through copying its {len} bytes \
             (in Mapping::write_data), and ready was 1 already"
        ),
    )
    .because(
        "the writer set ready before the data was all there: a reader that sees \
         ready = 1 at that moment takes a half-written message",
    )
    .hint(
        "store READY in `ready` last, with Ordering::Release, after the magic, the \
         length and all of the data",
    )
}

pub fn reader_meets_writer_mid_copy(run: &mut Run) -> Outcome {
    // Several pages of text, so that the first half and the second lie on
    // pages of their own.
    let len = traffic::large_sizes(&mut run.rng)[run.rng.random_range(1..3)];
    let text = traffic::text(&mut run.rng, len);
    let (name, path) = segment_name(run);
    let mut gate = Gate::open(run, "copy")?;
    let (mut w, held) = writer_held(run, &mut gate, &text)?;
    let mut r = None;
    if held {
        let seg = Segment::open(&name)?.filter(|s| s.len >= HEADER_LEN);
        if let Some(seg) = seg
            && seg.word(1).load(Ordering::Acquire) == READY
        {
            return Err(ready_too_early(len));
        }
        // A reader that comes now finds the segment half written: it must
        // wait for ready.
        let mut reader = run.spawn("reader", &[])?;
        expect_reader_waits(
            run,
            &mut reader,
            &name,
            "while the writer was held halfway through its copy",
        )?;
        r = Some(reader);
    }
    gate.release_all(run);
    let lines = texts(run.rest(&mut w, "the writer to finish")?);
    expect_clean_exit(run, &mut w, &lines)?;
    let mut r = match r {
        Some(r) => r,
        None => run.spawn("reader", &[])?,
    };
    let lines = texts(run.rest(&mut r, "the reader's line `read N bytes: TEXT`")?);
    expect_clean_exit(run, &mut r, &lines)?;
    expect_message(&lines, &text, "the writer's text")?;
    expect_no_leftover(run, &path)
}

pub fn stale_segment_at_the_name(run: &mut Run) -> Outcome {
    // What a writer that died after publishing (and before any reader
    // came) left: a whole old message, ready = 1.
    let old = random_text(run);
    let text = random_text(run);
    let (name, path) = segment_name(run);
    {
        let seg = Segment::create(&name, HEADER_LEN + old.len())?;
        seg.word(0).store(MAGIC, Ordering::Relaxed);
        seg.word(2).store(old.len() as u64, Ordering::Relaxed);
        seg.write_data(old.as_bytes());
        seg.word(1).store(READY, Ordering::Release);
    }
    let inode = |path: &std::path::Path| std::fs::metadata(path).ok().map(|m| m.ino());
    let old_inode = inode(&path);
    let mut gate = Gate::open(run, "copy")?;
    let (mut w, held) = writer_held(run, &mut gate, &text)?;
    if held {
        let seg = Segment::open(&name)?.filter(|s| s.len >= HEADER_LEN);
        if let Some(seg) = seg
            && seg.word(1).load(Ordering::Acquire) == READY
        {
            if inode(&path) != old_inode {
                return Err(ready_too_early(text.len()));
            }
            return Err(Failure::wrong(
                "ready = 0 while the writer is still copying the data",
                "the checker held the writer halfway through its copy, and ready was 1 in the \
                 very segment (same inode) the old message had left",
            )
            .because(
                "the writer opened the segment an earlier run had left at the name (ready = 1, \
                 a whole old message) and wrote over it: a reader at that moment takes half old, \
                 half new. It reused the object instead of creating a new one",
            )
            .hint(
                "create the segment with O_CREAT | O_EXCL: a leftover then makes shm_open fail \
                 with EEXIST, and the writer reports it instead of writing into it",
            ));
        }
    }
    gate.release_all(run);
    let lines = texts(run.rest(&mut w, "the writer to finish")?);
    match run.wait(&mut w)? {
        // It refused the leftover, with an error (main_with's status 1,
        // not a panic): the old segment must be as it was.
        Exit::Code(c @ 1) => {
            let Some(seg) = Segment::open(&name)? else {
                return Err(Failure::wrong(
                    "a writer that refuses a segment it did not make to leave it alone",
                    format!("it ended with status {c}, and {name} is gone"),
                )
                .because("the writer removed a segment that was not its own"));
            };
            let kept = seg.len >= HEADER_LEN + old.len()
                && seg.word(1).load(Ordering::Acquire) == READY
                && seg.data()[..old.len()] == *old.as_bytes();
            if !kept {
                return Err(Failure::wrong(
                    "a writer that refuses a segment it did not make to leave it alone",
                    format!("it ended with status {c}, and the old message was changed"),
                ));
            }
            Ok(())
        }
        Exit::Code(0) => {
            let _ = lines;
            check_segment(run, &name, &path, &text)
        }
        other => Err(Failure::wrong(
            "the writer to refuse the leftover (an error, status 1) or to replace it",
            format!("it ended with {other}"),
        )),
    }
}
