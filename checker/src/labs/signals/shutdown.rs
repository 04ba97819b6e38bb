//! Graceful shutdown: SIGTERM with requests in hand (self-pipe and
//! signalfd), and Ctrl-C with a client still connected.

use super::*;

pub fn graceful_shutdown(run: &mut Run) -> Outcome {
    shutdown(run, "self-pipe")
}

pub fn shutdown_with_signalfd(run: &mut Run) -> Outcome {
    shutdown(run, "signalfd")
}

fn shutdown(run: &mut Run, mode: &str) -> Outcome {
    let mut server = start_server(run, mode)?;
    let n = run.rng.random_range(2..=3);
    let asked = requests(&mut run.rng, n);
    send_requests(run, &asked)?;
    let workers = workers_at_gate(run, &mut server, n)?;

    // SIGTERM while every request is in hand, and the server waits.
    kill(nix::unistd::Pid::from(server.pid), Signal::SIGTERM)
        .map_err(|e| Failure::internal(format!("kill: {e}")))?;
    // Let it take the signal: it goes on waiting for its workers, or it
    // exits (wrongly) now.
    let pid = server.pid;
    let taken = run.poll(Duration::from_secs(3), || {
        if let Ok(exit) = server.wait(Instant::now()) {
            return Some(Some(exit));
        }
        (!pending(pid, Signal::SIGTERM) && sleeping(pid)).then_some(None)
    });
    if taken.is_none() {
        return Err(run.timed_out("the server to take SIGTERM and wait for its workers"));
    }
    // A server that stops at once may still be on its way out.
    std::thread::sleep(Duration::from_millis(20));
    let ended = taken.flatten().or_else(|| server.wait(Instant::now()).ok());
    if let Some(exit) = ended {
        let said = error_line(run, server.pid)
            .map(|l| format!(" (`{l}`)"))
            .unwrap_or_default();
        let left = leftovers(run);
        let mut happened =
            format!("it ended with {exit}{said} while its {n} worker(s) still held requests");
        if !left.is_empty() {
            happened.push_str(&format!(", and left behind {}", left.join(" and ")));
        }
        let why = match exit {
            Exit::Code(0) => "on SIGTERM the server must stop taking new requests but finish the ones in hand: keep polling and reaping until no worker is left, then return from serve".to_string(),
            _ => why_it_ended(run, &server, exit, Signal::SIGTERM),
        };
        return Err(Failure::wrong(
            "the server to finish the requests in hand after SIGTERM, then exit 0",
            happened,
        )
        .because(why));
    }
    let alive = live_children(server.pid);
    if let Some(gone) = workers.iter().find(|w| !alive.contains(w)) {
        return Err(Failure::wrong(
            "the workers to go on with the requests in hand after SIGTERM",
            format!("worker {gone} was gone before the checker opened the gate"),
        )
        .because("SIGTERM went to the server only; a server that kills its workers on SIGTERM drops the requests in hand"));
    }

    // Open the gate: the workers answer and end.
    server.close_stdin();
    let lines: Vec<String> = run
        .rest(&mut server, "the replies, then the server's last line")
        .map_err(|f| explain_stuck(server.pid, f))?
        .into_iter()
        .map(|l| l.text)
        .collect();
    let exit = run.wait(&mut server)?;
    for (id, text) in &asked {
        let wanted = format!("reply {id} {}", reverse(text));
        if !lines.iter().any(|l| l.trim() == wanted) {
            return Err(Failure::wrong(
                format!("`{wanted}`: the request in hand answered after SIGTERM"),
                format!("no such line; the output was {:?}", lines),
            )
            .because("the server must keep its workers (and itself) running until every request in hand is answered"));
        }
    }
    if exit != Exit::Code(0) {
        let said = error_line(run, server.pid)
            .map(|l| format!(" (`{l}`)"))
            .unwrap_or_default();
        return Err(Failure::wrong(
            "the server to exit with status 0 once the requests in hand are answered",
            format!("it ended with {exit}{said}"),
        )
        .because(why_it_ended(run, &server, exit, Signal::SIGTERM)));
    }
    let left = leftovers(run);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no FIFO and no shared-memory object left once the server has exited",
            format!("it left behind {}", left.join(" and ")),
        )
        .because("the server must remove what it made when it stops: remove_file for the FIFO and shm_unlink for the status object, in `impl Drop for Server`. Both are names that outlive the process"));
    }
    let stray: Vec<Pid> = procfs::descendants(checker_pid())
        .iter()
        .map(|s| s.pid)
        .collect();
    if !stray.is_empty() {
        return Err(Failure::wrong(
            "no worker left once the server has exited",
            format!("processes {stray:?} are still there"),
        )
        .because("the server must wait for (reap) every worker before it exits"));
    }
    Ok(())
}

/// Ctrl-C (SIGINT) while a client is still connected: the checker holds
/// the FIFO open for writing all along, and sends one more request after
/// the signal. The server must finish the requests in hand, take no new
/// one, and exit although the FIFO still has a writer.
pub fn shutdown_while_connected(run: &mut Run) -> Outcome {
    let mut server = start_server(run, "self-pipe")?;
    let pid = server.pid;
    // The client connects, and stays.
    let path = run.sandbox.tmp.join("requests");
    let client = OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(&path)
        .map_err(|e| {
            Failure::wrong(
                "the server to hold its FIFO `requests` open for reading",
                format!("the checker could not open it for writing: {e}"),
            )
        })?;
    // Nothing to do yet: the server waits for a request or a signal.
    calls::expect_asleep_twice(run, pid, "the server", "a request or a signal")
        .map_err(|f| {
            f.hint("wait_readable must block in poll with no time-out (PollTimeout::NONE). A poll with a zero time-out in a loop, or a loop that checks a flag set by the handler, spins.")
        })?;

    let n = run.rng.random_range(2..=3);
    let asked = requests(&mut run.rng, n + 1);
    let (in_hand, late) = asked.split_at(n);
    write_all(run, &client, in_hand)?;
    let workers = workers_at_gate(run, &mut server, n)?;

    // One worker dies (the checker kills it) while the others still work:
    // the server must reap it and go back to waiting for requests and
    // signals, not wait for the workers still busy.
    let victim = workers[run.rng.random_range(0..workers.len())];
    kill(nix::unistd::Pid::from(victim), Signal::SIGKILL)
        .map_err(|e| Failure::internal(format!("kill({victim}): {e}")))?;
    let back = run.poll(Duration::from_secs(3), || {
        let reaped = !procfs::children(pid).contains(&victim);
        let call = calls::sleeping_in(pid);
        (reaped && call.is_some()).then_some(call)
    });
    match back.flatten() {
        Some(call @ ("wait4" | "waitid")) => {
            return Err(Failure::wrong(
                "the server to reap the worker the checker killed, then wait for requests and signals again",
                format!(
                    "it reaped worker {victim}, and now sleeps in {call}() while its other {} worker(s) still hold requests",
                    n - 1
                ),
            )
            .because("the reaping loop waits (a waitpid without WNOHANG) for workers that are still busy: until they end, the server serves nobody and takes no signal")
            .hint("In reap_children, call waitpid(-1, WNOHANG) and stop at StillAlive: reap only the children that have already ended."));
        }
        Some(_) => {}
        None => {
            if procfs::children(pid).contains(&victim) {
                return Err(Failure::wrong(
                    format!("worker {victim}, killed by the checker, to be reaped by the server"),
                    "it is still a zombie 3 s later",
                )
                .because("the server did not reap on SIGCHLD: the signal's handler must wake the main loop, which loops waitpid(-1, WNOHANG)"));
            }
        }
    }

    kill(nix::unistd::Pid::from(pid), Signal::SIGINT)
        .map_err(|e| Failure::internal(format!("kill: {e}")))?;
    let taken = run.poll(Duration::from_secs(3), || {
        if let Ok(exit) = server.wait(Instant::now()) {
            return Some(Some(exit));
        }
        (!pending(pid, Signal::SIGINT) && sleeping(pid)).then_some(None)
    });
    match taken {
        None => return Err(run.timed_out("the server to take SIGINT and wait for its workers")),
        Some(Some(exit)) => {
            return Err(Failure::wrong(
                "the server to finish the requests in hand after SIGINT (Ctrl-C), then exit 0",
                format!("it ended with {exit} while its {n} worker(s) still held requests"),
            )
            .because(why_it_ended(run, &server, exit, Signal::SIGINT)));
        }
        Some(None) => {}
    }

    // The client, still connected, sends one more request. It must stay
    // unread: the server takes no new work once told to stop.
    write_all(run, &client, late)?;
    let unread = late
        .iter()
        .map(|(id, t)| format!("{id} {t}\n").len())
        .sum::<usize>();
    let took_it = run.poll(Duration::from_secs(1), || {
        let more = live_children(pid).len() > n;
        (more || bytes_in(&client) < unread).then_some(())
    });
    let took_late = took_it.is_some();

    // Open the gate: the workers answer and end.
    server.close_stdin();
    let lines: Vec<String> = run
        .rest(&mut server, "the replies, then the server to exit (a client is still connected)")
        .map_err(|f| {
            let f = explain_stuck(pid, f);
            if f.why.is_none() && live_children(pid).is_empty() && sleeping(pid) {
                f.because("SIGINT was delivered and every worker has ended, yet the server goes on waiting: either it did not take SIGINT as a request to stop (Ctrl-C must stop it as SIGTERM does), or it waits for the client to close the FIFO (a client still connected must not keep it running)")
                    .hint("In serve, treat SIGINT like SIGTERM: stop taking requests, finish those in hand, then return.")
            } else {
                f
            }
        })?
        .into_iter()
        .map(|l| l.text)
        .collect();
    let exit = run.wait(&mut server)?;
    if exit != Exit::Code(0) {
        return Err(Failure::wrong(
            "the server to exit with status 0 once the requests in hand are answered",
            format!("it ended with {exit}"),
        )
        .because(why_it_ended(run, &server, exit, Signal::SIGINT)));
    }
    // Every request in hand answered, but the killed worker's.
    let answered = in_hand
        .iter()
        .filter(|(id, text)| {
            lines
                .iter()
                .any(|l| l.trim() == format!("reply {id} {}", reverse(text)))
        })
        .count();
    if answered + 1 < n {
        return Err(Failure::wrong(
            format!(
                "the {} requests in hand whose worker the checker did not kill answered after SIGINT",
                n - 1
            ),
            format!("{answered} answered; the output was {lines:?}"),
        ));
    }
    if took_late {
        let (id, _) = &late[0];
        return Err(Failure::wrong(
            format!("request {id}, sent after SIGINT, to stay unanswered: the server was stopping"),
            format!(
                "the server read it{}",
                if lines.iter().any(|l| l.starts_with(&format!("reply {id} "))) {
                    " and answered it"
                } else {
                    ""
                }
            ),
        )
        .because("after the signal to stop, the server went on reading the FIFO and took a new request: with clients that keep sending, it would never stop. Once stopping, wait for signals (the workers' SIGCHLD) only")
        .hint("In serve, once stopping, poll the signal descriptor alone: `wait_readable(&[signals.fd()])`."));
    }
    let left = leftovers(run);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no FIFO and no shared-memory object left once the server has exited",
            format!("it left behind {}", left.join(" and ")),
        ));
    }
    let stray: Vec<Pid> = procfs::descendants(checker_pid())
        .iter()
        .map(|s| s.pid)
        .collect();
    if !stray.is_empty() {
        return Err(Failure::wrong(
            "no worker left once the server has exited",
            format!("processes {stray:?} are still there"),
        ));
    }
    drop(client);
    Ok(())
}

/// Writes request lines on a descriptor the checker keeps open.
fn write_all(run: &Run, fifo: &std::fs::File, requests: &[(u64, String)]) -> Outcome {
    let text: String = requests
        .iter()
        .map(|(id, text)| format!("{id} {text}\n"))
        .collect();
    let bytes = text.as_bytes();
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(fifo, &bytes[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if Instant::now() < run.deadline => {
                run.pause(Duration::from_millis(10))
            }
            Err(e) => {
                return Err(Failure::wrong(
                    "to write the requests to `requests`",
                    format!("writing failed: {e}"),
                ));
            }
        }
    }
    run.activity.touch();
    Ok(())
}

/// Bytes waiting in the pipe (FIFO) behind `fd` (FIONREAD).
fn bytes_in(fd: &std::fs::File) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to `n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 { usize::MAX } else { n as usize }
}
