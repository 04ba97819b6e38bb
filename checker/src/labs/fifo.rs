//! Lab 03 — named pipes (FIFOs): the string-reversing server and its client.
//!
//! The checker plays the other end: it is the client of the student's
//! server (it makes its own `reply-ID` FIFOs and sends requests) and the
//! server of the student's client (it makes `requests` and answers). Its own
//! opens never block: read ends are opened with O_NONBLOCK plus a write end
//! of its own, write ends with O_NONBLOCK and retried until the deadline, so
//! a hang of the student's code becomes a report, never a stuck checker.
//! Texts are random, and the checker sometimes answers something other than
//! the reverse, so printing the expected text cannot pass.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use rand::Rng;
use rand::rngs::StdRng;

use crate::labs::Lab;
use crate::process::{Exit, Proc, Waited};
use crate::procfs;
use crate::scenario::{Failure, Fixture, Outcome, Run, Scenario, field_num};

/// PIPE_BUF on Linux: the largest write that stays in one piece.
const PIPE_BUF: usize = 4096;
/// Round trips in the timing scenarios, and the time they may take. A
/// correct program needs about 20 ms for all of them.
const ROUND_TRIPS: usize = 200;
const ROUND_TRIP_BUDGET: Duration = Duration::from_secs(1);

pub static LAB: Lab = Lab {
    number: 3,
    slug: "fifo",
    title: "Named pipes: a server and its clients",
    scenarios: &[
        Scenario {
            name: "server-reverses",
            points: 2,
            limit: Duration::from_secs(10),
            does: "runs `server` and, as two clients with FIFOs of their own, sends it random texts",
            expects: "the FIFO `requests` in the current directory, and each text reversed on the FIFO of the client that asked",
            hints: &[
                "The server makes the FIFO `requests` (mkfifo), then opens it for reading. A plain open for reading waits until a writer comes: open it with O_NONBLOCK, then open a write end of your own, then make the read end blocking again (Listener::open).",
                "A request is one line `PID TEXT`. Split it at the first space only: the text may hold spaces. Reply to `reply-PID` in the same directory with `send`.",
                "Reverse the characters (`text.chars().rev()`), not the bytes: `ñ` and `é` take two bytes each in UTF-8.",
            ],
            max_procs: 8,
            run: server_reverses,
        },
        Scenario {
            name: "client-asks-server",
            points: 2,
            limit: Duration::from_secs(10),
            does: "makes the FIFO `requests` and plays the server: runs `client`, types texts on its stdin and answers each request",
            expects: "a request `PID TEXT` per line typed, with the client's real pid, its reply FIFO `reply-PID` made before it asks, the checker's answer printed, and the reply FIFO removed when the client ends",
            hints: &[
                "Client::connect makes `reply-PID` (your own pid: `std::process::id()`) and listens on it with Listener::open, before any request goes out.",
                "Client::ask sends `PID TEXT` to `requests` with `send`, then `receive`s one line from its own FIFO. Print what the server answered, whatever it is.",
                "Dropping the client removes its FIFO (`impl Drop for Client`): the name belongs to this client alone.",
            ],
            max_procs: 8,
            run: client_asks_server,
        },
        Scenario {
            name: "server-round-trips",
            points: 2,
            limit: Duration::from_secs(10),
            does: "sends the server 200 requests, one after the other, each after the reply to the previous one",
            expects: "all 200 answered correctly in under a second (a correct server needs about 20 ms)",
            hints: &[
                "Nothing in the server needs to wait for time to pass: it blocks in read() until a request comes, and the reply goes to a FIFO only that client reads.",
                "The tutorial's `sleep(2)` kept the server from reading back its own reply from a FIFO used both ways. With a request FIFO and a reply FIFO per client there is nothing to sleep for: take the sleep out.",
            ],
            max_procs: 8,
            run: server_round_trips,
        },
        Scenario {
            name: "client-round-trips",
            points: 2,
            limit: Duration::from_secs(10),
            does: "plays the server and types 200 texts into `client`, answering each request at once",
            expects: "all 200 round trips in under a second (a correct client needs about 20 ms)",
            hints: &[
                "After sending its request, the client reads its own reply FIFO: that read() blocks until the reply is there. No sleep is needed, and a sleep is no synchronisation.",
                "Only this client reads `reply-PID`, so it can never read someone else's reply, nor its own request.",
            ],
            max_procs: 8,
            run: client_round_trips,
        },
        Scenario {
            name: "end-cleans-up",
            points: 2,
            limit: Duration::from_secs(10),
            does: "sends the server a few requests, then `end`",
            expects: "the server to exit with status 0 and to remove its FIFO `requests`",
            hints: &[
                "`end` makes `serve` return; dropping the Server must then remove `requests` (`impl Drop for Server`, `std::fs::remove_file`).",
                "A FIFO is a name in the file system: it outlives the process that made it unless someone removes it.",
            ],
            max_procs: 8,
            run: end_cleans_up,
        },
        Scenario {
            name: "stale-fifo",
            points: 1,
            limit: Duration::from_secs(10),
            does: "leaves a stale FIFO `requests` (as a crashed server would) before it runs `server`",
            expects: "the server to start anyway, answer, and remove `requests` at `end`",
            hints: &[
                "mkfifo fails with EEXIST when the name exists. A killed server leaves its FIFO behind, so the next one must cope.",
                "On EEXIST: if the path is a FIFO and nobody reads it (a non-blocking open for writing fails with ENXIO), it is stale. Remove it and make it again.",
            ],
            max_procs: 8,
            run: stale_fifo,
        },
        Scenario {
            name: "concurrent-clients",
            points: 2,
            limit: Duration::from_secs(15),
            does: "plays six clients at once with long texts (up to PIPE_BUF); first it stops the server while all six send, so their requests wait together in the FIFO",
            expects: "every client to get the reverse of its own text, every time",
            hints: &[
                "One read() returns whatever the FIFO holds: several requests, or a part of one. A request ends at its newline: read up to it and keep the rest for next time (BufReader::read_until).",
                "Each client writes its whole request in one write() of at most PIPE_BUF bytes, so requests never mix. They can still arrive back to back in one read.",
            ],
            max_procs: 8,
            run: concurrent_clients,
        },
        Scenario {
            name: "replies-reach-their-client",
            points: 2,
            limit: Duration::from_secs(15),
            does: "runs `server` and three `client`s at once, plus a request of the checker's own sent first",
            expects: "each client to print the reverse of its own texts, never another client's, and the checker to get its own reply",
            hints: &[
                "A FIFO that several clients read hands each reply to whichever client reads first: the wrong one. Give each client its own reply FIFO, `reply-PID`.",
                "The server finds the client's FIFO from the pid in the request: `given::reply_fifo(dir, pid)`.",
            ],
            max_procs: 12,
            run: replies_reach_their_client,
        },
        Scenario {
            name: "requests-stay-whole",
            points: 1,
            limit: Duration::from_secs(15),
            does: "plays the server for four `client`s typing long texts at once, then types one text too long for PIPE_BUF",
            expects: "every request to arrive whole, and the client to refuse (`refused: ...`) a request longer than PIPE_BUF bytes instead of sending it",
            hints: &[
                "Write each request with ONE write() call: `write!(file, \"{pid} {text}\\n\")` may make several, and another client's bytes can land between them.",
                "Only writes of at most PIPE_BUF (4096) bytes are atomic. `send` must refuse a longer line.",
            ],
            max_procs: 12,
            run: requests_stay_whole,
        },
    ],
    fixtures: &[
        Fixture {
            name: "reverses-bytes",
            caught_by: "server-reverses",
            says: "bytes",
        },
        Fixture {
            name: "client-keeps-fifo",
            caught_by: "client-asks-server",
            says: "still there",
        },
        Fixture {
            name: "server-sleeps",
            caught_by: "server-round-trips",
            says: "slept",
        },
        Fixture {
            name: "client-sleeps",
            caught_by: "client-round-trips",
            says: "slept",
        },
        Fixture {
            name: "server-keeps-fifo",
            caught_by: "end-cleans-up",
            says: "still there",
        },
        Fixture {
            name: "fails-on-stale-fifo",
            caught_by: "stale-fifo",
            says: "stale",
        },
        Fixture {
            name: "one-read-one-request",
            caught_by: "concurrent-clients",
            says: "several requests",
        },
        Fixture {
            name: "shared-reply-fifo",
            caught_by: "replies-reach-their-client",
            says: "another client",
        },
        Fixture {
            name: "no-size-check",
            caught_by: "requests-stay-whole",
            says: "PIPE_BUF",
        },
    ],
    variants: &[],
};

// ---------------------------------------------------------------------------
// The checker's own ends of FIFOs. Nothing here ever blocks past `until`.

/// A FIFO the checker reads: the read end is non-blocking and polled, and
/// the checker holds a write end too, so a read never sees end of file.
struct Inbox {
    path: PathBuf,
    read: File,
    _keep: File,
    pending: Vec<u8>,
}

impl Inbox {
    /// Makes the FIFO at `path` (it must not exist) and opens both ends.
    fn create(path: &Path) -> Result<Inbox, Failure> {
        nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| Failure::internal(format!("mkfifo {}: {e}", path.display())))?;
        let read = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(|e| Failure::internal(format!("opening {}: {e}", path.display())))?;
        // There is a reader (us), so this succeeds at once.
        let keep = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(|e| Failure::internal(format!("opening {}: {e}", path.display())))?;
        Ok(Inbox {
            path: path.to_path_buf(),
            read,
            _keep: keep,
            pending: Vec::new(),
        })
    }

    /// The next line (without its newline), or `None` if none is complete
    /// by `until`.
    fn next_line(&mut self, until: Instant) -> Result<Option<String>, Failure> {
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Ok(Some(
                    String::from_utf8_lossy(&line[..line.len() - 1]).into_owned(),
                ));
            }
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            let wait = (until - now).min(Duration::from_millis(100));
            let ms = u16::try_from(wait.as_millis().max(1)).unwrap_or(100);
            let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Failure::internal(format!("poll: {e}"))),
            }
            let mut buf = [0u8; 8192];
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => {
                    return Err(Failure::internal(format!(
                        "reading {}: {e}",
                        self.path.display()
                    )));
                }
            }
            if self.pending.len() > 1 << 20 {
                return Err(Failure::wrong(
                    format!("lines on {}", name_of(&self.path)),
                    "more than 1 MiB without a newline",
                ));
            }
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why the checker could not write a line to a FIFO.
enum SendError {
    /// Until the deadline, the FIFO did not exist or nobody read it.
    NoReader { existed: bool },
    /// Anything else (the reader went away mid-way...).
    Failed(String),
}

/// Writes `line` and a newline to the FIFO at `path`: waits (up to
/// `until`) for the FIFO to exist and have a reader, without ever blocking.
fn send_line(path: &Path, line: &str, until: Instant) -> Result<(), SendError> {
    let mut existed = false;
    let fifo = loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(Errno::ENXIO as i32) => existed = true,
            Err(e) if e.raw_os_error() == Some(Errno::ENOENT as i32) => {}
            Err(e) => return Err(SendError::Failed(format!("opening it: {e}"))),
        }
        if Instant::now() >= until {
            return Err(SendError::NoReader { existed });
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let bytes = format!("{line}\n").into_bytes();
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(&fifo, &bytes[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                if Instant::now() >= until {
                    return Err(SendError::Failed("the FIFO stayed full".into()));
                }
                let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(50u16));
            }
            Err(Errno::EPIPE) => {
                return Err(SendError::Failed(
                    "its reader closed it while the checker wrote".into(),
                ));
            }
            Err(e) => return Err(SendError::Failed(format!("writing it: {e}"))),
        }
    }
    Ok(())
}

/// A client played by the checker: it has its own FIFO `reply-ID`.
struct FakeClient {
    id: u32,
    requests: PathBuf,
    inbox: Inbox,
}

impl FakeClient {
    fn new(dir: &Path, id: u32) -> Result<FakeClient, Failure> {
        Ok(FakeClient {
            id,
            requests: dir.join("requests"),
            inbox: Inbox::create(&dir.join(format!("reply-{id}")))?,
        })
    }

    /// Sends `ID TEXT` to the server.
    fn send(&self, text: &str, until: Instant) -> Result<(), Stuck> {
        send_line(&self.requests, &format!("{} {text}", self.id), until).map_err(|e| match e {
            SendError::NoReader { existed } => Stuck::NoServer { existed },
            SendError::Failed(why) => Stuck::Broken(format!(
                "the checker could not write its request to `requests`: {why}"
            )),
        })
    }

    /// Sends `text` and waits for the reply.
    fn ask(&mut self, text: &str, until: Instant) -> Result<String, Stuck> {
        self.send(text, until)?;
        self.reply(until)
    }

    fn reply(&mut self, until: Instant) -> Result<String, Stuck> {
        match self.inbox.next_line(until) {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(Stuck::NoReply { id: self.id }),
            Err(f) => Err(Stuck::Broken(f.happened)),
        }
    }
}

/// What went wrong in a conversation with the student's server, turned
/// into a failure by [`stuck`] (which can look at the processes).
#[derive(Debug)]
enum Stuck {
    NoServer { existed: bool },
    NoReply { id: u32 },
    Broken(String),
}

/// The failure for `s`, with the hang report where it helps.
fn stuck(run: &Run, s: Stuck, asked: &str) -> Failure {
    match s {
        Stuck::NoServer { existed } => {
            let happened = if existed {
                "`requests` exists, but no process had it open for reading"
            } else {
                "there is no FIFO `requests` in the current directory"
            };
            let gone = run
                .spawned
                .iter()
                .find(|p| p.name == "server")
                .is_some_and(|p| procfs::stat(p.pid).is_none_or(|s| s.is_zombie()));
            if gone {
                return Failure::wrong(
                    "the server to go on reading requests until `end`",
                    "the server has exited",
                )
                .because(format!("if it stopped at end of file: {EOF_WHY}"));
            }
            let mut f = run.timed_out("the server to read requests on the FIFO `requests`");
            f.happened = happened.to_string();
            f
        }
        Stuck::NoReply { id } => {
            let mut f = run.timed_out(&format!(
                "the reply to `{asked}` on the checker's FIFO reply-{id}"
            ));
            let others = strange_fifos(&run.sandbox.tmp);
            if !others.is_empty() {
                f = f.because(format!(
                    "the server made {}: a reply must go to the FIFO of the client that asked, `reply-PID`, where PID is the number the request starts with",
                    others.join(", ")
                ));
            }
            f
        }
        Stuck::Broken(why) => Failure::wrong("a conversation over FIFOs", why),
    }
}

/// FIFOs in `dir` that are not part of the protocol.
fn strange_fifos(dir: &Path) -> Vec<String> {
    fifos_in(dir)
        .into_iter()
        .filter(|n| n != "requests" && !n.starts_with("reply-"))
        .map(|n| format!("`{n}`"))
        .collect()
}

/// Names of the FIFOs in `dir`.
fn fifos_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_fifo()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// Whether process `pid` has the file at `path` open, for reading.
fn reads(pid: i32, path: &Path) -> bool {
    let target = path.display().to_string();
    procfs::fds(pid)
        .into_iter()
        .any(|(fd, t)| t == target && procfs::fd_access(pid, fd).is_some_and(|a| a != 1))
}

// ---------------------------------------------------------------------------
// Texts.

const SYLLABLES: &[&str] = &[
    "a", "bra", "ca", "da", "ño", "pé", "lu", "zü", "mi", "xo", "ça", "te", "ka", "ri", "on", "sé",
    "ver", "tu",
];

fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(2..=4);
    (0..n)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect()
}

/// One to three words with spaces between them.
fn phrase(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..=3);
    (0..n).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
}

/// A text of at most `max` bytes and at least `max - 8`.
fn long_text(rng: &mut StdRng, max: usize) -> String {
    let mut s = word(rng);
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

/// The longest text a request from `id` can carry: `ID TEXT\n` fits
/// PIPE_BUF.
fn max_text(id: u32) -> usize {
    PIPE_BUF - format!("{id} \n").len()
}

fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

/// Ids for the checker's clients: above any pid Linux gives out, so they
/// never meet a real process's reply FIFO.
fn fake_ids(rng: &mut StdRng, n: usize) -> Vec<u32> {
    let mut ids = BTreeSet::new();
    while ids.len() < n {
        ids.insert(rng.random_range(5_000_000..9_000_000));
    }
    let mut ids: Vec<u32> = ids.into_iter().collect();
    // Not in order: a server must not count on it.
    ids.reverse();
    ids
}

/// Explains a wrong reply to `text`.
fn wrong_reply(text: &str, reply: &str, who: &str) -> Failure {
    let wanted = reverse(text);
    let failure = Failure::wrong(
        format!(
            "{who} to get `{}`, the reverse of `{}`",
            clip(&wanted),
            clip(text)
        ),
        format!("it got `{}`", clip(reply)),
    );
    let bytes: Vec<u8> = text.bytes().rev().collect();
    if reply == String::from_utf8_lossy(&bytes) {
        failure.because(
            "the text was reversed byte by byte, which tears apart letters like `ñ` that take two bytes in UTF-8: reverse the characters (`chars().rev()`) instead of the bytes",
        )
    } else if reply == text {
        failure.because("the text came back unchanged: the server must reverse it")
    } else if reply.ends_with(&format!(" {wanted}"))
        || reply.starts_with(&wanted) && reply.len() > wanted.len()
    {
        failure.because("the reply holds more than the reversed text: a request is `PID TEXT`; reverse only TEXT, after the first space")
    } else if reply.contains(' ')
        && text.contains(' ')
        && reply.replace(' ', "") == wanted.replace(' ', "")
    {
        failure.because(
            "the spaces moved: split the request at its first space only, and keep the text whole",
        )
    } else {
        failure
    }
}

/// Shortens long texts for messages.
fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        let head: String = s.chars().take(40).collect();
        format!("{head}... ({} bytes)", s.len())
    }
}

// ---------------------------------------------------------------------------
// Starting the student's programs.

/// Whether process `pid` has exited (or is a zombie).
fn has_exited(pid: i32) -> bool {
    procfs::stat(pid).is_none_or(|s| s.is_zombie())
}

/// The first `error: ...` line `name` wrote on stderr, quoted.
fn error_line(run: &Run, pid: i32) -> Option<String> {
    let spawned = run.spawned.iter().find(|s| s.pid == pid)?;
    let text = spawned.stderr.text();
    let line = text.lines().find(|l| l.starts_with("error:"))?;
    Some(format!("`{}`", clip(line)))
}

const EOF_WHY: &str = "read() on a FIFO returns end of file whenever no process has it open for writing: before the first writer comes, and each time the last one closes it. Keep a write end of your own open (Listener::open), and read() waits for data instead";

/// How long a program may take to print its `ready` line: making a FIFO
/// and opening it take a few milliseconds.
const READY_WITHIN: Duration = Duration::from_secs(4);

/// The program's first line, its `ready` line. A program stuck opening a
/// FIFO is told so.
fn ready_line(run: &Run, proc: &mut Proc, what: &str) -> Result<String, Failure> {
    let until = (Instant::now() + READY_WITHIN).min(run.deadline);
    match proc.next_line(until) {
        Ok(Some(line)) => Ok(line.text),
        Ok(None) => Err(Failure::wrong(
            what.to_string(),
            format!("{} closed its output before printing it", proc.name),
        )),
        Err(Waited::TimedOut) => {
            let f = run.timed_out(what);
            let wchan = procfs::blocked(proc.pid).wchan.unwrap_or_default();
            Err(
                if wchan.contains("wait_for_partner") || wchan.contains("fifo_open") {
                    f.because(format!(
                    "the {} is stuck opening a FIFO: a plain open for reading waits until some process opens the FIFO for writing, and the other way round. Open the read end with O_NONBLOCK, then a write end of your own (Listener::open)",
                    proc.name
                ))
                } else {
                    f
                },
            )
        }
    }
}

/// Runs `server` and waits for `server pid=P ready`, then checks that it
/// really reads the FIFO `requests`.
fn start_server(run: &mut Run) -> Result<Proc, Failure> {
    let mut server = run.spawn("server", &[])?;
    let line = ready_line(run, &mut server, "the server's line `server pid=P ready`")?;
    if field_num(&line, "pid") != Some(server.pid as i64) || !line.ends_with("ready") {
        return Err(Failure::wrong(
            format!("`server pid={} ready`", server.pid),
            format!("`{line}`"),
        ));
    }
    let path = run.sandbox.tmp.join("requests");
    // Give a server that stops at once the time to do so.
    std::thread::sleep(Duration::from_millis(20));
    if has_exited(server.pid) {
        let said = error_line(run, server.pid).unwrap_or_else(|| "without an error".into());
        return Err(Failure::wrong(
            "the server to wait for requests once it is ready",
            format!("it exited at once, {said}"),
        )
        .because(format!("if it met end of file: {EOF_WHY}")));
    }
    if !is_fifo(&path) {
        return Err(Failure::wrong(
            "a FIFO named `requests` in the server's current directory once it is ready",
            if path.exists() {
                "`requests` is there but it is not a FIFO".to_string()
            } else {
                format!("the directory holds {:?}", fifos_in(&run.sandbox.tmp))
            },
        )
        .because(
            "make it with mkfifo (nix::unistd::mkfifo), in the directory Server::open is given",
        ));
    }
    if !reads(server.pid, &path) {
        return Err(Failure::wrong(
            "the server to have `requests` open for reading once it is ready",
            "it does not have it open",
        ));
    }
    Ok(server)
}

/// Runs `client` and waits for `client pid=P ready`; checks its FIFO.
fn start_client(run: &mut Run) -> Result<(Proc, u32), Failure> {
    let (client, pid) = start_client_any_fifo(run)?;
    let path = run.sandbox.tmp.join(format!("reply-{pid}"));
    if !is_fifo(&path) {
        return Err(Failure::wrong(
            format!("the client's FIFO `reply-{pid}` (its own pid) once it is ready"),
            format!("the directory holds the FIFOs {:?}", fifos_in(&run.sandbox.tmp)),
        )
        .because("Client::connect makes the reply FIFO, named after the client's own pid, before the first request"));
    }
    if !reads(client.pid, &path) {
        return Err(Failure::wrong(
            format!("the client to have `reply-{pid}` open for reading once it is ready"),
            "it does not have it open",
        )
        .because("listen on the reply FIFO (Listener::open) in Client::connect, before any request goes out: then the server's reply always finds its reader"));
    }
    Ok((client, pid))
}

/// Runs `client` and waits for `client pid=P ready`, whatever FIFOs it uses.
fn start_client_any_fifo(run: &mut Run) -> Result<(Proc, u32), Failure> {
    let mut client = run.spawn("client", &[])?;
    let line = ready_line(run, &mut client, "the client's line `client pid=P ready`")?;
    if field_num(&line, "pid") != Some(client.pid as i64) || !line.ends_with("ready") {
        return Err(Failure::wrong(
            format!("`client pid={} ready`", client.pid),
            format!("`{line}`"),
        ));
    }
    let pid = client.pid as u32;
    Ok((client, pid))
}

/// Sends `end` as the checker's client `id` and waits for the server to
/// exit with status 0.
fn stop_server(run: &Run, server: &mut Proc, id: u32) -> Outcome {
    send_line(
        &run.sandbox.tmp.join("requests"),
        &format!("{id} end"),
        run.deadline,
    )
    .map_err(|_| run.timed_out("the server to read the request `end`"))?;
    match server.wait(run.deadline) {
        Ok(Exit::Code(0)) => Ok(()),
        Ok(other) => Err(Failure::wrong(
            "the server to exit with status 0 after `end`",
            format!("it ended with {other}"),
        )),
        Err(_) => Err(run
            .timed_out("the server to exit after the request `end`")
            .because("`serve` must return when a request's text is `end`")),
    }
}

/// `requests` is gone once the server has exited.
fn expect_removed(run: &Run) -> Outcome {
    let path = run.sandbox.tmp.join("requests");
    if path.exists() {
        return Err(Failure::wrong(
            "no `requests` left once the server has exited",
            "`requests` is still there",
        )
        .because("the server must remove its FIFO when it stops (impl Drop for Server, std::fs::remove_file): a FIFO is a name in the file system and outlives the process that made it"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The scenarios.

fn server_reverses(run: &mut Run) -> Outcome {
    let _server = start_server(run)?;
    let ids = fake_ids(&mut run.rng, 2);
    let mut clients = [
        FakeClient::new(&run.sandbox.tmp, ids[0])?,
        FakeClient::new(&run.sandbox.tmp, ids[1])?,
    ];
    for i in 0..6 {
        // The first text always holds a letter that takes two bytes.
        let text = if i == 0 {
            format!("{}ño{}", word(&mut run.rng), word(&mut run.rng))
        } else {
            phrase(&mut run.rng)
        };
        let client = &mut clients[i % 2];
        let reply = client
            .ask(&text, run.deadline)
            .map_err(|s| stuck(run, s, &text))?;
        if reply != reverse(&text) {
            return Err(wrong_reply(&text, &reply, &format!("client {}", client.id)));
        }
    }
    Ok(())
}

fn client_asks_server(run: &mut Run) -> Outcome {
    let mut server = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let (mut client, pid) = start_client(run)?;
    let reply_path = run.sandbox.tmp.join(format!("reply-{pid}"));
    for _ in 0..3 {
        let text = phrase(&mut run.rng);
        client
            .write_stdin(format!("{text}\n").as_bytes())
            .map_err(|e| {
                Failure::wrong(
                    "the client to read its stdin",
                    format!("writing to it failed: {e}"),
                )
            })?;
        let Some(request) = server.next_line(run.deadline)? else {
            return Err(run.timed_out(&format!(
                "the client's request `{pid} {text}` on `requests`"
            )));
        };
        if request != format!("{pid} {text}") {
            let f = Failure::wrong(
                format!("the request `{pid} {text}`"),
                format!("`{}`", clip(&request)),
            );
            return Err(if request == text {
                f.because("a request starts with the client's pid and a space: the server finds the reply FIFO `reply-PID` from it")
            } else {
                f
            });
        }
        // Answer something the client cannot compute itself.
        let answer = reverse(&phrase(&mut run.rng));
        match send_line(&reply_path, &answer, run.deadline) {
            Ok(()) => {}
            Err(SendError::NoReader { .. }) => {
                return Err(run
                    .timed_out(&format!("the client to read its FIFO reply-{pid}"))
                    .because(
                        "after sending its request, the client must read its own reply FIFO",
                    ));
            }
            Err(SendError::Failed(why)) => {
                return Err(Failure::wrong(
                    format!("the client to read its reply on reply-{pid}"),
                    why,
                ));
            }
        }
        let line = run.line(&mut client, &format!("`reverse: {answer}`"))?.text;
        if line != format!("reverse: {answer}") {
            let f = Failure::wrong(
                format!("the client to print the server's answer, `reverse: {answer}`"),
                format!("`{line}`"),
            );
            return Err(if line == format!("reverse: {}", reverse(&text)) {
                f.because("the client printed a reverse it made itself: it must print what the server answered")
            } else if line.contains("end of file") {
                f.because(format!(
                    "the client met end of file on its reply FIFO: {EOF_WHY}"
                ))
            } else {
                f
            });
        }
    }
    client.close_stdin();
    run.expect_success(&mut client)?;
    if reply_path.exists() {
        return Err(Failure::wrong(
            format!("no `reply-{pid}` once the client has exited"),
            format!("`reply-{pid}` is still there"),
        )
        .because("the client must remove its reply FIFO when it ends (impl Drop for Client)"));
    }
    drop(server);
    Ok(())
}

/// Why a program is slow, from where it is right now.
fn sleeping(pid: i32) -> Option<&'static str> {
    let b = procfs::blocked(pid);
    let (nr, _) = b.syscall?;
    crate::diagnose::syscall_name(nr).filter(|n| matches!(*n, "nanosleep" | "clock_nanosleep"))
}

fn too_slow(done: usize, took: Duration, who: &str, pid: i32) -> Failure {
    let f = Failure::wrong(
        format!(
            "{ROUND_TRIPS} round trips in under {} ms (a correct {who} needs about 20 ms)",
            ROUND_TRIP_BUDGET.as_millis()
        ),
        format!(
            "after {} ms, {done} of the {ROUND_TRIPS} round trips were done",
            took.as_millis()
        ),
    );
    match sleeping(pid) {
        Some(call) => f.because(format!(
            "the {who} slept: the checker found it in {call}(). A sleep is not synchronisation: with a FIFO for requests and a FIFO for each client's replies, read() waits exactly as long as needed. Take the sleep out"
        )),
        None => f.because(format!("each round trip took the {who} far too long: does it wait for something other than the FIFO?")),
    }
}

fn server_round_trips(run: &mut Run) -> Outcome {
    let server = start_server(run)?;
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut client = FakeClient::new(&run.sandbox.tmp, id)?;
    let texts: Vec<String> = (0..ROUND_TRIPS).map(|_| word(&mut run.rng)).collect();
    let began = Instant::now();
    let budget = (began + ROUND_TRIP_BUDGET).min(run.deadline);
    for (done, text) in texts.iter().enumerate() {
        match client.ask(text, budget) {
            Ok(reply) if reply == reverse(text) => {}
            Ok(reply) => return Err(wrong_reply(text, &reply, "the checker")),
            Err(Stuck::NoReply { .. } | Stuck::NoServer { existed: true }) => {
                return Err(too_slow(done, began.elapsed(), "server", server.pid));
            }
            Err(s) => return Err(stuck(run, s, text)),
        }
    }
    Ok(())
}

fn client_round_trips(run: &mut Run) -> Outcome {
    let mut server = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let (mut client, pid) = start_client(run)?;
    let reply_path = run.sandbox.tmp.join(format!("reply-{pid}"));
    let texts: Vec<String> = (0..ROUND_TRIPS).map(|_| word(&mut run.rng)).collect();
    let typed: String = texts.iter().map(|t| format!("{t}\n")).collect();
    let began = Instant::now();
    client.write_stdin(typed.as_bytes()).map_err(|e| {
        Failure::wrong(
            "the client to read its stdin",
            format!("writing to it failed: {e}"),
        )
    })?;
    let budget = (began + ROUND_TRIP_BUDGET).min(run.deadline);
    for (done, text) in texts.iter().enumerate() {
        let Some(request) = server.next_line(budget)? else {
            return Err(too_slow(done, began.elapsed(), "client", client.pid));
        };
        if request != format!("{pid} {text}") {
            return Err(Failure::wrong(
                format!("the request `{pid} {text}`"),
                format!("`{}`", clip(&request)),
            ));
        }
        match send_line(&reply_path, &reverse(text), budget) {
            Ok(()) => {}
            Err(SendError::NoReader { .. }) => {
                return Err(too_slow(done, began.elapsed(), "client", client.pid));
            }
            Err(SendError::Failed(why)) => {
                return Err(Failure::wrong(
                    format!("the client to read reply-{pid}"),
                    why,
                ));
            }
        }
    }
    for text in &texts {
        let line = run
            .line(&mut client, "a `reverse: ...` line per text")?
            .text;
        if line != format!("reverse: {}", reverse(text)) {
            return Err(Failure::wrong(
                format!("`reverse: {}`", reverse(text)),
                format!("`{line}`"),
            ));
        }
    }
    client.close_stdin();
    run.expect_success(&mut client)
}

fn end_cleans_up(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut client = FakeClient::new(&run.sandbox.tmp, id)?;
    for _ in 0..2 {
        let text = phrase(&mut run.rng);
        let reply = client
            .ask(&text, run.deadline)
            .map_err(|s| stuck(run, s, &text))?;
        if reply != reverse(&text) {
            return Err(wrong_reply(&text, &reply, "the checker"));
        }
    }
    stop_server(run, &mut server, id)?;
    expect_removed(run)?;
    drop(client);
    let left = fifos_in(&run.sandbox.tmp);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no FIFO left once the server has exited",
            format!("the directory still holds {left:?}"),
        ));
    }
    Ok(())
}

fn stale_fifo(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join("requests");
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| Failure::internal(format!("mkfifo: {e}")))?;
    let mut server = match start_server(run) {
        Ok(server) => server,
        Err(f) if f.happened.contains("closed its output") => {
            let said = run
                .spawned
                .first()
                .map(|s| s.stderr.text())
                .unwrap_or_default();
            if said.contains(" panicked at ") {
                // The runner explains panics and todo!()s itself.
                return Err(f);
            }
            let exists = said.contains("exists") || said.contains("EEXIST");
            let error = said.lines().find(|l| l.starts_with("error:"));
            let f = Failure::wrong(
                "the server to start although a stale FIFO `requests` was left from an earlier run",
                match error {
                    Some(line) => format!("it exited: `{}`", clip(line)),
                    None => "it exited before `ready`".to_string(),
                },
            );
            return Err(f.because(if exists {
                "mkfifo failed with EEXIST because the stale FIFO of a crashed run was still there. A FIFO that exists and that nobody reads is stale: remove it and make it again"
            } else {
                "a server killed before it could clean up leaves its FIFO behind (stale); the next server must start anyway"
            }));
        }
        Err(f) => return Err(f),
    };
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut client = FakeClient::new(&run.sandbox.tmp, id)?;
    let text = phrase(&mut run.rng);
    let reply = client
        .ask(&text, run.deadline)
        .map_err(|s| stuck(run, s, &text))?;
    if reply != reverse(&text) {
        return Err(wrong_reply(&text, &reply, "the checker"));
    }
    stop_server(run, &mut server, id)?;
    expect_removed(run)
}

/// Resumes a stopped process group when dropped, whatever happened.
struct Stopped(i32);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

fn concurrent_clients(run: &mut Run) -> Outcome {
    let server = start_server(run)?;
    let n = 6;
    let ids = fake_ids(&mut run.rng, n);
    let mut clients: Vec<FakeClient> = ids
        .iter()
        .map(|&id| FakeClient::new(&run.sandbox.tmp, id))
        .collect::<Result<_, _>>()?;

    // Round 1: the server is stopped while every client sends, so the
    // requests wait in the FIFO together and one read() sees several.
    let texts: Vec<String> = clients
        .iter()
        .map(|c| {
            let max = max_text(c.id);
            let len = run.rng.random_range(max / 3..=max);
            long_text(&mut run.rng, len)
        })
        .collect();
    {
        killpg(Pid::from_raw(server.pid), Signal::SIGSTOP)
            .map_err(|e| Failure::internal(format!("SIGSTOP: {e}")))?;
        let _resume = Stopped(server.pid);
        let stopped = run.poll(Duration::from_secs(2), || {
            procfs::stat(server.pid)
                .filter(|s| matches!(s.state, 'T' | 't'))
                .map(|_| ())
        });
        if stopped.is_none() {
            if has_exited(server.pid) {
                return Err(Failure::wrong(
                    "the server to wait for requests",
                    "it has exited",
                ));
            }
            return Err(Failure::internal("the server did not stop on SIGSTOP"));
        }
        for (c, text) in clients.iter().zip(&texts) {
            c.send(text, run.deadline)
                .map_err(|s| stuck(run, s, text))?;
        }
    }
    let patience = (Instant::now() + Duration::from_secs(5)).min(run.deadline);
    for (c, text) in clients.iter_mut().zip(&texts) {
        let together = "six requests were waiting in the FIFO together, so one read() returned several requests (and part of the next): a request ends at its newline, so read up to it and keep the rest for the next request (BufReader::read_until)";
        match c.reply(patience) {
            Ok(reply) if reply == reverse(text) => {}
            Ok(reply) => {
                return Err(
                    wrong_reply(text, &reply, &format!("client {}", c.id)).because(together)
                );
            }
            Err(Stuck::NoReply { id }) => {
                let mut f = run.timed_out(&format!(
                    "the reply to client {id}'s request of {} bytes",
                    text.len()
                ));
                f.why = Some(together.to_string());
                return Err(f);
            }
            Err(s) => return Err(stuck(run, s, text)),
        }
    }

    // Round 2: all six at once, each in a thread of its own, ten requests each.
    let deadline = run.deadline;
    let mut plans: Vec<(FakeClient, Vec<String>)> = Vec::new();
    for c in clients {
        let max = max_text(c.id);
        let texts: Vec<String> = (0..10)
            .map(|_| {
                if run.rng.random_bool(0.5) {
                    phrase(&mut run.rng)
                } else {
                    let len = run.rng.random_range(1..=max);
                    long_text(&mut run.rng, len)
                }
            })
            .collect();
        plans.push((c, texts));
    }
    let handles: Vec<_> = plans
        .into_iter()
        .map(|(mut c, texts)| {
            std::thread::spawn(move || -> Result<(), (Stuck, String, Option<String>)> {
                for text in texts {
                    match c.ask(&text, deadline) {
                        Ok(reply) if reply == reverse(&text) => {}
                        Ok(reply) => return Err((Stuck::Broken(String::new()), text, Some(reply))),
                        Err(s) => return Err((s, text, None)),
                    }
                }
                Ok(())
            })
        })
        .collect();
    let mut first_problem = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => {
                first_problem.get_or_insert(problem);
            }
            Err(_) => return Err(Failure::internal("a client thread panicked")),
        }
    }
    match first_problem {
        None => Ok(()),
        Some((_, text, Some(reply))) => Err(wrong_reply(&text, &reply, "a client")),
        Some((s, text, None)) => Err(stuck(run, s, &text)),
    }
}

fn replies_reach_their_client(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    // Only the behaviour counts here, not the FIFOs' names: the server and
    // the clients are both the student's.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(start_client_any_fifo(run)?);
    }
    // The checker's own request goes first, while every client is idle.
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut own = FakeClient::new(&run.sandbox.tmp, id)?;
    let own_text = phrase(&mut run.rng);
    own.send(&own_text, run.deadline)
        .map_err(|s| stuck(run, s, &own_text))?;
    let own_reply = own
        .reply((Instant::now() + Duration::from_millis(1500)).min(run.deadline))
        .ok();

    let mut asked: Vec<(String, String)> =
        vec![(format!("the checker's client {id}"), own_text.clone())];
    for round in 0..3 {
        let texts: Vec<String> = clients
            .iter()
            .enumerate()
            .map(|(i, _)| format!("{}{round}{i}", phrase(&mut run.rng)))
            .collect();
        // Type into all three before reading any answer: they ask at once.
        for ((client, _), text) in clients.iter_mut().zip(&texts) {
            client
                .write_stdin(format!("{text}\n").as_bytes())
                .map_err(|e| {
                    Failure::wrong(
                        "the client to read its stdin",
                        format!("writing to it failed: {e}"),
                    )
                })?;
        }
        for ((_, pid), text) in clients.iter().zip(&texts) {
            asked.push((format!("client {pid}"), text.clone()));
        }
        for ((client, pid), text) in clients.iter_mut().zip(&texts) {
            let line = run
                .line(
                    client,
                    &format!("client {pid} to print `reverse: {}`", reverse(text)),
                )?
                .text;
            if line == format!("reverse: {}", reverse(text)) {
                continue;
            }
            let mut f = Failure::wrong(
                format!("client {pid} to print `reverse: {}`", reverse(text)),
                format!("it printed `{line}`"),
            );
            if let Some((whose, _)) = asked
                .iter()
                .find(|(_, t)| t != text && line == format!("reverse: {}", reverse(t)))
            {
                f.happened = format!("it printed `{line}`: the reply to {whose}");
                f = f.because(format!(
                    "client {pid} read the reply meant for another client: replies went to a FIFO that several clients read, and whoever reads first takes the reply. Each client needs its own reply FIFO, `reply-PID`"
                ));
            }
            return Err(f);
        }
    }
    // On a busy machine the reply may come late: it is in the FIFO then.
    let own_reply = match own_reply {
        Some(reply) => Some(reply),
        None => own.reply(run.deadline).ok(),
    };
    match own_reply {
        Some(reply) if reply == reverse(&own_text) => {}
        Some(reply) => return Err(wrong_reply(&own_text, &reply, "the checker")),
        None => {
            return Err(Failure::wrong(
                format!("the reply to the checker's request on its own FIFO reply-{id}"),
                "no reply came there",
            ));
        }
    }

    // `end` from one client stops the server; the others just leave.
    let (first, pid) = &mut clients[0];
    first.write_stdin(b"end\n").map_err(|e| {
        Failure::wrong(
            "the client to read its stdin",
            format!("writing to it failed: {e}"),
        )
    })?;
    let line = run.line(first, "`client pid=P stopped the server`")?.text;
    if !line.contains("stopped the server") {
        return Err(Failure::wrong(
            format!("client {pid} to print `client pid={pid} stopped the server`"),
            format!("`{line}`"),
        ));
    }
    match run.wait(&mut server)? {
        Exit::Code(0) => {}
        other => {
            return Err(Failure::wrong(
                "the server to exit with status 0 after `end`",
                format!("it ended with {other}"),
            ));
        }
    }
    expect_removed(run)?;
    for (client, pid) in &mut clients {
        client.close_stdin();
        run.expect_success(client)?;
        if run.sandbox.tmp.join(format!("reply-{pid}")).exists() {
            return Err(Failure::wrong(
                format!("no `reply-{pid}` once client {pid} has exited"),
                format!("`reply-{pid}` is still there"),
            )
            .because("the client must remove its reply FIFO when it ends (impl Drop for Client)"));
        }
    }
    Ok(())
}

fn requests_stay_whole(run: &mut Run) -> Outcome {
    let mut server = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(start_client(run)?);
    }
    // Four long texts per client, typed at once: the clients send while
    // the others send too.
    let mut todo: Vec<Vec<String>> = Vec::new();
    for (client, pid) in &mut clients {
        let max = max_text(*pid);
        let texts: Vec<String> = (0..4)
            .map(|_| {
                let len = run.rng.random_range(max / 2..=max);
                long_text(&mut run.rng, len)
            })
            .collect();
        let typed: String = texts.iter().map(|t| format!("{t}\n")).collect();
        client.write_stdin(typed.as_bytes()).map_err(|e| {
            Failure::wrong(
                "the client to read its stdin",
                format!("writing to it failed: {e}"),
            )
        })?;
        todo.push(texts);
    }
    let all: Vec<Vec<String>> = todo.clone();
    let mut next = vec![0usize; clients.len()];
    for _ in 0..all.iter().map(Vec::len).sum::<usize>() {
        let Some(request) = server.next_line(run.deadline)? else {
            return Err(run.timed_out("the clients' requests on `requests`"));
        };
        let parsed = request
            .split_once(' ')
            .and_then(|(p, t)| Some((p.parse::<u32>().ok()?, t)));
        let Some((k, text)) = parsed.and_then(|(p, t)| {
            let k = clients.iter().position(|(_, pid)| *pid == p)?;
            Some((k, t))
        }) else {
            return Err(mixed(&request));
        };
        let pid = clients[k].1;
        let Some(wanted) = all[k].get(next[k]) else {
            return Err(mixed(&request));
        };
        if text != wanted {
            return Err(mixed(&request));
        }
        next[k] += 1;
        send_line(
            &run.sandbox.tmp.join(format!("reply-{pid}")),
            &reverse(text),
            run.deadline,
        )
        .map_err(|_| run.timed_out(&format!("client {pid} to read its reply FIFO")))?;
    }
    for ((client, pid), texts) in clients.iter_mut().zip(&all) {
        for text in texts {
            let line = run
                .line(client, &format!("client {pid}'s `reverse: ...` lines"))?
                .text;
            if line != format!("reverse: {}", reverse(text)) {
                return Err(Failure::wrong(
                    format!("client {pid} to print `reverse: {}`", clip(&reverse(text))),
                    format!("`{}`", clip(&line)),
                ));
            }
        }
    }

    // One text too long for an atomic write, then a short one.
    let (client, pid) = &mut clients[0];
    let pid = *pid;
    let extra = run.rng.random_range(1..=40);
    let too_long = long_text(&mut run.rng, max_text(pid) + extra);
    let short = word(&mut run.rng);
    client
        .write_stdin(format!("{too_long}\n{short}\n").as_bytes())
        .map_err(|e| {
            Failure::wrong(
                "the client to read its stdin",
                format!("writing to it failed: {e}"),
            )
        })?;
    let Some(request) = server.next_line(run.deadline)? else {
        return Err(run.timed_out(&format!("client {pid}'s request `{pid} {short}`")));
    };
    if request.len() + 1 > PIPE_BUF {
        return Err(Failure::wrong(
            format!("client {pid} to refuse a text whose request would take more than PIPE_BUF ({PIPE_BUF}) bytes"),
            format!("it sent a request of {} bytes", request.len() + 1),
        )
        .because("only a write of at most PIPE_BUF bytes is atomic: a longer one may be split, and other clients' requests land in between. `send` must refuse it"));
    }
    if request != format!("{pid} {short}") {
        return Err(mixed(&request));
    }
    send_line(
        &run.sandbox.tmp.join(format!("reply-{pid}")),
        &reverse(&short),
        run.deadline,
    )
    .map_err(|_| run.timed_out(&format!("client {pid} to read its reply FIFO")))?;
    let line = run
        .line(client, "`refused: ...` for the text longer than PIPE_BUF")?
        .text;
    if !line.starts_with("refused:") {
        return Err(Failure::wrong(
            "`refused: ...` for the text longer than PIPE_BUF",
            format!("`{}`", clip(&line)),
        ));
    }
    let line = run
        .line(client, &format!("`reverse: {}`", reverse(&short)))?
        .text;
    if line != format!("reverse: {}", reverse(&short)) {
        return Err(Failure::wrong(
            format!("`reverse: {}`", reverse(&short)),
            format!("`{}`", clip(&line)),
        ));
    }
    for (client, _) in &mut clients {
        client.close_stdin();
        run.expect_success(client)?;
    }
    Ok(())
}

/// A request that is not one of the texts typed, whole.
fn mixed(request: &str) -> Failure {
    Failure::wrong(
        "each request whole: `PID TEXT` with a text typed into that client",
        format!("a request of {} bytes that is not: `{}`", request.len(), clip(request)),
    )
    .because("requests got mixed: each one must go out in ONE write() of at most PIPE_BUF bytes (`write!` on a File may make several writes, and another client's bytes land in between)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn long_texts_fit_pipe_buf_exactly() {
        let mut rng = StdRng::seed_from_u64(3);
        for id in [5_000_000, 8_999_999] {
            let text = long_text(&mut rng, max_text(id));
            assert_eq!(format!("{id} {text}\n").len(), PIPE_BUF);
        }
        assert_eq!(long_text(&mut rng, 100).len(), 100);
    }

    #[test]
    fn reverses_characters() {
        assert_eq!(reverse("año x"), "x oña");
    }
}
