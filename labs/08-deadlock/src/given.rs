//! Given code shared by the programs in `src/bin/`. You do not need to edit it.
//!
//! Two kinds of lock live here, both kept by the kernel, so that `/proc/locks`
//! (and the checker) can see who holds what and who waits for what:
//!
//! - [`FileLock`]: `flock` on a whole file, `NAME.lock` in the current
//!   directory. The kernel never refuses a blocking `flock`: two processes
//!   that wait for each other wait forever.
//! - [`RecordLock`]: an `fcntl` record lock on one byte of a shared file. For
//!   these the kernel looks for a circle of waiting processes, and refuses
//!   the lock that would close it with `EDEADLK`.
//!
//! Every lock taken is reported on stdout (`pid=P took L1`). Started with
//! `--gate`, a program also stops after each report until it reads a line
//! on stdin: the checker uses these gates to choose who goes when.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{main_with, me, number};

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, Flock, FlockArg, fcntl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Whether the program stops at each gate (set by `--gate`).
static GATED: AtomicBool = AtomicBool::new(false);

/// Prints `pid=P EVENT` on stdout, at once.
pub fn report(event: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "pid={} {event}", me());
    let _ = out.flush();
}

/// Reports `event`, then, with `--gate`, waits for a line on stdin. At end
/// of input the gates open for good.
pub fn gate(event: &str) {
    report(event);
    if GATED.load(Ordering::SeqCst) {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => GATED.store(false, Ordering::SeqCst),
            Ok(_) => {}
        }
    }
}

/// The options every program of the lab understands, and the rest.
#[derive(Debug, Default)]
pub struct Options {
    /// `--naive`: take the locks in the order they are named.
    pub naive: bool,
    /// `--backoff MS`: try-lock with back-off, waiting up to MS ms.
    pub backoff: Option<u64>,
    /// The other arguments, in order.
    pub args: Vec<String>,
}

/// Parses the command line; `--gate` turns the gates on.
pub fn options(usage: &str) -> Result<Options> {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--gate" => GATED.store(true, Ordering::SeqCst),
            "--naive" => opts.naive = true,
            "--backoff" => {
                let ms = args.next().context("--backoff needs a number of ms")?;
                opts.backoff = Some(number(&ms, usage)?);
            }
            _ => opts.args.push(arg),
        }
    }
    Ok(opts)
}

// ANCHOR: file_lock
/// An exclusive lock on the file `NAME.lock` in the current directory,
/// with a rank: its place in the order every process agrees on.
#[derive(Debug)]
pub struct FileLock {
    name: String,
    rank: u32,
}

/// Proof that a [`FileLock`] is held. Dropping it closes the file, and
/// closing the file releases the lock.
#[derive(Debug)]
pub struct Guard {
    _locked: Flock<File>,
    name: String,
}
// ANCHOR_END: file_lock

impl FileLock {
    pub fn new(name: impl Into<String>, rank: u32) -> FileLock {
        FileLock {
            name: name.into(),
            rank,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rank(&self) -> u32 {
        self.rank
    }

    // ANCHOR: flock
    /// Takes the lock, waiting as long as another process holds it.
    pub fn lock(&self) -> Result<Guard> {
        let mut file = self.open()?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(locked) => return Ok(self.taken(locked)),
                // A signal arrived while we waited: wait again.
                Err((back, Errno::EINTR)) => file = back,
                Err((_, e)) => return Err(e).with_context(|| format!("flock {}", self.name)),
            }
        }
    }

    /// Takes the lock if nobody holds it; `None` if somebody does.
    pub fn try_lock(&self) -> Result<Option<Guard>> {
        let file = self.open()?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => Ok(Some(self.taken(locked))),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e).with_context(|| format!("flock {} (non-blocking)", self.name)),
        }
    }
    // ANCHOR_END: flock
}

impl FileLock {
    /// Each acquisition opens the file anew: `flock` locks belong to an
    /// open file, so two opens in one process are two different owners.
    fn open(&self) -> Result<File> {
        let path = format!("{}.lock", self.name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {path}"))
    }

    fn taken(&self, locked: Flock<File>) -> Guard {
        gate(&format!("took {}", self.name));
        Guard {
            _locked: locked,
            name: self.name.clone(),
        }
    }
}

impl Guard {
    pub fn name(&self) -> &str {
        &self.name
    }
}

// ANCHOR: naive
/// Takes `first`, then `second`, in the order the caller names them. Two
/// processes that name the same two locks in opposite orders can each take
/// their first lock and then wait for ever for the other one's: a deadlock.
pub fn lock_as_named(first: &FileLock, second: &FileLock) -> Result<(Guard, Guard)> {
    let a = first.lock()?;
    let b = second.lock()?;
    Ok((a, b))
}
// ANCHOR_END: naive

/// The work done while holding locks: a gate named `works`.
pub fn work() {
    gate("works");
}

/// Reports `backs off`, then sleeps between 1 and `max_ms` ms, a random
/// time so that two processes backing off together do not meet again.
pub fn back_off(max_ms: u64) {
    gate("backs off");
    let ms = rand::rng().random_range(1..=max_ms.max(1));
    std::thread::sleep(Duration::from_millis(ms));
}

/// How long a philosopher thinks and eats: random times up to a maximum,
/// from a seed, so that a run can be repeated.
#[derive(Debug)]
pub struct Pace {
    think_ms: u64,
    eat_ms: u64,
    rng: StdRng,
}

impl Pace {
    pub fn new(think_ms: u64, eat_ms: u64, seed: u64) -> Pace {
        Pace {
            think_ms,
            eat_ms,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Thinks (sleeps) for a while: call it holding no fork. A gate named
    /// `thinks`.
    pub fn think(&mut self) {
        gate("thinks");
        let ms = self.rng.random_range(0..=self.think_ms);
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// Eats meal number `meal`: call it holding both forks.
    pub fn eat(&mut self, meal: u32) {
        gate(&format!("eats meal={meal}"));
        let ms = self.rng.random_range(0..=self.eat_ms);
        std::thread::sleep(Duration::from_millis(ms));
    }
}

// ANCHOR: record_lock
/// An `fcntl` write lock on one byte (`record`) of a file shared by every
/// process. The file stays open as long as the `RecordLock` lives: record
/// locks belong to the process, and closing *any* descriptor of the file
/// releases *all* of the process's locks on it.
#[derive(Debug)]
pub struct RecordLock {
    file: File,
    record: u32,
    name: String,
}

/// Proof that a record is locked; dropping it unlocks the record.
#[derive(Debug)]
pub struct RecordGuard<'a> {
    lock: &'a RecordLock,
}
// ANCHOR_END: record_lock

impl RecordLock {
    /// Opens `path` (creating it) to lock byte `record` of it.
    pub fn open(path: &str, record: u32) -> Result<RecordLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening {path}"))?;
        Ok(RecordLock {
            file,
            record,
            name: format!("R{record}"),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn record(&self) -> u32 {
        self.record
    }

    // ANCHOR: setlkw
    /// Takes the record, waiting while another process holds it. Fails
    /// with `EDEADLK` when the kernel sees that waiting would never end:
    /// the holder is itself waiting, directly or not, for a lock we hold.
    pub fn lock(&self) -> Result<RecordGuard<'_>, Errno> {
        let range = self.range(libc::F_WRLCK);
        loop {
            match fcntl(self.file.as_fd(), FcntlArg::F_SETLKW(&range)) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(Errno::EDEADLK) => {
                    report(&format!("deadlock-detected on {}", self.name));
                    return Err(Errno::EDEADLK);
                }
                Err(e) => return Err(e),
            }
        }
        gate(&format!("took {}", self.name));
        Ok(RecordGuard { lock: self })
    }
    // ANCHOR_END: setlkw

    /// A `struct flock` for our byte: `kind` is F_WRLCK or F_UNLCK.
    fn range(&self, kind: libc::c_int) -> libc::flock {
        // SAFETY: struct flock is plain data; all zeroes is a valid value.
        let mut range: libc::flock = unsafe { std::mem::zeroed() };
        range.l_type = kind as libc::c_short;
        range.l_whence = libc::SEEK_SET as libc::c_short;
        range.l_start = libc::off_t::from(self.record);
        range.l_len = 1;
        range
    }
}

impl Drop for RecordGuard<'_> {
    fn drop(&mut self) {
        let range = self.lock.range(libc::F_UNLCK);
        // Unlocking never blocks; it can only fail on a bad descriptor.
        let _ = fcntl(self.lock.file.as_fd(), FcntlArg::F_SETLK(&range));
    }
}

/// Fails unless the two locks are different.
pub fn distinct(a: u32, b: u32) -> Result<()> {
    if a == b {
        bail!("the two locks must be different (both have rank {a})");
    }
    Ok(())
}
