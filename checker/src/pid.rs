//! A process id, one type across the checker: `procfs` reads them,
//! `process` starts them, `diagnose`, `stuck` and `monitor` describe them,
//! `sandbox` kills them, and the labs compare them with what programs
//! print. Conversions happen at the edges only: from what `/proc` and a
//! program print ([`FromStr`], [`Pid::field`]), from `std`'s `u32`
//! ([`Pid::of_child`]), to nix's and libc's for system calls.

use std::fmt;
use std::str::FromStr;

/// A process id as the kernel numbers them (`pid_t`). Any value the
/// kernel may write is allowed: `/proc/locks` shows -1 for a lock no
/// process owns. It prints as the bare number, in `{}` and `{:?}` alike,
/// so that messages read as they would with an integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(libc::pid_t);

impl Pid {
    pub const fn from_raw(raw: libc::pid_t) -> Pid {
        Pid(raw)
    }

    pub const fn as_raw(self) -> libc::pid_t {
        self.0
    }

    /// The checker's own.
    pub fn this() -> Pid {
        nix::unistd::getpid().into()
    }

    /// A child `std::process` started (its `id()` is a `u32`, the kernel's
    /// is a positive `pid_t`).
    pub fn of_child(child: &std::process::Child) -> Pid {
        Pid(libc::pid_t::try_from(child.id()).expect("the kernel's pids fit a pid_t"))
    }

    /// The value of `key=N` in a line a program printed (`pid=123`), if
    /// it is there and is a number a pid can be.
    pub fn field(line: &str, key: &str) -> Option<Pid> {
        crate::scenario::field_num(line, key).and_then(|n| libc::pid_t::try_from(n).ok().map(Pid))
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `/proc` prints: a decimal number.
impl FromStr for Pid {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Pid, Self::Err> {
        s.parse().map(Pid)
    }
}

impl From<Pid> for nix::unistd::Pid {
    fn from(pid: Pid) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(pid.0)
    }
}

impl From<nix::unistd::Pid> for Pid {
    fn from(pid: nix::unistd::Pid) -> Pid {
        Pid(pid.as_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_prints_as_the_number() {
        let pid: Pid = "4242".parse().unwrap();
        assert_eq!(pid, Pid::from_raw(4242));
        assert_eq!(format!("{pid} {pid:?} {:?}", [pid]), "4242 4242 [4242]");
        assert_eq!(
            Pid::field("worker pid=17 done", "pid"),
            Some(Pid::from_raw(17))
        );
        assert_eq!(Pid::field("pid=99999999999", "pid"), None);
        assert_eq!(nix::unistd::Pid::from(pid).as_raw(), 4242);
        assert_eq!(Pid::this(), Pid::from(nix::unistd::getpid()));
    }
}
