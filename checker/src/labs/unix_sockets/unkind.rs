//! The unkind peers over Unix sockets: clients that vanish (before their
//! reply, in the middle of a request, at once), a client still connected
//! through shutdown, a regular file at the socket's path, requests past a
//! page in random pieces and back to back, and waiting measured.

use super::*;
use crate::peers::reversing::{self as rev};
use crate::traffic;

/// Unix sockets, in the words of the shared peers.
static TRANSPORT: rev::Transport = rev::Transport {
    gone: &[
        (
            "Broken pipe",
            "the client closed its end, so writing the reply fails with EPIPE",
        ),
        ("hung up", "a client hung up in the middle of a request"),
        ("reset", "the connection was reset (ECONNRESET)"),
    ],
    blocked: &[],
};

/// What a checker's connection does with a request.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Sends it whole.
    Whole,
    /// Sends its first half only.
    Half,
    /// Sends nothing at all.
    Silent,
    /// Sends a line of every byte value (not UTF-8) instead.
    Garbage,
}

/// One connection of the checker's, as the shared peers drive it.
struct Peer {
    n: usize,
    conn: Option<Conn>,
    mode: Mode,
}

impl Peer {
    fn connect(run: &Run, n: usize, mode: Mode) -> Result<Peer, Failure> {
        Ok(Peer {
            n,
            conn: Some(Conn::connect(run, SOCKET)?),
            mode,
        })
    }

    fn conn(&mut self) -> Result<&mut Conn, String> {
        self.conn
            .as_mut()
            .ok_or_else(|| "the checker closed this connection".to_string())
    }
}

impl rev::Client for Peer {
    fn who(&self) -> String {
        format!("connection {}", self.n)
    }

    fn send(
        &mut self,
        text: &str,
        split: Option<(usize, Duration)>,
        until: Instant,
    ) -> Result<(), String> {
        let bytes = format!("{text}\n").into_bytes();
        let mode = self.mode;
        let conn = self.conn()?;
        match (mode, split) {
            (Mode::Silent, _) => Ok(()),
            (Mode::Garbage, _) => {
                let mut rng = rand::SeedableRng::seed_from_u64(text.len() as u64);
                let mut line = traffic::every_byte(&mut rng, 0);
                line.retain(|&b| b != b'\n');
                line.push(b'\n');
                conn.write(&line, until)
            }
            (Mode::Half, _) => conn.write(&bytes[..bytes.len() / 2], until),
            (Mode::Whole, None) => conn.write(&bytes, until),
            (Mode::Whole, Some((at, pause))) => {
                let at = at.clamp(1, bytes.len() - 1);
                conn.write(&bytes[..at], until)?;
                std::thread::sleep(pause);
                conn.write(&bytes[at..], until)
            }
        }
    }

    fn reply(&mut self, until: Instant) -> Result<Option<String>, String> {
        match self.conn()?.line(until) {
            Got::Line(line) => Ok(Some(line)),
            Got::TimedOut => Ok(None),
            Got::Closed => Err("the server closed the connection without replying".into()),
            Got::Failed(e) => Err(e),
        }
    }

    fn vanish(&mut self) {
        self.conn = None;
    }
}

/// Why the server ended with a status other than 0, from its stderr.
fn ended_badly(run: &Run, server: &Proc, exit: Exit, expected: &str) -> Failure {
    let said = rev::stderr_line(run, server.pid, |l| {
        l.starts_with("error") || l.contains("panicked")
    });
    let all = run
        .spawned
        .iter()
        .find(|s| s.pid == server.pid)
        .map(|s| s.stderr.text())
        .unwrap_or_default();
    let f = Failure::wrong(
        expected.to_string(),
        format!(
            "it ended with {exit}{}",
            said.map(|l| format!(", saying {l}")).unwrap_or_default()
        ),
    );
    let client_error = ["Broken pipe", "hung up", "reset by peer", "os error 32"]
        .iter()
        .find(|w| all.contains(*w));
    match client_error {
        Some(word) if all.contains("panicked") => f
            .because(format!(
                "a thread of the server panicked on the error of a client that went away (its \
                 stderr says `{word}`), and the panic came back when the server stopped: the \
                 scope re-raises a thread's panic when it ends"
            ))
            .hint("in the thread that answers a client, report the client's error (`eprintln!`) and let the thread end; never `unwrap`/`expect` what a client can make fail"),
        Some(word) => f.because(format!(
            "the server stopped on the error of a client that went away (its stderr says \
             `{word}`): one client's failure must cost that client its connection, never the \
             server"
        )),
        None => f,
    }
}

pub(super) fn client_vanishes(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let mut before_reply = Peer::connect(run, 0, Mode::Whole)?;
    let mut mid_request = Peer::connect(run, 1, Mode::Half)?;
    let mut at_once = Peer::connect(run, 2, Mode::Silent)?;
    let mut garbage = Peer::connect(run, 5, Mode::Garbage)?;
    let mut next = Peer::connect(run, 3, Mode::Whole)?;
    rev::survives_vanishing(
        run,
        &TRANSPORT,
        &mut server,
        &mut [
            &mut before_reply,
            &mut mid_request,
            &mut at_once,
            &mut garbage,
        ],
        &mut next,
    )?;
    drop(next);

    // A client still connected (and served) when another sends `end`.
    let mut idle = Peer::connect(run, 4, Mode::Whole)?;
    let text = rev::word(&mut run.rng);
    rev::ask(run, &mut idle, &text, PATIENCE)?;
    let mut ender = Conn::connect(run, SOCKET)?;
    ender
        .write(b"end\n", run.until(PATIENCE))
        .map_err(|e| Failure::wrong("the server to read `end`", e))?;
    let path = run.sandbox.tmp.join(SOCKET);
    let removed = rev::poll_unless_stuck(run, PATIENCE, || {
        (std::fs::symlink_metadata(&path).is_err()).then_some(())
    });
    if removed.is_none() {
        if let Ok(exit) = server.wait(Instant::now()) {
            return Err(ended_badly(
                run,
                &server,
                exit,
                "the server to go on serving the clients still connected after `end`",
            ));
        }
        return Err(Failure::wrong(
            format!("{SOCKET} removed once the server has read `end`, while a client is still connected"),
            format!("{SOCKET} was still there, and the server did nothing more"),
        )
        .because(
            "the server removes its socket file only once every client has hung up: meanwhile \
             new clients still connect to a server that will never accept them",
        )
        .hint("remove the socket file as soon as the server stops accepting (right after the accept loop), then wait for the clients still connected"));
    }
    let text = rev::word(&mut run.rng);
    rev::ask(run, &mut idle, &text, PATIENCE).map_err(|f| {
        f.because("after `end`, a client still connected is still served until it hangs up")
    })?;
    drop(idle);
    drop(ender);
    let expected = "the server to exit with status 0 once the last client hung up";
    match exit_within(
        run,
        &mut server,
        PATIENCE,
        "exit once the last client hung up",
    )? {
        Exit::Code(0) => Ok(()),
        other => Err(ended_badly(run, &server, other, expected)),
    }
}

pub(super) fn waiting_sleeps(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    rev::idle_asleep(run, server.pid, "the server", "a connection")?;
    let mut idle = Peer::connect(run, 0, Mode::Whole)?;
    let text = rev::word(&mut run.rng);
    rev::ask(run, &mut idle, &text, PATIENCE)?;
    rev::idle_asleep(
        run,
        server.pid,
        "the server",
        "a request on a connection that is open and silent",
    )?;
    drop(idle);
    stop_server(run, &mut server)
}

pub(super) fn file_not_ours(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join(SOCKET);
    rev::file_in_the_way(run, &path, |run| {
        run.spawn("revserver", &[SOCKET.to_string()])
    })
}

/// Why a long request of `len` bytes sent in `pieces` got no reply, from
/// what the server said or did.
fn refused(run: &Run, server: Pid, f: Failure, len: usize, pieces: usize) -> Failure {
    if f.why.is_some() {
        return f;
    }
    match rev::stderr_line(run, server, |l| l.contains("long")) {
        Some(line) => f
            .because(format!(
                "the request was {len} bytes (past a page and PIPE_BUF, in {pieces} pieces), \
                 and the server refused it, saying {line}: a request may be up to MAX_MESSAGE \
                 (64 KiB)"
            ))
            .hint("the limit on a request's length is MAX_MESSAGE; a buffer of a page is a read's size, not a request's"),
        None if f.happened.contains("closed") => f.because(format!(
            "the server closed the connection when a request of {len} bytes came (past a page \
             and PIPE_BUF, in {pieces} pieces): it may refuse requests shorter than MAX_MESSAGE \
             (64 KiB), or fail when a request takes many reads"
        )),
        None => f,
    }
}

pub(super) fn long_requests(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let pid = server.pid;
    let mut client = Peer::connect(run, 0, Mode::Whole)?;
    for size in traffic::large_sizes(&mut run.rng) {
        let text = rev::text(&mut run.rng, size);
        let bytes = format!("{text}\n").into_bytes();
        let pieces = traffic::split(&mut run.rng, &bytes, size / 3 + 1);
        let (len, count) = (bytes.len(), pieces.len());
        for piece in &pieces {
            client
                .conn()
                .and_then(|c| c.write(piece, run.until(PATIENCE)))
                .map_err(|e| {
                    let f = Failure::wrong("the server to read a long request", e);
                    refused(run, pid, f, len, count)
                })?;
            run.activity.touch();
            std::thread::sleep(Duration::from_millis(run.rng.random_range(0..20)));
        }
        let reply = rev::await_reply(run, &mut client, run.until(PATIENCE), &text)
            .map_err(|f| refused(run, pid, f, len, count))?;
        rev::check_reply(&text, &reply, "connection 0")?;
    }
    let len = run.rng.random_range(8..200);
    let text = rev::text(&mut run.rng, len);
    rev::in_two_writes(run, &mut client, &text)?;
    let texts: Vec<String> = (0..10)
        .map(|_| {
            let len = run.rng.random_range(1..3000);
            rev::text(&mut run.rng, len)
        })
        .collect();
    rev::back_to_back(run, server.pid, &mut client, &texts)?;
    drop(client);
    endless_line(run)?;
    ask_once(run)?;
    stop_server(run, &mut server)
}

/// The longest request the lab allows (`MAX_MESSAGE`), newline excluded.
const MAX_MESSAGE: usize = 64 * 1024;

/// A line one byte longer than MAX_MESSAGE, with no end: the server must
/// give up on it (and close that connection), not keep reading forever.
fn endless_line(run: &mut Run) -> Outcome {
    let mut conn = Conn::connect(run, SOCKET)?;
    let text = rev::text(&mut run.rng, MAX_MESSAGE + 1);
    for piece in traffic::split(&mut run.rng, text.as_bytes(), 16 * 1024) {
        if conn.write(&piece, run.until(PATIENCE)).is_err() {
            // Closed already: the server gave up on the line.
            return Ok(());
        }
        run.activity.touch();
    }
    let got = rev::poll_unless_stuck(run, PATIENCE, || {
        match conn.line(Instant::now() + Duration::from_millis(20)) {
            Got::TimedOut => None,
            got => Some(got),
        }
    });
    match got.unwrap_or(Got::TimedOut) {
        Got::Closed | Got::Failed(_) => Ok(()),
        Got::Line(line) => Err(Failure::wrong(
            "the server to close a connection whose line passes MAX_MESSAGE (64 KiB) bytes",
            format!("it answered `{}`", rev::clip(&line)),
        )),
        Got::TimedOut => {
            let mut f = run.timed_out(
                "the server to close a connection whose line passes MAX_MESSAGE (64 KiB) bytes",
            );
            f.happened = format!(
                "it kept the connection open after {} bytes without a newline, waiting for more",
                MAX_MESSAGE + 1
            );
            Err(f
                .because(
                    "the server reads a line with no limit: a client that never sends a \
                     newline makes it keep everything in memory, as long as it likes",
                )
                .hint("read a request through `.take(MAX_MESSAGE as u64 + 1)`, and give up on that client when the limit cuts the line"))
        }
    }
}
