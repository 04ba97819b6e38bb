//! The checker's own ends of FIFOs, its texts, and starting the
//! student's programs.

use super::*;

// ---------------------------------------------------------------------------
// The checker's own ends of FIFOs. Nothing here ever blocks past `until`.

/// A FIFO the checker reads: the read end is non-blocking and polled, and
/// the checker holds a write end too, so a read never sees end of file.
pub(super) struct Inbox {
    pub(super) path: PathBuf,
    pub(super) read: File,
    pub(super) _keep: File,
    pub(super) pending: Vec<u8>,
}

impl Inbox {
    /// Makes the FIFO at `path` (it must not exist) and opens both ends.
    pub(super) fn create(path: &Path) -> Result<Inbox, Failure> {
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
    pub(super) fn next_line(&mut self, until: Instant) -> Result<Option<String>, Failure> {
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

impl Inbox {
    /// Closes both ends, as a killed process's are closed, and leaves the
    /// FIFO where it is: a writer's non-blocking open now fails (ENXIO).
    pub(super) fn deafen(&mut self) -> Result<(), Failure> {
        let null = || File::open("/dev/null").map_err(Failure::internal);
        self.read = null()?;
        self._keep = null()?;
        Ok(())
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why the checker could not write a line to a FIFO.
pub(super) enum SendError {
    /// Until the deadline, the FIFO did not exist or nobody read it.
    NoReader { existed: bool },
    /// Anything else (the reader went away mid-way...).
    Failed(String),
}

/// Writes `line` and a newline to the FIFO at `path`: waits (up to
/// `until`) for the FIFO to exist and have a reader, without ever blocking.
pub(super) fn send_line(path: &Path, line: &str, until: Instant) -> Result<(), SendError> {
    send_pieces(
        path,
        &[format!("{line}\n").as_bytes()],
        Duration::ZERO,
        until,
    )
}

/// Like [`send_line`], for bytes written in several writes `pause` apart.
pub(super) fn send_pieces(
    path: &Path,
    pieces: &[&[u8]],
    pause: Duration,
    until: Instant,
) -> Result<(), SendError> {
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
    for (i, bytes) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        write_all_within(&fifo, bytes, until)?;
    }
    Ok(())
}

fn write_all_within(fifo: &File, bytes: &[u8], until: Instant) -> Result<(), SendError> {
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(fifo, &bytes[done..]) {
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
pub(super) struct FakeClient {
    pub(super) id: u32,
    pub(super) requests: PathBuf,
    pub(super) inbox: Inbox,
}

impl FakeClient {
    pub(super) fn new(dir: &Path, id: u32) -> Result<FakeClient, Failure> {
        Ok(FakeClient {
            id,
            requests: dir.join("requests"),
            inbox: Inbox::create(&dir.join(format!("reply-{id}")))?,
        })
    }

    /// Sends `ID TEXT` to the server.
    pub(super) fn send(&self, text: &str, until: Instant) -> Result<(), Stuck> {
        send_line(&self.requests, &format!("{} {text}", self.id), until).map_err(|e| match e {
            SendError::NoReader { existed } => Stuck::NoServer { existed },
            SendError::Failed(why) => Stuck::Broken(format!(
                "the checker could not write its request to `requests`: {why}"
            )),
        })
    }

    /// Sends `text` and waits for the reply.
    pub(super) fn ask(&mut self, text: &str, until: Instant) -> Result<String, Stuck> {
        self.send(text, until)?;
        self.reply(until)
    }

    pub(super) fn reply(&mut self, until: Instant) -> Result<String, Stuck> {
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
pub(super) enum Stuck {
    NoServer { existed: bool },
    NoReply { id: u32 },
    Broken(String),
}

/// The failure for `s`, with the hang report where it helps.
pub(super) fn stuck(run: &Run, s: Stuck, asked: &str) -> Failure {
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
pub(super) fn strange_fifos(dir: &Path) -> Vec<String> {
    fifos_in(dir)
        .into_iter()
        .filter(|n| n != "requests" && !n.starts_with("reply-"))
        .map(|n| format!("`{n}`"))
        .collect()
}

/// Names of the FIFOs in `dir`.
pub(super) fn fifos_in(dir: &Path) -> Vec<String> {
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

pub(super) fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// Whether process `pid` has the file at `path` open, for reading.
pub(super) fn reads(pid: Pid, path: &Path) -> bool {
    let target = path.display().to_string();
    procfs::fds(pid)
        .into_iter()
        .any(|(fd, t)| t == target && procfs::fd_access(pid, fd).is_some_and(|a| a != 1))
}

// ---------------------------------------------------------------------------
// Texts.

pub(super) const SYLLABLES: &[&str] = &[
    "a", "bra", "ca", "da", "ño", "pé", "lu", "zü", "mi", "xo", "ça", "te", "ka", "ri", "on", "sé",
    "ver", "tu",
];

pub(super) fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(2..=4);
    (0..n)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect()
}

/// One to three words with spaces between them.
pub(super) fn phrase(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..=3);
    (0..n).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
}

/// A text of at most `max` bytes and at least `max - 8`.
pub(super) fn long_text(rng: &mut StdRng, max: usize) -> String {
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
pub(super) fn max_text(id: u32) -> usize {
    PIPE_BUF - format!("{id} \n").len()
}

pub(super) fn reverse(text: &str) -> String {
    text.chars().rev().collect()
}

/// Ids for the checker's clients: above any pid Linux gives out, so they
/// never meet a real process's reply FIFO.
pub(super) fn fake_ids(rng: &mut StdRng, n: usize) -> Vec<u32> {
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
pub(super) fn wrong_reply(text: &str, reply: &str, who: &str) -> Failure {
    match crate::peers::reversing::check_reply(text, reply, who) {
        Err(f) => f,
        Ok(()) => Failure::internal(format!("`{reply}` is the reverse of `{text}` after all")),
    }
}

/// Shortens long texts for messages.
pub(super) fn clip(s: &str) -> String {
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
pub(super) fn has_exited(pid: Pid) -> bool {
    procfs::stat(pid).is_none_or(|s| s.is_zombie())
}

/// The first `error: ...` line `name` wrote on stderr, quoted.
pub(super) fn error_line(run: &Run, pid: Pid) -> Option<String> {
    let spawned = run.spawned.iter().find(|s| s.pid == pid)?;
    let text = spawned.stderr.text();
    let line = text.lines().find(|l| l.starts_with("error:"))?;
    Some(format!("`{}`", clip(line)))
}

pub(super) const EOF_WHY: &str = "read() on a FIFO returns end of file whenever no process has it open for writing: before the first writer comes, and each time the last one closes it. Keep a write end of your own open (Listener::open), and read() waits for data instead";

/// How long a program may take to print its `ready` line: making a FIFO
/// and opening it take a few milliseconds.
pub(super) const READY_WITHIN: Duration = Duration::from_secs(4);

/// The program's first line, its `ready` line. A program stuck opening a
/// FIFO is told so.
pub(super) fn ready_line(run: &Run, proc: &mut Proc, what: &str) -> Result<String, Failure> {
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
pub(super) fn start_server(run: &mut Run) -> Result<Proc, Failure> {
    let mut server = run.spawn("server", &[])?;
    let line = ready_line(run, &mut server, "the server's line `server pid=P ready`")?;
    if Pid::field(&line, "pid") != Some(server.pid) || !line.ends_with("ready") {
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
pub(super) fn start_client(run: &mut Run) -> Result<(Proc, u32), Failure> {
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
pub(super) fn start_client_any_fifo(run: &mut Run) -> Result<(Proc, u32), Failure> {
    let mut client = run.spawn("client", &[])?;
    let line = ready_line(run, &mut client, "the client's line `client pid=P ready`")?;
    if Pid::field(&line, "pid") != Some(client.pid) || !line.ends_with("ready") {
        return Err(Failure::wrong(
            format!("`client pid={} ready`", client.pid),
            format!("`{line}`"),
        ));
    }
    // The client names its reply FIFO after its pid, a positive number.
    let pid = client.pid.as_raw().unsigned_abs();
    Ok((client, pid))
}

/// Sends `end` as the checker's client `id` and waits for the server to
/// exit with status 0.
pub(super) fn stop_server(run: &Run, server: &mut Proc, id: u32) -> Outcome {
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
pub(super) fn expect_removed(run: &Run) -> Outcome {
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
