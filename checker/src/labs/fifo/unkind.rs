//! The unkind peers over FIFOs: clients that vanish before their reply,
//! one that keeps `requests` open through shutdown, names already taken
//! (a regular file, a live server), a request in two writes, replies that
//! pile up past a FIFO's capacity, and waiting measured.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::peers::reversing::{self as rev, PATIENCE};

/// FIFOs, in the words of the shared peers.
static TRANSPORT: rev::Transport = rev::Transport {
    gone: &[
        (
            "ENXIO",
            "its reply FIFO has no reader any more, so a non-blocking open for writing fails \
             with ENXIO",
        ),
        (
            "ENOENT",
            "its reply FIFO was removed, so the open fails with ENOENT",
        ),
        (
            "EPIPE",
            "the reader closed the FIFO, so the write fails with EPIPE",
        ),
        (
            "request",
            "a request came without its client's pid (a client's bug: skip it, with a word on \
             stderr)",
        ),
    ],
    blocked: &[
        (
            "openat",
            "it opens a reply FIFO for writing without O_NONBLOCK, and such an open waits until \
             somebody opens the FIFO for reading: the client that would have is gone",
        ),
        (
            "open",
            "it opens a reply FIFO for writing without O_NONBLOCK, and such an open waits until \
             somebody opens the FIFO for reading: the client that would have is gone",
        ),
    ],
};

/// How a checker's client vanishes.
#[derive(Clone, Copy)]
enum Vanish {
    /// Its ends close (a killed process's do) and the FIFO stays: ENXIO.
    Closes,
    /// Its FIFO is removed too: ENOENT.
    Removes,
    /// Its request has no pid (a client's bug), then it goes like `Removes`.
    Malformed,
}

/// A checker's client, as the shared peers drive it.
struct Peer {
    c: FakeClient,
    gone: Vanish,
}

impl Peer {
    fn new(run: &mut Run, gone: Vanish) -> Result<Peer, Failure> {
        let id = fake_ids(&mut run.rng, 1)[0];
        Ok(Peer {
            c: FakeClient::new(&run.sandbox.tmp, id)?,
            gone,
        })
    }
}

impl rev::Client for Peer {
    fn who(&self) -> String {
        match self.gone {
            Vanish::Malformed => {
                format!("the checker's client {} (no pid in its request)", self.c.id)
            }
            _ => format!("the checker's client {}", self.c.id),
        }
    }

    fn send(
        &mut self,
        text: &str,
        split: Option<(usize, Duration)>,
        until: Instant,
    ) -> Result<(), String> {
        let prefix = match self.gone {
            Vanish::Malformed => String::new(),
            _ => format!("{} ", self.c.id),
        };
        let line = format!("{prefix}{text}\n");
        let bytes = line.as_bytes();
        let result = match split {
            None => send_pieces(&self.c.requests, &[bytes], Duration::ZERO, until),
            Some((at, pause)) => {
                let at = (prefix.len() + at).clamp(1, bytes.len() - 1);
                send_pieces(
                    &self.c.requests,
                    &[&bytes[..at], &bytes[at..]],
                    pause,
                    until,
                )
            }
        };
        result.map_err(|e| match e {
            SendError::NoReader { existed: true } => {
                "`requests` exists, but no process had it open for reading".into()
            }
            SendError::NoReader { existed: false } => {
                "there is no FIFO `requests` in the current directory".into()
            }
            SendError::Failed(why) => why,
        })
    }

    fn reply(&mut self, until: Instant) -> Result<Option<String>, String> {
        self.c.inbox.next_line(until).map_err(|f| f.happened)
    }

    fn vanish(&mut self) {
        let _ = self.c.inbox.deafen();
        if let Vanish::Removes | Vanish::Malformed = self.gone {
            let _ = std::fs::remove_file(&self.c.inbox.path);
        }
    }
}

/// Sends `end` and expects the server to exit 0 soon, then `requests` gone.
fn end_and_clean(run: &Run, server: &mut Proc, id: u32, after: &str) -> Outcome {
    send_line(
        &run.sandbox.tmp.join("requests"),
        &format!("{id} end"),
        run.until(PATIENCE),
    )
    .map_err(|_| run.timed_out("the server to read the request `end`"))?;
    match run.exit_within(server, PATIENCE) {
        Ok(Exit::Code(0)) => {}
        Ok(other) => {
            let said = rev::error_line(run, server.pid)
                .map(|l| format!(", saying {l}"))
                .unwrap_or_default();
            return Err(Failure::wrong(
                format!("the server to exit with status 0 after `end`{after}"),
                format!("it ended with {other}{said}"),
            ));
        }
        Err(f) => {
            return Err(f.because(format!(
                "the server did not stop at `end`{after}: `end` stops it at once, whoever \
                 still has `requests` open (it must not wait for end of file, which never \
                 comes while a client holds the FIFO open)"
            )));
        }
    }
    expect_removed(run)
}

pub(super) fn client_vanishes(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let mut closes = Peer::new(run, Vanish::Closes)?;
    let mut removes = Peer::new(run, Vanish::Removes)?;
    let mut malformed = Peer::new(run, Vanish::Malformed)?;
    let mut next = Peer::new(run, Vanish::Closes)?;
    rev::survives_vanishing(
        run,
        &TRANSPORT,
        &mut server,
        &mut [&mut closes, &mut malformed, &mut removes],
        &mut next,
    )?;
    // A client that keeps `requests` open, idle, while the server stops.
    let idle = OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(run.sandbox.tmp.join("requests"))
        .map_err(|e| Failure::wrong("`requests` to have a reader", e.to_string()))?;
    end_and_clean(
        run,
        &mut server,
        next.c.id,
        ", while another client still had `requests` open for writing",
    )?;
    drop(idle);
    Ok(())
}

pub(super) fn waiting_sleeps(run: &mut Run) -> Outcome {
    // The server, idle with no client at all.
    let mut server = start_server(run)?;
    rev::idle_asleep(run, server.pid, "the server", "a request")?;
    let mut asker = Peer::new(run, Vanish::Closes)?;
    let text = rev::word(&mut run.rng);
    rev::ask(run, &mut asker, &text, PATIENCE)?;
    end_and_clean(run, &mut server, asker.c.id, "")?;

    // The client, waiting for a reply the checker holds back.
    let mut requests = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let (mut client, pid) = start_client(run)?;
    let text = rev::word(&mut run.rng);
    client
        .write_stdin(format!("{text}\n").as_bytes())
        .map_err(|e| Failure::wrong("the client to read its stdin", e.to_string()))?;
    let Some(request) = requests.next_line(run.until(PATIENCE))? else {
        return Err(run.timed_out(&format!("the client's request `{pid} {text}`")));
    };
    if request != format!("{pid} {text}") {
        return Err(Failure::wrong(
            format!("the request `{pid} {text}`"),
            format!("`{}`", rev::clip(&request)),
        ));
    }
    rev::idle_asleep(run, client.pid, "the client", "its reply")?;
    let answer = rev::word(&mut run.rng);
    send_line(
        &run.sandbox.tmp.join(format!("reply-{pid}")),
        &answer,
        run.until(PATIENCE),
    )
    .map_err(|_| run.timed_out(&format!("the client to read its FIFO reply-{pid}")))?;
    let line = run
        .line_within(&mut client, PATIENCE, &format!("`reverse: {answer}`"))?
        .text;
    if line != format!("reverse: {answer}") {
        return Err(Failure::wrong(
            format!("`reverse: {answer}`"),
            format!("`{line}`"),
        ));
    }
    client.close_stdin();
    match run.exit_within(&mut client, PATIENCE)? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "the client to exit with status 0 at the end of its input",
            format!("it ended with {other}"),
        )),
    }
}

const NOT_STALE: &str = "before removing an existing FIFO, open it for writing with O_NONBLOCK: if that succeeds, a live server reads it; stop with an error instead";

pub(super) fn name_taken(run: &mut Run) -> Outcome {
    // A regular file with data, where `requests` is to be made.
    let path = run.sandbox.tmp.join("requests");
    rev::file_in_the_way(run, &path, |run| run.spawn("server", &[]))?;
    std::fs::remove_file(&path).map_err(Failure::internal)?;

    // A live server (the checker) already reads `requests`.
    let mine = Inbox::create(&path)?;
    let inode = std::fs::metadata(&path).map_err(Failure::internal)?.ino();
    let mut second = run.spawn("server", &[])?;
    let still_mine = || {
        std::fs::symlink_metadata(&path)
            .map(|m| m.ino() == inode && m.file_type().is_fifo())
            .unwrap_or(false)
    };
    let exit = run.exit_within(&mut second, PATIENCE).map_err(|mut f| {
        f.expected =
            "the second server to stop with an error: a live server reads `requests`".into();
        if still_mine() {
            f
        } else {
            f.because(
                "the server removed the FIFO `requests` of a live server (the checker reads \
                 it) and made its own: the first server's clients now talk to nobody, and it \
                 never knows",
            )
            .hint(NOT_STALE)
        }
    })?;
    if !still_mine() {
        return Err(Failure::wrong(
            "the FIFO `requests` of the server already running (the checker) to stay as it was",
            format!("once the second server had run ({exit}), it was removed or replaced"),
        )
        .because(
            "the second server removed the FIFO of a live server: a FIFO is stale only if \
             nobody reads it",
        )
        .hint(NOT_STALE));
    }
    let said = rev::error_line(run, second.pid);
    if !matches!(exit, Exit::Code(c) if c != 0) || said.is_none() {
        return Err(Failure::wrong(
            "the second server to stop with an error (a non-zero status and an `error: ...` \
             line): a live server reads `requests`",
            format!(
                "it ended ({exit}){}",
                said.map(|l| format!(", saying {l}")).unwrap_or_default()
            ),
        ));
    }
    drop(mine);
    Ok(())
}

pub(super) fn requests_back_to_back(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let mut client = Peer::new(run, Vanish::Closes)?;
    let n = run.rng.random_range(20..300);
    let text = rev::text(&mut run.rng, n);
    rev::in_two_writes(run, &mut client, &text)?;
    // Twenty requests near PIPE_BUF, none read back until all are sent:
    // the replies (over 64 KiB) fill the client's FIFO, and the server
    // must wait for room.
    let max = max_text(client.c.id);
    let texts: Vec<String> = (0..20)
        .map(|_| {
            let len = run.rng.random_range(max - 300..=max);
            rev::text(&mut run.rng, len)
        })
        .collect();
    rev::back_to_back(run, server.pid, &mut client, &texts).map_err(|f| {
        match rev::stderr_line(run, server.pid, |l| !l.trim().is_empty()) {
            Some(line) if f.hint.is_none() => {
                let mut f = f;
                f.happened = format!("{} (the server's stderr says {line})", f.happened);
                f.hint("a reply FIFO opened with O_NONBLOCK (to see that nobody reads it) must be made blocking again before the write: a full FIFO then makes the server wait for room (EAGAIN otherwise)")
            }
            _ => f,
        }
    })?;
    end_and_clean(run, &mut server, client.c.id, "")
}
