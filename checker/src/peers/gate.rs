//! A "stop it here" gate inside a given program.
//!
//! Some races happen between two stores a program makes without any system
//! call in between (a flag set before the data, a slot freed before it is
//! copied): no signal can stop the program there on purpose. So the given
//! code of such a lab calls `given::pause_point(NAME)` at the dangerous
//! moment (halfway through copying a message). When the socket `NAME.gate`
//! exists in the program's directory, `pause_point` connects to it and
//! waits until the checker closes the connection; otherwise (run by hand,
//! or once the checker has removed the gate) it returns at once.
//!
//! The checker listens on the socket: it learns exactly which process
//! reached the gate (SO_PEERCRED), looks at the shared memory while that
//! process is held in the middle of its copy, then lets it go.

use crate::pid::Pid;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::scenario::{Failure, Run};

/// The checker's end of a gate.
pub struct Gate {
    listener: UnixListener,
    path: PathBuf,
    /// The processes held at the gate now, each by its connection.
    held: Vec<(UnixStream, Pid)>,
    /// Every process that ever reached the gate.
    pub reached: Vec<Pid>,
}

impl Gate {
    /// Opens the gate `name` in the scenario's directory: from now on, the
    /// program's processes stop at `pause_point(name)`.
    pub fn open(run: &Run, name: &str) -> Result<Gate, Failure> {
        let path = run
            .sandbox
            .tmp
            .join(format!("{name}{}", lab_program::env::GATE_SUFFIX));
        let listener = UnixListener::bind(&path)
            .map_err(|e| Failure::internal(format!("binding {}: {e}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Failure::internal(format!("non-blocking gate: {e}")))?;
        Ok(Gate {
            listener,
            path,
            held: Vec::new(),
            reached: Vec::new(),
        })
    }

    /// Takes in every process that arrived since the last look; returns
    /// the pids of those held now.
    pub fn held(&mut self) -> Vec<Pid> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let pid = peer_pid(&stream).unwrap_or(Pid::from_raw(-1));
                    self.reached.push(pid);
                    self.held.push((stream, pid));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.held.iter().map(|h| h.1).collect()
    }

    /// Waits until a process is held at the gate (`Some(pid)`), or `done()`
    /// says none will come (`None`), or `within` passes (`None`).
    pub fn wait_for_one(
        &mut self,
        run: &Run,
        within: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Option<Pid> {
        run.poll(within, || {
            if let Some(&pid) = self.held().first() {
                return Some(Some(pid));
            }
            done().then_some(None)
        })
        .flatten()
    }

    /// Lets every held process but `keep` go on at once; returns the pids
    /// that were let through.
    pub fn pass_all_but(&mut self, run: &Run, keep: Pid) -> Vec<Pid> {
        self.held();
        let passed: Vec<Pid> = self
            .held
            .iter()
            .map(|h| h.1)
            .filter(|&pid| pid != keep)
            .collect();
        if !passed.is_empty() {
            self.held.retain(|h| h.1 == keep);
            run.activity.touch();
        }
        passed
    }

    /// Lets every held process go, and removes the gate: no process stops
    /// there any more.
    pub fn release_all(&mut self, run: &Run) {
        // The name first, so that nobody connects once we let go.
        let _ = std::fs::remove_file(&self.path);
        self.held();
        self.held.clear();
        run.activity.touch();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The pid of the process at the other end of a Unix socket.
pub fn peer_pid(stream: &UnixStream) -> Option<Pid> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for getsockopt to write.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(Pid::from_raw(cred.pid))
}
