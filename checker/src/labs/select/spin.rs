//! `spin`: one non-blocking read in a loop.

use std::time::{Duration, Instant};

use rand::Rng;

use super::{LATENCY, O_NONBLOCK, ms, where_is, word};
use crate::process::{Proc, Waited};
use crate::procfs;
use crate::scenario::{Failure, Outcome, Run};

pub(super) fn nonblocking_read(run: &mut Run) -> Outcome {
    let mut p = run.spawn("spin", &[])?;
    let pid = p.pid;

    // The flag is on the open file description of fd 0: /proc shows it.
    let flagged = run.poll(Duration::from_secs(3), || {
        let gone = procfs::stat(pid).is_none_or(|s| s.is_zombie());
        match procfs::fd_flags(pid, 0) {
            Some(f) if f & O_NONBLOCK != 0 => Some(true),
            _ if gone => Some(false),
            _ => None,
        }
    });
    match flagged {
        Some(true) => {}
        Some(false) => {
            let until = (Instant::now() + Duration::from_secs(1)).min(run.deadline);
            if let Ok(Some(line)) = p.next_line(until)
                && line.text.starts_with("eof after")
            {
                return Err(eagain_is_not_eof(
                    "a `read N bytes: ...` line for each chunk the checker writes",
                    &line.text,
                ));
            }
            return Err(Failure::wrong(
                "`spin` to put its stdin in non-blocking mode and read it",
                "it exited before the checker wrote anything",
            ));
        }
        None => {
            return Err(Failure::wrong(
                "fd 0 of `spin` to have the O_NONBLOCK flag",
                format!("after 3 s, /proc/{pid}/fdinfo/0 still shows no O_NONBLOCK"),
            )
            .because("set_nonblocking must read the flags with fcntl(F_GETFL), add O_NONBLOCK, and set them with F_SETFL"));
        }
    }

    let chunks = run.rng.random_range(4..=6);
    for _ in 0..chunks {
        let gap = run.rng.random_range(80..=160);
        run.pause(Duration::from_millis(gap));
        let text = word(run);
        let sent = Instant::now();
        p.write_stdin(text.as_bytes())
            .map_err(|_| spin_gone(run, &mut p))?;
        let mut got = String::new();
        while got.len() < text.len() {
            let wanted = format!("`read {} bytes: \"{text}\"`", text.len());
            let line = match p.next_line((sent + LATENCY).min(run.deadline)) {
                Ok(Some(line)) => line.text,
                Ok(None) => return Err(spin_gone(run, &mut p)),
                Err(Waited::TimedOut) => {
                    return Err(Failure::wrong(
                        format!("{wanted} within {} ms", ms(LATENCY)),
                        format!("nothing in {} ms", ms(sent.elapsed())),
                    )
                    .because(where_is(pid)));
                }
            };
            if line.starts_with("eof after") {
                return Err(eagain_is_not_eof(&wanted, &line));
            }
            let Some(chunk) = line
                .strip_prefix("read ")
                .and_then(|l| l.split_once(" bytes: \""))
                .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest.strip_suffix('"')?)))
                .filter(|(n, chunk)| *n == chunk.len())
                .map(|(_, chunk)| chunk.to_string())
            else {
                return Err(Failure::wrong(wanted, format!("`{line}`")));
            };
            got.push_str(&chunk);
            if !text.starts_with(&got) {
                return Err(Failure::wrong(wanted, format!("`{line}`")));
            }
        }
    }

    p.close_stdin();
    let summary = run
        .line(&mut p, "`eof after R reads, E of them EAGAIN`")?
        .text;
    let counts: Vec<u64> = summary
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (summary.starts_with("eof after"), counts.as_slice()) {
        (true, [reads, empty]) if *empty >= 1 && reads > empty => {}
        (true, [_, 0]) => {
            return Err(Failure::wrong(
                "some reads to find the pipe empty (EAGAIN) while the checker paused",
                format!("`{summary}`"),
            )
            .because("read_some never returned Read::WouldBlock: with O_NONBLOCK set, a read of an empty pipe fails with EAGAIN"));
        }
        _ => {
            return Err(Failure::wrong(
                "`eof after R reads, E of them EAGAIN`",
                format!("`{summary}`"),
            ));
        }
    }
    run.line(&mut p, "the `cpu ...` line")?;
    run.expect_success(&mut p)
}

fn eagain_is_not_eof(wanted: &str, line: &str) -> Failure {
    Failure::wrong(wanted.to_string(), format!("`{line}`")).because(
        "read_some reported end of file while the checker still held the write end open. \
         EAGAIN means \"nothing yet, come back later\"; only a read that returns 0 bytes is the end",
    )
}

/// `spin` closed its output or its stdin early.
fn spin_gone(run: &Run, p: &mut Proc) -> Failure {
    let until = (Instant::now() + Duration::from_secs(1)).min(run.deadline);
    let exit = p
        .wait(until)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| "still running".into());
    Failure::wrong(
        "`spin` to read until the checker closes the pipe",
        format!("it stopped early ({exit})"),
    )
    .because(
        "EAGAIN is not an error and not the end: it means the pipe is empty for now. \
         read_some must turn it into Read::WouldBlock",
    )
}
