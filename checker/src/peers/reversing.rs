//! The unkind clients of the string-reversing server, built once for the
//! three labs that carry it: 03 (FIFOs), 09 (message queues) and 10 (Unix
//! sockets). Each lab implements [`Client`] for its transport (how a
//! request goes out, how a reply comes back, how a client vanishes) and
//! describes it in a [`Transport`]; the scenarios' moves are here:
//!
//! - [`survives_vanishing`]: clients that go away before their reply (a
//!   killed client, a stale request left by a dead one), while the server
//!   is held stopped so that it meets them every time; then a normal
//!   client that must be served;
//! - [`in_two_writes`]: a request that arrives in two writes, a pause
//!   apart, cut at any byte (inside a character too);
//! - [`back_to_back`]: requests sent one after the other before any reply
//!   is read, so that one read returns several and the replies pile up;
//! - [`file_in_the_way`]: a regular file with data where the server's
//!   FIFO or socket is to be made: it must survive, and the server must
//!   say why it cannot start;
//! - [`idle_asleep`]: the CPU a process uses while it waits;
//! - texts with letters of two and three bytes, and what a wrong reply
//!   tells about its cause ([`check_reply`]).

use crate::pid::Pid;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

use crate::diagnose::syscall_name;
use crate::process::{Exit, Proc};
use crate::scenario::{Failure, Outcome, Run};
use crate::stuck;

/// How long the checker waits for what a correct program does in a few
/// milliseconds: generous, for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// One client of a string-reversing server, played by the checker.
pub trait Client {
    /// The client in words: "the checker's client 5012345", "connection 3".
    fn who(&self) -> String;
    /// Sends the request for `text`: whole, or cut at byte `at` of the
    /// request into two writes `pause` apart (streams only; a message
    /// transport sends it whole). `Err` says what went wrong.
    fn send(
        &mut self,
        text: &str,
        split: Option<(usize, Duration)>,
        until: Instant,
    ) -> Result<(), String>;
    /// The next reply, `None` if none came by `until`. Must not block
    /// past `until`.
    fn reply(&mut self, until: Instant) -> Result<Option<String>, String>;
    /// Goes away the way a killed client does, before reading its reply.
    fn vanish(&mut self);
}

/// The words a lab gives for its transport.
pub struct Transport {
    /// What goes wrong when the server answers a client that is gone, or
    /// reads a request that is not one (the lab's `gone` clients do both), as
    /// (a word its error message shows, the cause in words): "ENXIO",
    /// "the reply FIFO has no reader". Only the causes whose word the
    /// server printed are named; all of them if it printed none.
    pub gone: &'static [(&'static str, &'static str)],
    /// For a server blocked in a call after a client vanished: the call's
    /// name, and what it means on this transport.
    pub blocked: &'static [(&'static str, &'static str)],
}

// ---------------------------------------------------------------------
// Texts.

const SYLLABLES: &[&str] = &[
    "a", "bra", "ca", "da", "ño", "pé", "lu", "zü", "mi", "xo", "ça", "te", "ka", "ri", "on", "sé",
    "ver", "tu", "ソ", "ケ",
];

/// A word of two to four syllables, some with letters of two or three
/// bytes in UTF-8.
pub fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(2..=4);
    (0..n)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect()
}

/// Words and spaces, at most `max` bytes and at least `max - 8`, always
/// with a letter of more than one byte.
pub fn text(rng: &mut StdRng, max: usize) -> String {
    let mut s = format!("ñ{}", word(rng));
    loop {
        let w = word(rng);
        if s.len() + 1 + w.len() > max {
            break;
        }
        s.push(' ');
        s.push_str(&w);
    }
    while s.len() < max {
        s.push('z');
    }
    s
}

pub fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

/// Shortens long texts for messages.
pub fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        let head: String = s.chars().take(40).collect();
        format!("{head}... ({} bytes)", s.len())
    }
}

/// Checks that `reply` is the reverse of `text`, and says what a wrong
/// one shows about its cause.
pub fn check_reply(text: &str, reply: &str, who: &str) -> Outcome {
    let wanted = reverse(text);
    if reply == wanted {
        return Ok(());
    }
    let failure = Failure::wrong(
        format!(
            "{who} to get `{}`, the reverse of `{}`",
            clip(&wanted),
            clip(text)
        ),
        format!("it got `{}`", clip(reply)),
    );
    let bytes: Vec<u8> = text.bytes().rev().collect();
    Err(if reply == String::from_utf8_lossy(&bytes) {
        failure
            .because(
                "the text was reversed byte by byte, which tears apart letters like `ñ` that take \
                 two bytes in UTF-8",
            )
            .hint("reverse the characters (`text.chars().rev().collect()`), not the bytes")
    } else if reply == text {
        failure.because("the text came back unchanged: the server must reverse it")
    } else if reply.ends_with(&format!(" {wanted}"))
        || reply.starts_with(&wanted) && reply.len() > wanted.len()
    {
        failure.because(
            "the reply holds more than the reversed text: reverse only the request's text (after \
             the pid and its space, where the protocol has one)",
        )
    } else if reply.contains(' ')
        && text.contains(' ')
        && reply.replace(' ', "") == wanted.replace(' ', "")
    {
        failure.because(
            "the spaces moved: split the request at its first space only, and keep the text whole",
        )
    } else if !reply.is_empty() && wanted.ends_with(reply) {
        failure.because(format!(
            "the reply is the reverse of the request's last {} bytes only: the server answered \
             before the whole request had arrived",
            reply.len()
        ))
    } else {
        failure
    })
}

// ---------------------------------------------------------------------
// Waiting for a reply, and seeing why none came.

/// Sends `text` and waits (at most `within`) for the reply.
pub fn ask(run: &Run, client: &mut dyn Client, text: &str, within: Duration) -> Outcome {
    let until = run.until(within);
    client
        .send(text, None, until)
        .map_err(|e| Failure::wrong(format!("the server to read {}'s request", client.who()), e))?;
    let reply = await_reply(run, client, until, text)?;
    check_reply(text, &reply, &client.who())
}

/// The reply to `text` on `client`, by `until`: fails as soon as every
/// process is stuck, with where each one was.
pub fn await_reply(
    run: &Run,
    client: &mut dyn Client,
    until: Instant,
    text: &str,
) -> Result<String, Failure> {
    let what = format!("the reply to {}'s `{}`", client.who(), clip(text));
    let mut watch = stuck::Watch::new(crate::sandbox::checker_pid(), run.activity.clone());
    loop {
        let step = (Instant::now() + Duration::from_millis(100)).min(until);
        match client.reply(step) {
            Ok(Some(reply)) => return Ok(reply),
            Ok(None) => {}
            Err(e) => return Err(Failure::wrong(what, e)),
        }
        if let Some(still) = watch.stuck() {
            let mut f = Failure::stuck(&what, still);
            f.details = details(run);
            return Err(f);
        }
        if Instant::now() >= until {
            let mut f = run.timed_out(&what);
            f.happened = format!(
                "none came within {:.0} s; where each process was then:",
                PATIENCE.as_secs_f64()
            );
            return Err(f);
        }
    }
}

fn details(run: &Run) -> Vec<String> {
    run.hang_report()
        .into_iter()
        .map(|l| format!("- {l}"))
        .collect()
}

/// The system calls the threads of `pid` are blocked in, by name.
fn blocked_in(pid: Pid) -> Vec<&'static str> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let raw = std::fs::read_to_string(t.path().join("syscall")).ok()?;
            let nr: i64 = raw.split_whitespace().next()?.parse().ok()?;
            syscall_name(nr)
        })
        .collect()
}

/// The first `error: ...` line of `pid`'s stderr, quoted (waiting a
/// moment for the rest of its output once it has exited).
pub fn error_line(run: &Run, pid: Pid) -> Option<String> {
    stderr_line(run, pid, |l| l.starts_with("error"))
}

/// The first line of `pid`'s stderr that `pick` accepts, quoted.
pub fn stderr_line(run: &Run, pid: Pid, pick: impl Fn(&str) -> bool) -> Option<String> {
    let spawned = run.spawned.iter().find(|s| s.pid == pid)?;
    let text = spawned
        .stderr
        .text_at_end(Instant::now() + Duration::from_millis(500));
    let line = text.lines().find(|l| pick(l))?.trim();
    let shown: String = line.chars().take(160).collect();
    let more = if shown.len() < line.len() { "..." } else { "" };
    Some(format!("`{shown}{more}`"))
}

/// If the server has ended, the failure that says so, with what it said.
fn server_ended(run: &Run, server: &mut Proc, after: &str, t: &Transport) -> Option<Failure> {
    let exit = server
        .wait(Instant::now() + Duration::from_millis(50))
        .ok()?;
    let line = stderr_line(run, server.pid, |l| {
        l.starts_with("error") || l.contains("panicked")
    });
    let seen: Vec<&str> = t
        .gone
        .iter()
        .filter(|(word, _)| line.as_deref().is_some_and(|l| l.contains(word)))
        .map(|(_, cause)| *cause)
        .collect();
    let causes = if seen.is_empty() {
        let all: Vec<&str> = t.gone.iter().map(|(_, c)| *c).collect();
        all.join(", or ")
    } else {
        seen.join(", and ")
    };
    let said = line.map(|l| format!(", saying {l}")).unwrap_or_default();
    Some(
        Failure::wrong(
            format!("the server to go on serving {after}"),
            format!("it ended ({exit}){said}"),
        )
        .because(format!(
            "clients went away before their replies (killed, or Ctrl-C) or sent a request that \
             is not one, and the server stopped with them: {causes}. One client's failure must \
             cost that client its reply, never the server"
        ))
        .hint(
            "where the server sends a reply, report a failure on stderr and go on with the next \
             request (`if let Err(e) = ... { eprintln!(...) }`) instead of returning it with `?`",
        ),
    )
}

// ---------------------------------------------------------------------
// The moves.

/// Holds the server stopped while each of `gone` sends a request and
/// vanishes, lets it go on, then expects `next` to be served.
pub fn survives_vanishing(
    run: &mut Run,
    t: &Transport,
    server: &mut Proc,
    gone: &mut [&mut dyn Client],
    next: &mut dyn Client,
) -> Outcome {
    run.stop(server.pid);
    let mut sent = Vec::new();
    let result = (|| {
        for c in gone.iter_mut() {
            let text = word(&mut run.rng);
            c.send(&text, None, run.until(PATIENCE)).map_err(|e| {
                Failure::wrong(format!("the server to take {}'s request", c.who()), e)
            })?;
            sent.push(c.who());
        }
        Ok(())
    })();
    for c in gone.iter_mut() {
        c.vanish();
    }
    run.resume(server.pid);
    result?;
    let after = match sent.as_slice() {
        [one] => format!("after {one} went away"),
        many => format!(
            "after {} clients went away ({})",
            many.len(),
            many.join("; ")
        ),
    };
    let text = word(&mut run.rng);
    match ask(run, next, &text, PATIENCE) {
        Ok(()) => Ok(()),
        Err(f) if f.why.is_some() => Err(f),
        Err(f) => {
            if let Some(ended) = server_ended(run, server, &after, t) {
                return Err(ended);
            }
            let calls = blocked_in(server.pid);
            let cause = t
                .blocked
                .iter()
                .find(|(call, _)| calls.contains(call))
                .map(|(call, why)| (call, why));
            let mut f = f;
            f.expected = format!("{}, {after}", f.expected);
            Err(match cause {
                Some((call, why)) => f
                    .because(format!(
                        "the server is blocked in {call}(): {why}. A client that is gone never \
                         reads, so the server waits forever and serves nobody else"
                    ))
                    .hint("never wait for a client that may be gone: open its reply end and send with O_NONBLOCK, and if that fails, skip that client with a word on stderr"),
                None => f,
            })
        }
    }
}

/// One request in two writes, `pause` apart, cut at a random byte (maybe
/// inside a character): the reply must be the reverse of the whole.
pub fn in_two_writes(run: &mut Run, client: &mut dyn Client, text: &str) -> Outcome {
    let at = run.rng.random_range(1..text.len());
    let pause = Duration::from_millis(run.rng.random_range(150..300));
    client
        .send(text, Some((at, pause)), run.until(PATIENCE))
        .map_err(|e| Failure::wrong(format!("the server to read {}'s request", client.who()), e))?;
    run.activity.touch();
    let reply = await_reply(run, client, run.until(PATIENCE), text)?;
    check_reply(text, &reply, &client.who()).map_err(|f| {
        let f = if f.why.is_some() {
            f
        } else {
            f.because(format!(
                "the request came in two writes {} ms apart (the first ended at byte {at}): one \
                 read() returns what has arrived, not a whole request",
                pause.as_millis()
            ))
        };
        f.hint("read up to the end of the request (its newline) before answering, and keep what comes after it for the next one (a BufReader kept for the whole conversation does both)")
    })
}

/// Sends every text of `texts` before reading any reply, then expects
/// the replies in order. `texts` must be few and short enough that the
/// transport holds them (the lab chooses).
pub fn back_to_back(
    run: &mut Run,
    server: Pid,
    client: &mut dyn Client,
    texts: &[String],
) -> Outcome {
    for text in texts {
        client.send(text, None, run.until(PATIENCE)).map_err(|e| {
            Failure::wrong(format!("the server to read {}'s requests", client.who()), e)
        })?;
    }
    // Before reading a reply, the server must have done all it can: the
    // replies then pile up every time, not only when the checker is slow.
    settle(run, server);
    for (k, text) in texts.iter().enumerate() {
        let reply = await_reply(run, client, run.until(PATIENCE), text).map_err(|f| {
            let sizes: Vec<String> = texts.iter().map(|t| t.len().to_string()).collect();
            if f.why.is_some() {
                return f;
            }
            f.because(format!(
                "{} requests were sent back to back before any reply was read ({} bytes), \
                 and {k} replies came: requests that arrive together must each be answered, \
                 and a reply that finds the way full must wait for room, not be dropped",
                texts.len(),
                sizes.join(", ")
            ))
        })?;
        check_reply(text, &reply, &client.who())?;
    }
    Ok(())
}

/// Polls `probe` every 20 ms until it gives `Some`, `within` passes, or
/// every process has been stuck for a second (then nothing can change).
pub fn poll_unless_stuck<T>(
    run: &Run,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let until = run.until(within);
    let mut watch = stuck::Watch::new(crate::sandbox::checker_pid(), run.activity.clone());
    let mut looked = Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        if looked.elapsed() >= Duration::from_millis(100) {
            looked = Instant::now();
            if watch.stuck().is_some() {
                return None;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most [`PATIENCE`]) until every thread of `pid` sleeps and
/// it reads and writes nothing for 100 ms: it has done all it could.
pub fn settle(run: &Run, pid: Pid) {
    let look = || {
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let asleep = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten().all(|t| {
                    std::fs::read_to_string(t.path().join("stat"))
                        .ok()
                        .and_then(|s| Some(s.get(s.rfind(')')? + 2..)?.starts_with('S')))
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false);
        (io, asleep)
    };
    run.poll(PATIENCE, || {
        let (before, asleep) = look();
        if !asleep {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
        let (after, asleep) = look();
        (asleep && after == before).then_some(())
    });
}

/// Watches `pid` for a while as it waits for `waiting_for`: it must sleep.
pub fn idle_asleep(run: &Run, pid: Pid, who: &str, waiting_for: &str) -> Outcome {
    run.expect_asleep(pid, Duration::from_millis(500), who, waiting_for)
        .map_err(|f| {
            f.hint(format!(
                "let {who} block in the call that waits (a read without O_NONBLOCK, \
                 mq_receive on a blocking queue, accept): the kernel wakes it when something \
                 comes. A loop that tries again at once, or with a time-out of zero, never sleeps"
            ))
        })
}

const KEEP_THE_FILE: &str = "remove the old name only after checking (symlink_metadata) that it is a FIFO or socket, and that nobody uses it; otherwise stop with an error that names the path";

/// Puts a regular file holding every byte value at `path` (the name the
/// server's FIFO or socket should take), starts the server with `start`,
/// and expects it to fail clearly, leaving the file as it was.
pub fn file_in_the_way(
    run: &mut Run,
    path: &std::path::Path,
    start: impl FnOnce(&mut Run) -> Result<Proc, Failure>,
) -> Outcome {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data = crate::traffic::every_byte(&mut run.rng, 100);
    std::fs::write(path, &data).map_err(Failure::internal)?;
    let mut server = start(run)?;
    // Never open what is there now unless it is a regular file: a FIFO
    // the server made in its place would block the read.
    let intact = || {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
            && std::fs::read(path).ok().as_deref() == Some(&data[..])
    };
    let exit = run.exit_within(&mut server, PATIENCE).map_err(|mut f| {
        f.expected = format!("the server to stop with an error: a regular file holds `{name}`");
        if intact() {
            f
        } else {
            f.because(format!(
                "the file `{name}` is gone or changed: the server deleted a file that was not its own"
            ))
            .hint(KEEP_THE_FILE)
        }
    })?;
    if !intact() {
        return Err(Failure::wrong(
            format!("the regular file `{name}`, with its data, to be left alone"),
            format!("once the server had run ({exit}), it was gone or changed"),
        )
        .because(format!(
            "the server removed whatever was at `{name}` to make its own there: a file that is \
             not a FIFO or socket is somebody's data, not something a crashed run left"
        ))
        .hint(KEEP_THE_FILE));
    }
    let said = error_line(run, server.pid);
    match (exit, said) {
        (Exit::Code(c), Some(_)) if c != 0 => Ok(()),
        (exit, said) => Err(Failure::wrong(
            format!(
                "the server to stop with an error that names `{name}` (a non-zero status and \
                 an `error: ...` line): a regular file holds the name"
            ),
            format!(
                "it ended ({exit}), {}",
                said.map_or("printing no error".to_string(), |l| format!("saying {l}"))
            ),
        )),
    }
}
