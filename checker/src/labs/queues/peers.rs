//! Queues from the checker's side, and talking to the programs.

use super::*;

// ---------------------------------------------------------------------
// Queues, from the checker's side.

/// The system limits in /proc/sys/fs/mqueue.
pub(super) fn limit(name: &str) -> Result<i64, Failure> {
    let path = format!("/proc/sys/fs/mqueue/{name}");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            Failure::internal(format!(
                "cannot read {path}: are POSIX message queues available?"
            ))
        })
}

/// Queues the checker removes when the scenario ends, whoever made them.
/// (The sandbox removes what /dev/mqueue shows, but that file system is
/// not mounted everywhere; these names are known.)
pub(super) struct Names(pub(super) Vec<String>);

impl Drop for Names {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = mq_unlink(name.as_str());
        }
    }
}

/// A queue of the checker's own, closed when dropped.
pub(super) struct Mq(pub(super) Option<MqdT>);

impl Mq {
    pub(super) fn get(&self) -> &MqdT {
        self.0.as_ref().expect("open queue")
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        if let Some(q) = self.0.take() {
            let _ = mq_close(q);
        }
    }
}

pub(super) fn create(
    name: &str,
    capacity: usize,
    size: usize,
    flags: MQ_OFlag,
) -> Result<Mq, Failure> {
    let attr = MqAttr::new(0, capacity as _, size as _, 0);
    let _ = mq_unlink(name);
    mq_open(
        name,
        flags | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .map(|q| Mq(Some(q)))
    .map_err(|e| Failure::internal(format!("creating the queue {name}: {e}")))
}

pub(super) fn open(name: &str, flags: MQ_OFlag) -> nix::Result<Mq> {
    mq_open(name, flags | MQ_OFlag::O_NONBLOCK, Mode::empty(), None).map(|q| Mq(Some(q)))
}

/// Whether the queue `name` exists now.
pub(super) fn exists(name: &str) -> bool {
    !matches!(open(name, MQ_OFlag::O_RDONLY), Err(Errno::ENOENT))
}

/// One message if there is one (the queue is open O_NONBLOCK).
pub(super) fn try_receive(q: &Mq) -> Option<(Vec<u8>, u32)> {
    let size = mq_getattr(q.get()).ok()?.msgsize() as usize;
    let mut buf = vec![0u8; size];
    let mut prio = 0;
    loop {
        match mq_receive(q.get(), &mut buf, &mut prio) {
            Ok(n) => {
                buf.truncate(n);
                return Some((buf, prio));
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Sends on a queue open O_NONBLOCK, waiting (within the deadline) while
/// it is full.
pub(super) fn send(run: &Run, q: &Mq, name: &str, message: &[u8], prio: u32) -> Outcome {
    let mut error = None;
    let sent = run.poll(PATIENCE, || match mq_send(q.get(), message, prio) {
        Ok(()) => Some(true),
        Err(Errno::EAGAIN | Errno::EINTR) => None,
        Err(e) => {
            error = Some(e);
            Some(false)
        }
    });
    match (sent, error) {
        (Some(true), _) => Ok(()),
        (_, Some(e)) => Err(Failure::internal(format!("mq_send({name}): {e}"))),
        _ => Err(stalled(
            run,
            format!("room in {name} for the checker's message"),
            format!(
                "the queue stayed full for {} s: nobody takes the messages out",
                PATIENCE.as_secs()
            ),
        )),
    }
}

/// A failure with where each process is blocked now.
pub(super) fn stalled(run: &Run, expected: String, happened: String) -> Failure {
    let program = run.spawned.first().map_or(Pid::from_raw(0), |s| s.pid);
    let mut f = Failure::wrong(expected, happened);
    f.details = diagnose::hang_report(program, checker_pid())
        .into_iter()
        .map(|l| format!("- {l}"))
        .collect();
    f
}

/// Which of `names` (queues the program should have removed) are still
/// there: seen in /dev/mqueue where that is mounted, or still opening.
/// Queues of the checker's own are not in `names`, so they do not count.
pub(super) fn left_behind(run: &Run, names: &[String]) -> Vec<String> {
    let shown: Vec<String> = run
        .sandbox
        .ipc_objects()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    names
        .iter()
        .map(|name| format!("/dev/mqueue{name}"))
        .zip(names)
        .filter(|(path, name)| shown.contains(path) || exists(name))
        .map(|(path, _)| path)
        .collect()
}

pub(super) fn expect_nothing_left(run: &Run, names: &[String], who: &str, fix: &str) -> Outcome {
    let left = left_behind(run, names);
    if left.is_empty() {
        return Ok(());
    }
    Err(Failure::wrong(
        format!("no message queue left once {who} has exited"),
        format!("left behind: {}", left.join(", ")),
    )
    .because(format!(
        "a message queue lives in the kernel until someone calls mq_unlink, even after every \
         process has closed it (it would stay until the machine reboots): {fix}"
    )))
}

// ---------------------------------------------------------------------
// Talking to the programs.

/// The next line `p` prints, within `within`: the shared helper, which
/// also ends the wait as soon as every process is stuck.
pub(super) fn line_within(
    run: &Run,
    p: &mut Proc,
    within: Duration,
    what: &str,
) -> Result<String, Failure> {
    run.line_within(p, within, what).map(|l| l.text)
}

pub(super) fn rest_within(
    run: &Run,
    p: &mut Proc,
    within: Duration,
    what: &str,
) -> Result<Vec<String>, Failure> {
    run.rest_within(p, within, what)
        .map(|lines| lines.into_iter().map(|l| l.text).collect())
}

pub(super) fn exit_within(run: &Run, p: &mut Proc, within: Duration) -> Result<Exit, Failure> {
    run.exit_within(p, within)
}

pub(super) fn expect_exit_0(run: &Run, p: &mut Proc) -> Outcome {
    match exit_within(run, p, PATIENCE)? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            format!("{} to exit with status 0", p.name),
            format!("it ended with {other}"),
        )),
    }
}

pub(super) fn write_line(p: &mut Proc, text: &str) -> Outcome {
    p.write_stdin(format!("{text}\n").as_bytes()).map_err(|e| {
        Failure::wrong(
            format!("{} to read its stdin", p.name),
            format!("the checker could not write to it ({e}): the program has exited or closed its stdin"),
        )
    })
}

pub(super) fn word(rng: &mut impl Rng, min: usize, max: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let n = rng.random_range(min..=max);
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(super) fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}
