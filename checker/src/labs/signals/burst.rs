//! Many workers ending at once (one SIGCHLD for all), and a storm of
//! signals against the handler.

use super::*;

pub fn no_zombies_after_burst(run: &mut Run) -> Outcome {
    let mut server = start_server(run, "self-pipe")?;
    let n = run.rng.random_range(20..=28);
    let asked = requests(&mut run.rng, n);
    send_requests(run, &asked)?;
    let workers = workers_at_gate(run, &mut server, n)?;
    let server_pid = nix::unistd::Pid::from(server.pid);

    // Stop the server, let every worker end, then wake it: it gets one
    // SIGCHLD for all of them, since a pending signal is one bit.
    kill(server_pid, Signal::SIGSTOP).map_err(|e| Failure::internal(format!("kill: {e}")))?;
    let stopped = run.poll(Duration::from_secs(3), || {
        procfs::stat(server.pid)
            .is_some_and(|s| s.state == 'T')
            .then_some(())
    });
    if stopped.is_none() {
        let _ = kill(server_pid, Signal::SIGCONT);
        return Err(Failure::internal("the server did not stop on SIGSTOP"));
    }
    server.close_stdin();
    let all_ended = run.poll(Duration::from_secs(5), || {
        workers
            .iter()
            .all(|&w| procfs::stat(w).is_none_or(|s| s.is_zombie()))
            .then_some(())
    });
    let _ = kill(server_pid, Signal::SIGCONT);
    if all_ended.is_none() {
        return Err(run.timed_out("every worker to end once the gate opened"));
    }

    let mut replies = Vec::new();
    for _ in 0..n {
        replies.push(
            run.line(&mut server, &format!("{n} lines `reply ID TEXT`"))?
                .text,
        );
    }
    for (id, text) in &asked {
        let wanted = format!("reply {id} {}", reverse(text));
        if !replies.iter().any(|l| l.trim() == wanted) {
            return Err(Failure::wrong(
                format!("`{wanted}`"),
                format!("the replies were {replies:?}"),
            ));
        }
    }

    // Now every worker has ended: the server must reap them all, while it
    // keeps running.
    let reaped = run.poll(Duration::from_secs(3), || {
        procfs::children(server.pid).is_empty().then_some(())
    });
    if let Ok(exit) = server.wait(Instant::now()) {
        let said = error_line(run, server.pid)
            .map(|l| format!(" (`{l}`)"))
            .unwrap_or_default();
        return Err(Failure::wrong(
            "the server to keep running after its workers ended",
            format!("it ended with {exit}{said}"),
        )
        .because(why_it_ended(run, &server, exit, Signal::SIGCHLD)));
    }
    if reaped.is_none() {
        let zombies = zombie_children(server.pid);
        return Err(Failure::wrong(
            format!("all {n} workers reaped while the server still runs"),
            format!(
                "{} of them are still zombies 3 s later: {zombies:?}",
                zombies.len()
            ),
        )
        .because("signals do not queue: the server got one SIGCHLD for all its workers, and reaped only one child for it. On SIGCHLD, loop waitpid(-1, WNOHANG) until it reports StillAlive or ECHILD"));
    }

    kill(server_pid, Signal::SIGTERM).map_err(|e| Failure::internal(format!("kill: {e}")))?;
    let _ = run.rest(&mut server, "the server's last line")?;
    match run.wait(&mut server)? {
        Exit::Code(0) => {}
        other => {
            return Err(Failure::wrong(
                "the server to exit with status 0 on SIGTERM",
                format!("it ended with {other}"),
            )
            .because(why_it_ended(run, &server, other, Signal::SIGTERM)));
        }
    }
    let left = leftovers(run);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "nothing left once the server has exited",
            format!("it left behind {}", left.join(" and ")),
        ));
    }
    Ok(())
}

/// Sends SIGUSR1 to a process from a thread of its own until stopped.
struct Storm {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Storm {
    fn start(pid: Pid) -> Result<Storm, Failure> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::Builder::new()
                .name("storm".into())
                .spawn(move || {
                    let pid = nix::unistd::Pid::from(pid);
                    while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < 200_000 {
                        if kill(pid, Signal::SIGUSR1).is_err() {
                            return;
                        }
                        sent.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(20));
                    }
                })
        }
        .map_err(|e| Failure::internal(format!("starting the thread that sends signals: {e}")))?;
        Ok(Storm {
            stop,
            sent,
            thread: Some(thread),
        })
    }

    /// Stops sending; returns how many signals were sent.
    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop();
    }
}

const UNSAFE_HANDLER: &str = "the signal handler does work that is not async-signal-safe. It ran in the middle of the program's own println!, and printing (like allocating, or taking any lock) from the handler found stdout taken by the very code it interrupted. The handler may only add to an atomic and write one byte to the self-pipe (libc::write); print from the main loop";

pub fn signal_storm(run: &mut Run) -> Outcome {
    let lines: u64 = run.rng.random_range(20_000..=30_000);
    let mut storm = run.spawn("storm", &[lines.to_string()])?;
    let line = run.line(&mut storm, "the line `storm pid=P ready`")?.text;
    if Pid::field(&line, "pid") != Some(storm.pid) || !line.ends_with("ready") {
        return Err(Failure::wrong(
            format!("`storm pid={} ready`", storm.pid),
            format!("`{line}`"),
        ));
    }
    let mut sender = Storm::start(storm.pid)?;

    let mut expected = 0u64;
    loop {
        match storm.next_line(run.deadline) {
            Ok(Some(l)) => {
                let text = l.text;
                if text == format!("line {expected}") && expected < lines {
                    expected += 1;
                    continue;
                }
                if expected == lines && text.starts_with("storm done") {
                    break;
                }
                let sent = sender.stop();
                return Err(Failure::wrong(
                    if expected < lines {
                        format!("`line {expected}`")
                    } else {
                        "`storm done lines=N handled=H`".to_string()
                    },
                    format!(
                        "`{text}`, while the checker had sent {sent} SIGUSR1 so far{}",
                        if text.contains("line") {
                            ""
                        } else {
                            // The runner may put a panic in place of `why`.
                            ": not a line of the program's own, so the signal handler printed it"
                        }
                    ),
                )
                .because(if text.contains("line") {
                    "a line went missing or was cut: something written from the handler mixed with the program's own output".to_string()
                } else {
                    format!("the program printed something else: {UNSAFE_HANDLER}")
                }));
            }
            Ok(None) => {
                let sent = sender.stop();
                let exit = run.wait(&mut storm)?;
                let stderr = stderr_of(run, storm.pid);
                let mut f = Failure::wrong(
                    format!("{lines} lines while signals arrive"),
                    format!(
                        "the program ended with {exit} after `line {}`, while the checker had sent {sent} SIGUSR1",
                        expected.saturating_sub(1)
                    ),
                );
                if stderr.contains("cannot unwind")
                    || stderr.contains("already borrowed")
                    || stderr.contains("already mutably borrowed")
                    || exit == Exit::Signal(Signal::SIGABRT)
                {
                    // The runner puts a panic it finds on stderr in place
                    // of `why`: say the cause in what happened too.
                    f.happened.push_str(
                        ": the signal handler printed in the middle of the program's own \
                         println!, which held stdout",
                    );
                    f = f.because(UNSAFE_HANDLER).hint(
                        "The handler may only add to an atomic and write one byte to the \
                         self-pipe (libc::write); print from the main loop.",
                    );
                } else if exit == Exit::Signal(Signal::SIGUSR1) {
                    f = f.because("SIGUSR1 has no handler, so its default action killed the program: Signals::self_pipe must install on_signal for every signal it is given");
                } else if let Some(err) = error_line(run, storm.pid) {
                    f.happened.push_str(&format!(" (`{err}`)"));
                    if err.contains("EINTR") || err.contains("nterrupted") {
                        f = f.because("a system call interrupted by a signal (EINTR) was treated as an error: retry it");
                    }
                }
                return Err(f);
            }
            Err(_) => {
                let sent = sender.stop();
                return Err(run
                    .timed_out(&format!(
                        "{lines} lines (got {expected}) while the checker sent {sent} SIGUSR1"
                    ))
                    .because(format!("the program stopped making progress. If it is blocked on a futex, {UNSAFE_HANDLER}")));
            }
        }
    }
    let sent = sender.stop();
    if sent == 0 {
        return Err(Failure::internal("no signal could be sent"));
    }
    storm.close_stdin();
    run.expect_success(&mut storm)
}
