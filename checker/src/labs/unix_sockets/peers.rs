//! Talking to the program over sockets, always within the deadline;
//! the requests.

use super::*;

// ---------------------------------------------------------------------
// Talking to the program over sockets, always within the deadline.

/// `now + within`, but never past the scenario's deadline.
pub(super) fn until(run: &Run, within: Duration) -> Instant {
    (Instant::now() + within).min(run.deadline)
}

/// What waiting for a line on a connection gave.
pub(super) enum Got {
    Line(String),
    /// The other side closed the connection.
    Closed,
    TimedOut,
    Failed(String),
}

/// One connection of the checker's to the program.
pub(super) struct Conn {
    pub(super) stream: UnixStream,
    /// Bytes received and not yet returned as a line.
    pub(super) pending: Vec<u8>,
}

impl Conn {
    pub(super) fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            pending: Vec::new(),
        }
    }

    pub(super) fn connect(run: &Run, path: &str) -> Result<Conn, Failure> {
        let stream = UnixStream::connect(run.sandbox.tmp.join(path)).map_err(|e| {
            Failure::wrong(
                format!("the server to accept connections on {path}"),
                format!("connect() failed: {e}"),
            )
        })?;
        Ok(Conn::new(stream))
    }

    /// Writes all of `bytes`, giving up at `until`.
    pub(super) fn write(&mut self, bytes: &[u8], until: Instant) -> Result<(), String> {
        let left = until.saturating_duration_since(Instant::now());
        let _ = self
            .stream
            .set_write_timeout(Some(left.max(Duration::from_millis(1))));
        self.stream.write_all(bytes).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                "the write timed out: the program does not read this connection".to_string()
            }
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                "the program has closed this connection".to_string()
            }
            _ => e.to_string(),
        })
    }

    /// Every whole line that has arrived by now, without waiting; they
    /// stay pending.
    pub(super) fn received_now(&mut self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        if self.stream.set_nonblocking(true).is_ok() {
            while let Ok(n @ 1..) = self.stream.read(&mut buf) {
                self.pending.extend_from_slice(&buf[..n]);
            }
            let _ = self.stream.set_nonblocking(false);
        }
        self.pending
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// The next line (without its newline), waiting until `until`.
    pub(super) fn line(&mut self, until: Instant) -> Got {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Got::Line(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Got::Closed,
                Err(e) => return Got::Failed(e.to_string()),
            }
        }
    }
}

/// The next line the program prints on stdout, waiting at most `within`.
/// (The shared helper, which ends the wait as soon as every process is
/// stuck.)
pub(super) fn line_within(
    run: &Run,
    p: &mut Proc,
    within: Duration,
    what: &str,
) -> Result<String, Failure> {
    run.line_within(p, within, what).map(|l| l.text)
}

/// Starts `revserver PATH` and waits until it says it listens.
pub(super) fn start_server(run: &mut Run) -> Result<Proc, Failure> {
    let mut p = run.spawn("revserver", &[SOCKET.to_string()])?;
    let what = format!("a line `server pid=P listening on {SOCKET}`");
    let line = match p.next_line(until(run, PATIENCE)) {
        Ok(Some(line)) => line.text,
        Ok(None) => {
            // It ended before listening: say how, and what it said.
            let exit = p
                .wait(until(run, Duration::from_secs(1)))
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            let said = p.captures().1.text();
            let said = said
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!(", saying `{}`", l.trim()))
                .unwrap_or_default();
            return Err(Failure::wrong(
                what,
                format!("revserver ended before it listened{exit}{said}"),
            ));
        }
        Err(Waited::TimedOut) => return Err(run.timed_out(&what)),
    };
    if !line.contains("listening on") {
        return Err(Failure::wrong(what, format!("`{line}`")));
    }
    Ok(p)
}

/// Waits for `p` to exit, at most `within`.
pub(super) fn exit_within(
    run: &Run,
    p: &mut Proc,
    within: Duration,
    what: &str,
) -> Result<Exit, Failure> {
    let expected = format!("{} to {what}", p.name);
    run.exit_within(p, within).map_err(|mut f| {
        f.expected = expected;
        f
    })
}

/// Accepts the program's connection on the checker's own listener.
pub(super) fn accept_from(
    run: &Run,
    listener: &UnixListener,
    p: &mut Proc,
    path: &str,
) -> Result<UnixStream, Failure> {
    let what = format!("{} to connect to {path}", p.name);
    listener.set_nonblocking(true).map_err(Failure::internal)?;
    let until = until(run, PATIENCE);
    loop {
        // Whether it has ended, looked at before the accept: a program may
        // connect, do all its work and exit between the two, and its
        // connection waits in the backlog even after it closed it.
        let ended = p.wait(Instant::now()).ok();
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(Failure::internal)?;
                return Ok(stream);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(Failure::internal(format!("accept: {e}"))),
        }
        if let Some(exit) = ended {
            return Err(Failure::wrong(
                what,
                format!("it ended ({exit}) without connecting"),
            ));
        }
        if Instant::now() >= until {
            return Err(run.timed_out(&what));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------
// Requests.

pub(super) const WORDS: &[&str] = &[
    "socket",
    "stream",
    "accept",
    "listen",
    "bind",
    "connect",
    "client",
    "server",
    "abracadabra",
    "zócalo",
    "ñandú",
    "über",
    "señal",
    "mañana",
    "ソケット",
    "接続",
];

pub(super) fn words(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"x"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

/// Cuts `bytes` into `pieces` non-empty pieces at random offsets (inside a
/// multi-byte character, too).
pub(super) fn cut(rng: &mut impl Rng, bytes: &[u8], pieces: usize) -> Vec<Vec<u8>> {
    let pieces = pieces.clamp(1, bytes.len().max(1));
    let mut cuts: Vec<usize> = Vec::new();
    while cuts.len() + 1 < pieces {
        let at = rng.random_range(1..bytes.len());
        if !cuts.contains(&at) {
            cuts.push(at);
        }
    }
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for at in cuts.into_iter().chain([bytes.len()]) {
        out.push(bytes[from..at].to_vec());
        from = at;
    }
    out
}

/// Sends every connection's pieces in order, picking the next connection
/// at random, with a short random pause now and then.
pub(super) fn interleave(
    run: &mut Run,
    conns: &mut [Conn],
    queues: &mut [Vec<Vec<u8>>],
    until: Instant,
) -> Outcome {
    for q in queues.iter_mut() {
        q.reverse();
    }
    loop {
        let ready: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let Some(&i) = ready.choose(&mut run.rng) else {
            return Ok(());
        };
        let piece = queues[i].pop().unwrap_or_default();
        conns[i].write(&piece, until).map_err(|e| {
            Failure::wrong(
                format!("the server to read the requests on connection {i}"),
                e,
            )
        })?;
        if run.rng.random_bool(0.3) {
            std::thread::sleep(Duration::from_millis(run.rng.random_range(1..4)));
        }
    }
}

/// How many threads and child processes `pid` has, in words.
pub(super) fn threads_and_children(pid: Pid) -> String {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0);
    let children = procfs::children(pid).len();
    format!("the server has {threads} thread(s) and {children} child process(es)")
}

/// Reads one reply on each connection in `which` and compares it with the
/// reverse of `requests[i]`. `all` is every request of the scenario, to
/// recognise a reply that went to the wrong connection.
pub(super) fn expect_replies(
    conns: &mut [Conn],
    which: &[usize],
    requests: &[String],
    all: &[(usize, String)],
    until: Instant,
    on_silence: impl Fn(usize, usize) -> Failure,
) -> Outcome {
    for (answered, &i) in which.iter().enumerate() {
        let wanted = reverse(&requests[i]);
        match conns[i].line(until) {
            Got::Line(line) if line == wanted => {}
            Got::Line(line) => {
                let f = Failure::wrong(
                    format!(
                        "`{wanted}` on connection {i}, the reverse of its request `{}`",
                        requests[i]
                    ),
                    format!("`{line}`"),
                );
                if let Some((j, req)) = all.iter().find(|(j, req)| *j != i && reverse(req) == line)
                {
                    return Err(f.because(format!(
                        "that is the reply to `{req}`, a request sent on another connection ({j}): \
                         a reply must go back on the stream its request came from. Pass each thread \
                         its own stream, and write the reply to that stream, not to a variable the \
                         threads share"
                    )));
                }
                return Err(f);
            }
            Got::Closed => {
                return Err(Failure::wrong(
                    format!("`{wanted}` on connection {i}"),
                    "the server closed connection {i} without replying"
                        .replace("{i}", &i.to_string()),
                ));
            }
            Got::Failed(e) => {
                return Err(Failure::wrong(
                    format!("`{wanted}` on connection {i}"),
                    format!("reading connection {i} failed: {e}"),
                ));
            }
            Got::TimedOut => {
                // Did the reply go to another connection?
                let wanted_here = reverse(&requests[i]);
                for (j, c) in conns.iter_mut().enumerate() {
                    if j != i && c.received_now().contains(&wanted_here) {
                        return Err(Failure::wrong(
                            format!("`{wanted_here}` on connection {i}, the reverse of its request `{}`", requests[i]),
                            format!("nothing on connection {i}; the reply arrived on connection {j}"),
                        )
                        .because(
                            "the reply went back on another connection: a reply must go back on the stream \
                             its request came from. Pass each thread its own stream, and write the reply \
                             to that stream, not to a variable the threads share",
                        ));
                    }
                }
                return Err(on_silence(i, answered));
            }
        }
    }
    Ok(())
}
