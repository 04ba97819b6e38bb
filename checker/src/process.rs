//! Starting a student's program under limits, and talking to it: its stdin
//! is ours to write or close, its stdout arrives line by line with the time
//! each line came, its stderr is kept for the report.

use std::io::Read;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::pid::Pid;
use nix::errno::Errno;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::scenario::Failure;

/// Resource limits for every process a scenario starts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Address space per process.
    pub memory_bytes: u64,
    /// Bytes kept of stdout (and, separately, of stderr) before the checker
    /// stops reading and fails the scenario.
    pub output_bytes: usize,
    /// Largest file a process may write.
    pub file_bytes: u64,
    /// CPU seconds per process, a backstop behind the wall-clock limit.
    pub cpu_seconds: u64,
    /// Processes at once, enforced by the monitor (and by RLIMIT_NPROC
    /// where the kernel applies it, i.e. not for root).
    pub processes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 1 << 30,
            output_bytes: 1 << 20,
            file_bytes: 64 << 20,
            cpu_seconds: 60,
            processes: 64,
        }
    }
}

/// One line a program printed.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
}

#[derive(Default)]
struct Stream {
    lines: Vec<Line>,
    partial: Vec<u8>,
    bytes: usize,
    eof: bool,
    overflow: bool,
}

/// A stream read by a thread of its own, so that a program never blocks
/// on a full pipe because the checker is busy elsewhere.
#[derive(Clone, Default)]
pub struct Capture(Arc<(Mutex<Stream>, Condvar)>);

impl Capture {
    fn spawn_reader(
        &self,
        mut source: impl Read + Send + 'static,
        limit: usize,
    ) -> std::io::Result<()> {
        let capture = self.clone();
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match source.read(&mut buf) {
                        Ok(0) => 0,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => 0,
                    };
                    let (lock, cvar) = &*capture.0;
                    let mut s = lock.lock().unwrap();
                    if n == 0 {
                        if !s.partial.is_empty() {
                            let text = String::from_utf8_lossy(&std::mem::take(&mut s.partial))
                                .into_owned();
                            s.lines.push(Line { text });
                        }
                        s.eof = true;
                        cvar.notify_all();
                        return;
                    }
                    s.bytes += n;
                    if s.bytes > limit {
                        // Stop reading: the writer gets EPIPE or SIGPIPE.
                        s.overflow = true;
                        s.eof = true;
                        cvar.notify_all();
                        return;
                    }
                    for &b in &buf[..n] {
                        if b == b'\n' {
                            let text = String::from_utf8_lossy(&std::mem::take(&mut s.partial))
                                .into_owned();
                            s.lines.push(Line { text });
                        } else {
                            s.partial.push(b);
                        }
                    }
                    cvar.notify_all();
                }
            })?;
        Ok(())
    }

    /// Waits for line number `index`; `None` at end of stream or deadline.
    fn line(&self, index: usize, deadline: Instant) -> Result<Option<Line>, Waited> {
        let (lock, cvar) = &*self.0;
        let mut s = lock.lock().unwrap();
        loop {
            if let Some(line) = s.lines.get(index) {
                return Ok(Some(line.clone()));
            }
            if s.eof {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Waited::TimedOut);
            }
            s = cvar.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    /// Everything, once the stream is closed (or `deadline` passes).
    pub fn text_at_end(&self, deadline: Instant) -> String {
        self.wait_closed(deadline);
        self.text()
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        let s = self.0.0.lock().unwrap();
        let mut out: String = s.lines.iter().map(|l| format!("{}\n", l.text)).collect();
        out.push_str(&String::from_utf8_lossy(&s.partial));
        out
    }

    /// Waits until the stream is closed by every process holding it, or
    /// `deadline` passes; says whether it was closed.
    pub fn wait_closed(&self, deadline: Instant) -> bool {
        let (lock, cvar) = &*self.0;
        let mut s = lock.lock().unwrap();
        while !s.eof {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = cvar.wait_timeout(s, deadline - now).unwrap().0;
        }
        true
    }

    /// More than the limit arrived; the rest was refused.
    pub fn overflowed(&self) -> bool {
        self.0.0.lock().unwrap().overflow
    }
}

/// Why a wait ended without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    TimedOut,
}

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(Signal),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by {}", s.as_str()),
        }
    }
}

/// A running program of the student's, started by the checker.
pub struct Proc {
    pub pid: Pid,
    pub name: String,
    pub started: Instant,
    stdin: Option<ChildStdin>,
    stdout: Capture,
    stderr: Capture,
    next_line: usize,
    exit: Option<(Exit, Instant)>,
}

/// What a scenario passes to [`Proc::spawn`].
pub struct Spawn<'a> {
    pub program: &'a Path,
    pub name: &'a str,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a [(&'a str, String)],
    pub limits: Limits,
    /// `cgroup.procs` of the scenario's pids cgroup, if there is one.
    pub cgroup: Option<&'a std::ffi::CString>,
    /// Descriptors the program inherits as 3, 4, 5, ... in this order
    /// (the checker keeps its own copies; they may be close-on-exec).
    pub fds: &'a [RawFd],
}

/// Marks every descriptor from `first` up close-on-exec, in the child
/// between fork and exec. Marked, not closed: among them is the pipe on
/// which `Command::spawn` learns that exec happened. Closed early, it
/// tells the checker "started" while the child is still joining its
/// cgroup, a write to `cgroup.procs` that a machine busy forking can hold
/// up for half a second and more; the checker's clocks (a line within
/// 500 ms of a write) then run before the program exists. Async-signal-safe.
fn close_on_exec_from(first: RawFd) {
    // SAFETY: close_range and fcntl on descriptor numbers only.
    unsafe {
        let flags = libc::CLOSE_RANGE_CLOEXEC;
        if libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, flags) == 0 {
            return;
        }
        // Kernels before 5.11 know no CLOSE_RANGE_CLOEXEC.
        for fd in first..1024 {
            let old = libc::fcntl(fd, libc::F_GETFD);
            if old >= 0 {
                libc::fcntl(fd, libc::F_SETFD, old | libc::FD_CLOEXEC);
            }
        }
    }
}

impl Proc {
    pub fn spawn(spec: Spawn<'_>) -> std::io::Result<Proc> {
        let mut cmd = Command::new(spec.program);
        cmd.args(spec.args)
            .current_dir(spec.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_BACKTRACE", "0");
        for (k, v) in spec.env {
            cmd.env(k, v);
        }
        let limits = spec.limits;
        let nproc = nproc_ceiling(limits.processes);
        let cgroup = spec.cgroup.cloned();
        let given: Vec<RawFd> = spec.fds.to_vec();
        // Where each given descriptor waits, out of the way, before it is
        // moved to its place: allocated here, since the child must not.
        let mut parked: Vec<RawFd> = vec![-1; given.len()];
        let first_free = 3 + given.len() as RawFd;
        // SAFETY: between fork and exec we only make async-signal-safe
        // system calls (fcntl, dup2, close_range, sigaction, open, write,
        // setpgid, setrlimit, prctl) and allocate nothing.
        unsafe {
            cmd.pre_exec(move || {
                // The given descriptors become 3, 4, ...: first copy each
                // above that range, so that no move overwrites another.
                for (i, &fd) in given.iter().enumerate() {
                    let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first_free);
                    if copy < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    parked[i] = copy;
                }
                for (i, &copy) in parked.iter().enumerate() {
                    // dup2 clears close-on-exec on the new descriptor.
                    if libc::dup2(copy, 3 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Descriptors the checker inherited without close-on-exec
                // (cargo's jobserver, say) are none of the program's business.
                close_on_exec_from(first_free);
                // No blocked signals: the checker blocks SIGINT and SIGTERM
                // for its own use, and a mask survives exec.
                SigSet::empty().thread_set_mask()?;
                // Default signal dispositions: the checker may itself have been
                // started with SIGINT ignored (a background job of a shell).
                for sig in Signal::iterator() {
                    if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
                        let _ = signal(sig, SigHandler::SigDfl);
                    }
                }
                // Into the scenario's cgroup first: its pids.max holds
                // even for root, whom RLIMIT_NPROC does not limit.
                if let Some(procs) = &cgroup {
                    let _ = crate::cgroup::join(procs);
                }
                // A process group of its own, so one kill reaches them all.
                nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))?;
                // If the checker dies, so does the program.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                setrlimit(
                    Resource::RLIMIT_AS,
                    limits.memory_bytes,
                    limits.memory_bytes,
                )?;
                setrlimit(Resource::RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes)?;
                setrlimit(
                    Resource::RLIMIT_CPU,
                    limits.cpu_seconds,
                    limits.cpu_seconds + 1,
                )?;
                setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
                setrlimit(Resource::RLIMIT_NPROC, nproc, nproc)?;
                // POSIX message queues are charged to the user, against a
                // limit of 800 KiB by default: about ten queues, shared by
                // every program of the user. Where the checker may (as
                // root), it gives each program room of its own, so that
                // scenarios running side by side do not starve each other.
                let _ = setrlimit(Resource::RLIMIT_MSGQUEUE, 64 << 20, 64 << 20);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let stdout = Capture::default();
        let stderr = Capture::default();
        stdout.spawn_reader(
            child.stdout.take().expect("piped stdout"),
            limits.output_bytes,
        )?;
        stderr.spawn_reader(
            child.stderr.take().expect("piped stderr"),
            limits.output_bytes,
        )?;
        Ok(Proc {
            pid: Pid::of_child(&child),
            name: spec.name.to_string(),
            started: Instant::now(),
            stdin: child.stdin.take(),
            stdout,
            stderr,
            next_line: 0,
            exit: None,
        })
        // `child` is dropped without waiting: the checker reaps with waitpid.
    }

    /// The next line of stdout not read yet. `Ok(None)` at end of output.
    pub fn next_line(&mut self, deadline: Instant) -> Result<Option<Line>, Waited> {
        let line = self.stdout.line(self.next_line, deadline)?;
        if line.is_some() {
            self.next_line += 1;
        }
        Ok(line)
    }

    /// Handles on stdout and stderr that outlive the `Proc`.
    pub fn captures(&self) -> (Capture, Capture) {
        (self.stdout.clone(), self.stderr.clone())
    }

    /// Writes `bytes` to the program's stdin (a pipe the checker holds).
    pub fn write_stdin(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        match &mut self.stdin {
            Some(stdin) => stdin.write_all(bytes).and_then(|()| stdin.flush()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the checker has closed the program's stdin",
            )),
        }
    }

    /// Writes `text` to the program's stdin (a gate's "go"). Fails once
    /// the program has closed it or exited.
    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        match &mut self.stdin {
            Some(stdin) => {
                stdin.write_all(text.as_bytes())?;
                stdin.flush()
            }
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Closes the program's stdin: it reads end of file.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Hands stdin to a thread of its own that writes all of `bytes` and
    /// then closes it, so that a program which reads slowly, or not at
    /// all, never blocks the checker. The thread gives up quietly when the
    /// program goes away.
    pub fn feed_stdin(&mut self, bytes: Vec<u8>) -> Result<(), Failure> {
        if let Some(mut stdin) = self.stdin.take() {
            std::thread::Builder::new()
                .name("feed stdin".into())
                .spawn(move || {
                    use std::io::Write;
                    let _ = stdin.write_all(&bytes);
                })
                .map_err(|e| Failure::internal(format!("starting a thread to write stdin: {e}")))?;
        }
        Ok(())
    }

    /// Waits for the program itself to exit (its children may live on).
    pub fn wait(&mut self, deadline: Instant) -> Result<Exit, Waited> {
        if let Some((exit, _)) = self.exit {
            return Ok(exit);
        }
        let pid = nix::unistd::Pid::from(self.pid);
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(self.record(Exit::Code(code))),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(self.record(Exit::Signal(sig))),
                Ok(_) | Err(Errno::EINTR) => {}
                // Reaped elsewhere (the clean-up): it is gone.
                Err(_) => return Ok(self.record(Exit::Signal(Signal::SIGKILL))),
            }
            if Instant::now() >= deadline {
                return Err(Waited::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn record(&mut self, exit: Exit) -> Exit {
        self.exit = Some((exit, Instant::now()));
        exit
    }

    /// When the program exited, if the checker has seen it exit.
    pub fn exited_at(&self) -> Option<Instant> {
        self.exit.map(|(_, at)| at)
    }
}

/// RLIMIT_NPROC counts every process of the user, so the ceiling is what
/// the user runs already plus the scenario's allowance. (Root ignores it;
/// the monitor enforces the limit for everyone.)
fn nproc_ceiling(allowance: usize) -> u64 {
    use std::sync::OnceLock;
    static RUNNING: OnceLock<u64> = OnceLock::new();
    let running = *RUNNING.get_or_init(|| {
        let uid = nix::unistd::getuid().as_raw();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 4096;
        };
        let mut n = 0u64;
        for e in dir.flatten() {
            use std::os::unix::fs::MetadataExt;
            if e.file_name().to_string_lossy().parse::<u32>().is_ok()
                && e.metadata().map(|m| m.uid() == uid).unwrap_or(false)
            {
                // Threads count too: add each process's thread count.
                let threads = std::fs::read_dir(e.path().join("task"))
                    .map(|d| d.count())
                    .unwrap_or(1);
                n += threads as u64;
            }
        }
        n
    });
    running + allowance as u64 + 64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program starts clean: no blocked or ignored signal, no descriptor
    /// but 0, 1 and 2, whatever the checker itself inherited or blocks.
    #[test]
    fn programs_start_with_a_clean_slate() {
        let script = "grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/self/fd";
        let args = ["-c".to_string(), script.to_string()];
        let mut p = Proc::spawn(Spawn {
            program: Path::new("/bin/sh"),
            name: "sh",
            args: &args,
            cwd: Path::new("/"),
            env: &[],
            limits: Limits::default(),
            cgroup: None,
            fds: &[],
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while let Ok(Some(line)) = p.next_line(deadline) {
            lines.push(line.text);
        }
        assert_eq!(p.wait(deadline), Ok(Exit::Code(0)));
        assert!(
            lines.contains(&"SigBlk:\t0000000000000000".to_string()),
            "{lines:?}"
        );
        // Standard signals (1 to 31) all at their defaults.
        let ignored = lines
            .iter()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .unwrap();
        assert_eq!(
            u64::from_str_radix(ignored, 16).unwrap() & 0x7fff_ffff,
            0,
            "{lines:?}"
        );
        // `ls` lists its own directory descriptor too: 0, 1, 2 and that one.
        let fds: Vec<&String> = lines
            .iter()
            .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
            .collect();
        assert!(fds.len() <= 4, "{fds:?}");
    }

    /// `spawn` returns once exec has happened, not before: the pipe on
    /// which it learns so survives the child's setup. Seen here as an exec
    /// that fails being reported, which needs that same pipe.
    #[test]
    fn spawn_waits_for_exec() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let raw = [std::os::fd::AsRawFd::as_raw_fd(&r)];
        let spawned = Proc::spawn(Spawn {
            program: Path::new("/nonexistent/program"),
            name: "nothing",
            args: &[],
            cwd: Path::new("/"),
            env: &[],
            limits: Limits::default(),
            cgroup: None,
            fds: &raw,
        });
        let err = spawned
            .err()
            .expect("an exec that fails is an error of spawn");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    }
}
