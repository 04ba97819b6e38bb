//! socketpair and passing descriptors.

use super::*;

/// The sockets a process holds beyond fds 0, 1 and 2: (fd, socket:[inode]).
pub(super) fn sockets(pid: Pid) -> Vec<(i32, String)> {
    procfs::fds(pid)
        .into_iter()
        .filter(|(fd, t)| *fd > 2 && t.starts_with("socket:"))
        .collect()
}

pub(super) fn describe(socks: &[(i32, String)]) -> String {
    if socks.is_empty() {
        return "no socket".into();
    }
    socks
        .iter()
        .map(|(fd, t)| format!("fd {fd} ({t})"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn socketpair_parent_child(run: &mut Run) -> Outcome {
    let mut p = run.spawn("pair", &[])?;
    let parent = p.pid;
    let first = line_within(run, &mut p, PATIENCE, "a line `parent pid=P child=C`")?;
    let Some(child) = Pid::field(&first, "child") else {
        return Err(Failure::wrong(
            "a line `parent pid=P child=C`",
            format!("`{first}`"),
        ));
    };
    match procfs::stat(child) {
        Some(s) if s.ppid == parent && child != parent => {}
        _ => {
            return Err(Failure::wrong(
                format!("the child {child} to be a live child of the program ({parent})"),
                "it is not",
            ));
        }
    }
    // Both wait for input now: the parent on its stdin, the child on its
    // socket. Their descriptor tables are final.
    let reading = |pid: Pid| {
        procfs::blocked(pid).syscall.is_some_and(|(nr, _)| {
            matches!(syscall_name(nr), Some("read" | "recvfrom" | "recvmsg"))
        })
    };
    if run
        .poll(PATIENCE, || {
            (reading(parent) && reading(child)).then_some(())
        })
        .is_none()
    {
        return Err(run.timed_out("the parent and the child to wait for input"));
    }
    let (ps, cs) = (sockets(parent), sockets(child));
    let shape = format!(
        "the parent holds {}; the child holds {}",
        describe(&ps),
        describe(&cs)
    );
    let shared: Vec<&String> = ps
        .iter()
        .map(|(_, t)| t)
        .filter(|t| cs.iter().any(|(_, u)| u == *t))
        .collect();
    if cs.len() > 1 || ps.len() > 1 || !shared.is_empty() {
        let who = if cs.len() > 1 || (!shared.is_empty() && cs.len() >= ps.len()) {
            "the child"
        } else {
            "the parent"
        };
        return Err(
            Failure::wrong("one end of the socket pair in each process", shape).because(format!(
                "{who} holds both ends of the pair: after fork each process must drop the end it \
             does not use. A child that keeps the parent's end never reads end of file when the \
             parent closes its own: it waits for itself"
            )),
        );
    }
    if cs.len() != 1 || ps.len() != 1 {
        return Err(Failure::wrong(
            "one end of the socket pair in each process",
            shape,
        ));
    }

    let n = run.rng.random_range(4..=8);
    for i in 0..n {
        let k = run.rng.random_range(1..=4);
        let request = format!("{} {i}", words(&mut run.rng, k));
        p.write_stdin(format!("{request}\n").as_bytes())
            .map_err(|e| {
                Failure::wrong(
                    "the parent to read its stdin",
                    format!("writing to it failed: {e}"),
                )
            })?;
        let wanted = format!("reply: {}", reverse(&request));
        let line = line_within(run, &mut p, PATIENCE, &format!("`{wanted}`"))?;
        if line != wanted {
            return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
        }
    }
    p.close_stdin();
    let wanted = format!("parent: child {child} exited with 0");
    let line = line_within(run, &mut p, PATIENCE, &format!("`{wanted}`")).map_err(|f| {
        f.because(
            "the parent closes its end; the child's read then returns end of file, unless some \
             process (the child itself?) still holds the parent's end",
        )
    })?;
    if line != wanted {
        return Err(Failure::wrong(format!("`{wanted}`"), format!("`{line}`")));
    }
    match exit_within(run, &mut p, PATIENCE, "exit")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "the program to exit with status 0",
            format!("it ended with {other}"),
        )),
    }
}

pub(super) fn pass_a_descriptor(run: &mut Run) -> Outcome {
    let size = run.rng.random_range(2000..8000);
    let mut data = vec![0u8; size];
    run.rng.fill(&mut data[..]);
    let skip = run.rng.random_range(1..size - 1);
    let file = run.sandbox.tmp.join("data.bin");
    std::fs::write(&file, &data).map_err(Failure::internal)?;
    let file_meta = std::fs::metadata(&file).map_err(Failure::internal)?;
    let listener =
        UnixListener::bind(run.sandbox.tmp.join("fd.sock")).map_err(Failure::internal)?;
    let args: Vec<String> = ["send", "fd.sock", "data.bin"]
        .map(String::from)
        .into_iter()
        .chain([skip.to_string()])
        .collect();
    let mut p = run.spawn("fdpass", &args)?;
    let stream = accept_from(run, &listener, &mut p, "fd.sock")?;

    // Receive the payload and any descriptor that comes with it.
    let t = until(run, PATIENCE);
    let mut buf = [0u8; 256];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (bytes, fds) = loop {
        let left = t.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(run.timed_out("a message with a descriptor on fd.sock"));
        }
        let _ = stream.set_read_timeout(Some(left));
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: the kernel installed them in the checker's
                            // table just now; nothing else owns them.
                            fds.extend(
                                raw.into_iter()
                                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                            );
                        }
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(Failure::internal(format!("recvmsg: {e}"))),
        }
    };
    let got = String::from_utf8_lossy(&buf[..bytes]).into_owned();
    let Some(fd) = fds.into_iter().next() else {
        let f = Failure::wrong(
            "a descriptor in an SCM_RIGHTS control message on fd.sock",
            if bytes == 0 {
                "the program closed the connection without sending anything".to_string()
            } else {
                format!(
                    "{bytes} bytes of plain data ({:?}) and no descriptor",
                    got.trim_end()
                )
            },
        );
        return Err(f.because(
            "the descriptor must travel as ancillary data (sendmsg with ControlMessage::ScmRights): \
             a descriptor's number means nothing in another process, and plain bytes carry no \
             descriptor. The kernel copies the open file itself into the receiver's table",
        ));
    };
    let mut received = std::fs::File::from(fd);
    let meta = received.metadata().map_err(Failure::internal)?;
    if (meta.dev(), meta.ino()) != (file_meta.dev(), file_meta.ino()) {
        return Err(Failure::wrong(
            "a descriptor of data.bin",
            format!("a descriptor of another file (inode {})", meta.ino()),
        ));
    }
    let mut rest = Vec::new();
    received.read_to_end(&mut rest).map_err(Failure::internal)?;
    if rest != data[skip..] {
        let f = Failure::wrong(
            format!(
                "reading through the received descriptor to give the last {} bytes of data.bin, from byte {skip} where the program stopped reading",
                size - skip
            ),
            format!("it gave {} bytes", rest.len()),
        );
        return Err(if rest == data {
            f.because(
                "the descriptor starts at byte 0: it is a new open of the file, not the program's \
                 own open file. A passed descriptor shares the open file, offset included",
            )
        } else {
            f
        });
    }
    match exit_within(run, &mut p, PATIENCE, "exit")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "fdpass to exit with status 0",
            format!("it ended with {other}"),
        )),
    }
}

pub(super) fn receive_a_descriptor(run: &mut Run) -> Outcome {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Failure::internal)?;
    let listener =
        UnixListener::bind(run.sandbox.tmp.join("fd.sock")).map_err(Failure::internal)?;
    let mut p = run.spawn("fdpass", &["recv".to_string(), "fd.sock".to_string()])?;
    let stream = accept_from(run, &listener, &mut p, "fd.sock")?;
    let token = format!(
        "token {:016x} for {}",
        run.rng.random::<u64>(),
        words(&mut run.rng, 2)
    );
    let payload = format!("{token}\n");
    let fds = [write_end.as_raw_fd()];
    let control = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload.as_bytes())];
    let _ = stream.set_write_timeout(Some(PATIENCE));
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(Failure::wrong(
                    "fdpass to wait for a descriptor on its connection",
                    format!("sending it failed: {e}"),
                ));
            }
        }
    };
    if sent < payload.len() {
        let mut s = &stream;
        let _ = s.write_all(&payload.as_bytes()[sent..]);
    }
    // Only the program's copy of the write end is left.
    drop(write_end);

    // Read the pipe until end of file, within the deadline.
    let mut pipe = std::fs::File::from(read_end);
    let flags =
        nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_GETFL).map_err(Failure::internal)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(Failure::internal)?;
    let t = until(run, PATIENCE);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                if Instant::now() >= t {
                    return Err(run.timed_out(
                        "the line to arrive through the pipe and the program to close its end",
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(Failure::internal(e)),
        }
    }
    let got = String::from_utf8_lossy(&got).into_owned();
    if got != payload {
        return Err(Failure::wrong(
            format!("`{token}` and a newline through the pipe whose write end the checker sent"),
            if got.is_empty() {
                "nothing came through the pipe".to_string()
            } else {
                format!("{:?}", got)
            },
        )
        .because(
            "write the line through the descriptor that came in the SCM_RIGHTS control message: \
             the checker holds the pipe's read end, and nothing else reaches that pipe",
        ));
    }
    match exit_within(run, &mut p, PATIENCE, "exit")? {
        Exit::Code(0) => Ok(()),
        other => Err(Failure::wrong(
            "fdpass to exit with status 0",
            format!("it ended with {other}"),
        )),
    }
}
