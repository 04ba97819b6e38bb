//! `mux` under real traffic: a line longer than any read buffer in one
//! write; then every pipe talking at once, in pieces cut at random bytes
//! with pauses, bursts of lines, long lines, characters of several bytes,
//! one pipe ending with a line that has no newline, and the pipes ending
//! at different times. Each backend in turn.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use super::talk::{Awaited, Talk, fd};
use super::{LATENCY, where_is};
use crate::peers::pipe_peer::unread;
use crate::scenario::{Failure, Outcome, Run, quote_lines};
use crate::traffic::Pieces;

/// How long the checker waits for the next line while the pipes talk.
const NEXT_LINE: Duration = Duration::from_secs(3);

pub(super) fn mux_traffic(run: &mut Run) -> Outcome {
    let mut backends = ["select", "poll", "epoll"];
    backends.shuffle(&mut run.rng);
    for backend in backends {
        shapes(run, backend)?;
    }
    Ok(())
}

const SPICE: &[&str] = &["ñandú", "über", "→", "señal", "日本", "tubería", "€"];

/// A line of about `len` bytes: words, some of several bytes each, tabs.
fn text(run: &mut Run, len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        if !out.is_empty() {
            out.push(if run.rng.random_range(0..8) == 0 {
                '\t'
            } else {
                ' '
            });
        }
        if run.rng.random_range(0..3) == 0 {
            out.push_str(SPICE.choose(&mut run.rng).copied().unwrap_or("é"));
        } else {
            let n = run.rng.random_range(1..=9);
            out.push_str(&crate::traffic::word(&mut run.rng, n));
        }
    }
    out
}

fn shapes(run: &mut Run, backend: &'static str) -> Outcome {
    let n = 3;
    let mut talk = Talk::start(run, backend, n, None)?;

    // A line longer than any read buffer, in one write, while the program
    // sleeps: it takes several reads, and no more data comes to wake it.
    let source = run.rng.random_range(0..n);
    let len = run.rng.random_range(5000..12_000);
    let long = text(run, len);
    talk.texts.push(long.clone());
    run.until_blocked(talk.p.pid, LATENCY);
    let sent = talk.write(run, source, &format!("{long}\n"))?;
    talk.expect(
        run,
        &format!("fd {}: {long}", fd(source)),
        sent,
        Awaited::Line { source },
    )
    .map_err(|mut f| {
        f.expected = format!(
            "the {}-byte line written to fd {} in one write (`{}`), printed within {} ms",
            long.len(),
            fd(source),
            short(&long),
            LATENCY.as_millis()
        );
        left_in_pipe(f, &talk, source, backend)
    })?;

    // Every pipe at once, each in its own thread.
    let mut expected: Vec<Vec<String>> = Vec::new();
    let mut writers = Vec::new();
    let unterminated = run.rng.random_range(0..n);
    for i in 0..n {
        let k = run.rng.random_range(4..=8);
        let mut lines = Vec::new();
        for _ in 0..k {
            let len = if run.rng.random_range(0..4) == 0 {
                run.rng.random_range(1500..9000)
            } else {
                run.rng.random_range(1..60)
            };
            lines.push(text(run, len));
        }
        let mut bytes = crate::traffic::burst(&lines);
        if i == unterminated {
            // The last line has no newline: the pipe ends right after it.
            let tail = text(run, 30);
            bytes.extend_from_slice(tail.as_bytes());
            lines.push(tail);
        }
        talk.texts.extend(lines.iter().cloned());
        expected.push(lines);
        let pause = Duration::from_millis(run.rng.random_range(5..25));
        let pieces = Pieces::random(&mut run.rng, &bytes, 2500, pause);
        let Some(end) = talk.writers[i].take() else {
            return Err(Failure::internal("a pipe closed too early"));
        };
        writers.push(pieces.send_from_thread(end, run.activity.clone()));
    }
    let outcome = follow(run, &mut talk, &expected, unterminated);
    for w in writers {
        let _ = w.join();
    }
    outcome?;
    run.expect_success(&mut talk.p)
}

/// A line that did not come while part of it is still in the pipe, and
/// the program sleeps: it stopped reading before the pipe was empty.
fn left_in_pipe(f: Failure, talk: &Talk, source: usize, backend: &str) -> Failure {
    let left = talk.writers[source].as_ref().and_then(unread).unwrap_or(0);
    let place = where_is(talk.p.pid);
    let asleep = [
        "select()",
        "poll()",
        "epoll_wait()",
        "epoll_pwait()",
        "pselect6()",
        "ppoll()",
    ]
    .iter()
    .any(|c| place.contains(c));
    if left == 0 || !asleep || f.why.as_deref().is_some_and(|w| w.starts_with("busy")) {
        return f;
    }
    let edge = if backend == "epoll" {
        " With EPOLLET (edge-triggered), epoll reports a pipe once when data arrives, not while \
         data is left: the rest waits until more comes. Read until EAGAIN after each event, or \
         leave EPOLLET out"
    } else {
        ""
    };
    f.because(format!(
        "{left} bytes of the line are still in fd {}, and {place}: it read part of what the pipe \
         held and went back to sleep.{edge}",
        fd(source)
    ))
    .hint("After a wake-up, read each ready source until read_some says WouldBlock (edge-triggered), or use level-triggered waiting, which reports the pipe again while data is left.")
}

/// Reads `mux`'s lines until `all done`: each pipe's lines in order, its
/// end of file after them.
fn follow(run: &Run, talk: &mut Talk, expected: &[Vec<String>], unterminated: usize) -> Outcome {
    let mut got: BTreeMap<usize, usize> = BTreeMap::new();
    let mut ended = vec![false; expected.len()];
    let backend = talk.backend;
    loop {
        let line = run
            .line_within(
                &mut talk.p,
                NEXT_LINE,
                &format!("`mux {backend}` to print every line of every pipe"),
            )
            .map_err(|f| missing(f, expected, &got))?
            .text;
        if line == "all done" {
            if ended.iter().all(|e| *e) {
                return Ok(());
            }
            return Err(Failure::wrong(
                "`all done` once every pipe has ended",
                "`all done` before the end of file of some pipes",
            ));
        }
        let Some((gfd, text)) = line.split_once(": ") else {
            return Err(Failure::wrong("`fd N: TEXT`", format!("`{line}`")));
        };
        let Some(i) = gfd
            .strip_prefix("fd ")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(3))
            .filter(|&i| i < expected.len())
        else {
            return Err(Failure::wrong("`fd N: TEXT`", format!("`{line}`")));
        };
        let seen = got.entry(i).or_insert(0);
        let lines = &expected[i];
        if text == "eof" {
            if *seen < lines.len() {
                let lost = &lines[*seen..];
                let f = Failure::wrong(
                    format!(
                        "{} more {} on fd {} before its end of file",
                        lost.len(),
                        if lost.len() == 1 { "line" } else { "lines" },
                        fd(i)
                    ),
                    format!("`fd {}: eof`", fd(i)),
                );
                return Err(if i == unterminated && lost.len() == 1 {
                    f.because(format!(
                        "the last line of fd {} had no newline: the pipe ended right after it, and it was \
                         never reported. At end of file, what the source's Lines still holds is a line",
                        fd(i)
                    ))
                    .hint("On Read::Eof, report `lines[token].finish()` (if it gives a line) before Event::Eof.")
                } else {
                    f
                });
            }
            ended[i] = true;
            continue;
        }
        let Some(wanted) = lines.get(*seen) else {
            return Err(Failure::wrong(
                format!("nothing more on fd {}", fd(i)),
                format!("`{}`", short(&line)),
            ));
        };
        if text != wanted {
            let wanted_line = format!("fd {}: {wanted}", fd(i));
            let mut f = talk.mismatch(&wanted_line, &line, Awaited::Line { source: i });
            f.expected = format!("`{}`", short(&wanted_line));
            f.happened = format!("`{}`", short(&line));
            if f.why.is_none() && text.contains('\u{fffd}') {
                f = f.because(
                    "a character came out as U+FFFD: a read ended inside a character of several bytes, and \
                     the bytes were decoded before the line was complete. Push the raw bytes into the \
                     source's Lines, which decodes whole lines only",
                );
            }
            return Err(f);
        }
        *seen += 1;
    }
}

/// What was still missing when the lines stopped coming.
fn missing(mut f: Failure, expected: &[Vec<String>], got: &BTreeMap<usize, usize>) -> Failure {
    let left: Vec<String> = expected
        .iter()
        .enumerate()
        .filter_map(|(i, lines)| {
            let seen = got.get(&i).copied().unwrap_or(0);
            (seen < lines.len()).then(|| {
                format!(
                    "fd {}: {} of {} lines, next {}",
                    fd(i),
                    seen,
                    lines.len(),
                    quote_lines(&[short(&lines[seen])])
                )
            })
        })
        .collect();
    if !left.is_empty() {
        f.details
            .push(format!("- lines still missing: {}", left.join("; ")));
    }
    f
}

fn short(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 60;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..end], s.len())
}
