//! The scenarios of the string-reversing server and client.

use super::*;

// ---------------------------------------------------------------------------
// The scenarios.

pub(super) fn server_reverses(run: &mut Run) -> Outcome {
    let _server = start_server(run)?;
    let ids = fake_ids(&mut run.rng, 2);
    let mut clients = [
        FakeClient::new(&run.sandbox.tmp, ids[0])?,
        FakeClient::new(&run.sandbox.tmp, ids[1])?,
    ];
    for i in 0..6 {
        // The first text always holds a letter that takes two bytes.
        let text = if i == 0 {
            format!("{}ño{}", word(&mut run.rng), word(&mut run.rng))
        } else {
            phrase(&mut run.rng)
        };
        let client = &mut clients[i % 2];
        let reply = client
            .ask(&text, run.deadline)
            .map_err(|s| stuck(run, s, &text))?;
        if reply != reverse(&text) {
            return Err(wrong_reply(&text, &reply, &format!("client {}", client.id)));
        }
    }
    Ok(())
}

pub(super) fn client_asks_server(run: &mut Run) -> Outcome {
    let mut server = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let (mut client, pid) = start_client(run)?;
    let reply_path = run.sandbox.tmp.join(format!("reply-{pid}"));
    for _ in 0..3 {
        let text = phrase(&mut run.rng);
        client
            .write_stdin(format!("{text}\n").as_bytes())
            .map_err(|e| {
                Failure::wrong(
                    "the client to read its stdin",
                    format!("writing to it failed: {e}"),
                )
            })?;
        let Some(request) = server.next_line(run.deadline)? else {
            return Err(run.timed_out(&format!(
                "the client's request `{pid} {text}` on `requests`"
            )));
        };
        if request != format!("{pid} {text}") {
            let f = Failure::wrong(
                format!("the request `{pid} {text}`"),
                format!("`{}`", clip(&request)),
            );
            return Err(if request == text {
                f.because("a request starts with the client's pid and a space: the server finds the reply FIFO `reply-PID` from it")
            } else {
                f
            });
        }
        // Answer something the client cannot compute itself.
        let answer = reverse(&phrase(&mut run.rng));
        match send_line(&reply_path, &answer, run.deadline) {
            Ok(()) => {}
            Err(SendError::NoReader { .. }) => {
                return Err(run
                    .timed_out(&format!("the client to read its FIFO reply-{pid}"))
                    .because(
                        "after sending its request, the client must read its own reply FIFO",
                    ));
            }
            Err(SendError::Failed(why)) => {
                return Err(Failure::wrong(
                    format!("the client to read its reply on reply-{pid}"),
                    why,
                ));
            }
        }
        let line = run.line(&mut client, &format!("`reverse: {answer}`"))?.text;
        if line != format!("reverse: {answer}") {
            let f = Failure::wrong(
                format!("the client to print the server's answer, `reverse: {answer}`"),
                format!("`{line}`"),
            );
            return Err(if line == format!("reverse: {}", reverse(&text)) {
                f.because("the client printed a reverse it made itself: it must print what the server answered")
            } else if line.contains("end of file") {
                f.because(format!(
                    "the client met end of file on its reply FIFO: {EOF_WHY}"
                ))
            } else {
                f
            });
        }
    }
    client.close_stdin();
    run.expect_success(&mut client)?;
    if reply_path.exists() {
        return Err(Failure::wrong(
            format!("no `reply-{pid}` once the client has exited"),
            format!("`reply-{pid}` is still there"),
        )
        .because("the client must remove its reply FIFO when it ends (impl Drop for Client)"));
    }
    drop(server);
    Ok(())
}

/// Why a program is slow, from where it is right now.
pub(super) fn sleeping(pid: Pid) -> Option<&'static str> {
    let b = procfs::blocked(pid);
    let (nr, _) = b.syscall?;
    crate::diagnose::syscall_name(nr).filter(|n| matches!(*n, "nanosleep" | "clock_nanosleep"))
}

pub(super) fn too_slow(done: usize, took: Duration, who: &str, pid: Pid) -> Failure {
    let f = Failure::wrong(
        format!(
            "{ROUND_TRIPS} round trips in under {} ms (a correct {who} needs about 20 ms)",
            ROUND_TRIP_BUDGET.as_millis()
        ),
        format!(
            "after {} ms, {done} of the {ROUND_TRIPS} round trips were done",
            took.as_millis()
        ),
    );
    match sleeping(pid) {
        Some(call) => f.because(format!(
            "the {who} slept: the checker found it in {call}(). A sleep is not synchronisation: with a FIFO for requests and a FIFO for each client's replies, read() waits exactly as long as needed. Take the sleep out"
        )),
        None => f.because(format!("each round trip took the {who} far too long: does it wait for something other than the FIFO?")),
    }
}

pub(super) fn server_round_trips(run: &mut Run) -> Outcome {
    let server = start_server(run)?;
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut client = FakeClient::new(&run.sandbox.tmp, id)?;
    let texts: Vec<String> = (0..ROUND_TRIPS).map(|_| word(&mut run.rng)).collect();
    let began = Instant::now();
    let budget = (began + ROUND_TRIP_BUDGET).min(run.deadline);
    for (done, text) in texts.iter().enumerate() {
        match client.ask(text, budget) {
            Ok(reply) if reply == reverse(text) => {}
            Ok(reply) => return Err(wrong_reply(text, &reply, "the checker")),
            Err(Stuck::NoReply { .. } | Stuck::NoServer { existed: true }) => {
                return Err(too_slow(done, began.elapsed(), "server", server.pid));
            }
            Err(s) => return Err(stuck(run, s, text)),
        }
    }
    Ok(())
}

pub(super) fn client_round_trips(run: &mut Run) -> Outcome {
    let mut server = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let (mut client, pid) = start_client(run)?;
    let reply_path = run.sandbox.tmp.join(format!("reply-{pid}"));
    let texts: Vec<String> = (0..ROUND_TRIPS).map(|_| word(&mut run.rng)).collect();
    let typed: String = texts.iter().map(|t| format!("{t}\n")).collect();
    let began = Instant::now();
    client.write_stdin(typed.as_bytes()).map_err(|e| {
        Failure::wrong(
            "the client to read its stdin",
            format!("writing to it failed: {e}"),
        )
    })?;
    let budget = (began + ROUND_TRIP_BUDGET).min(run.deadline);
    for (done, text) in texts.iter().enumerate() {
        let Some(request) = server.next_line(budget)? else {
            return Err(too_slow(done, began.elapsed(), "client", client.pid));
        };
        if request != format!("{pid} {text}") {
            return Err(Failure::wrong(
                format!("the request `{pid} {text}`"),
                format!("`{}`", clip(&request)),
            ));
        }
        match send_line(&reply_path, &reverse(text), budget) {
            Ok(()) => {}
            Err(SendError::NoReader { .. }) => {
                return Err(too_slow(done, began.elapsed(), "client", client.pid));
            }
            Err(SendError::Failed(why)) => {
                return Err(Failure::wrong(
                    format!("the client to read reply-{pid}"),
                    why,
                ));
            }
        }
    }
    for text in &texts {
        let line = run
            .line(&mut client, "a `reverse: ...` line per text")?
            .text;
        if line != format!("reverse: {}", reverse(text)) {
            return Err(Failure::wrong(
                format!("`reverse: {}`", reverse(text)),
                format!("`{line}`"),
            ));
        }
    }
    client.close_stdin();
    run.expect_success(&mut client)
}

pub(super) fn end_cleans_up(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut client = FakeClient::new(&run.sandbox.tmp, id)?;
    for _ in 0..2 {
        let text = phrase(&mut run.rng);
        let reply = client
            .ask(&text, run.deadline)
            .map_err(|s| stuck(run, s, &text))?;
        if reply != reverse(&text) {
            return Err(wrong_reply(&text, &reply, "the checker"));
        }
    }
    stop_server(run, &mut server, id)?;
    expect_removed(run)?;
    drop(client);
    let left = fifos_in(&run.sandbox.tmp);
    if !left.is_empty() {
        return Err(Failure::wrong(
            "no FIFO left once the server has exited",
            format!("the directory still holds {left:?}"),
        ));
    }
    Ok(())
}

pub(super) fn stale_fifo(run: &mut Run) -> Outcome {
    let path = run.sandbox.tmp.join("requests");
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| Failure::internal(format!("mkfifo: {e}")))?;
    let mut server = match start_server(run) {
        Ok(server) => server,
        Err(f) if f.happened.contains("closed its output") => {
            let said = run
                .spawned
                .first()
                .map(|s| s.stderr.text())
                .unwrap_or_default();
            if said.contains(" panicked at ") {
                // The runner explains panics and todo!()s itself.
                return Err(f);
            }
            let exists = said.contains("exists") || said.contains("EEXIST");
            let error = said.lines().find(|l| l.starts_with("error:"));
            let f = Failure::wrong(
                "the server to start although a stale FIFO `requests` was left from an earlier run",
                match error {
                    Some(line) => format!("it exited: `{}`", clip(line)),
                    None => "it exited before `ready`".to_string(),
                },
            );
            return Err(f.because(if exists {
                "mkfifo failed with EEXIST because the stale FIFO of a crashed run was still there. A FIFO that exists and that nobody reads is stale: remove it and make it again"
            } else {
                "a server killed before it could clean up leaves its FIFO behind (stale); the next server must start anyway"
            }));
        }
        Err(f) => return Err(f),
    };
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut client = FakeClient::new(&run.sandbox.tmp, id)?;
    let text = phrase(&mut run.rng);
    let reply = client
        .ask(&text, run.deadline)
        .map_err(|s| stuck(run, s, &text))?;
    if reply != reverse(&text) {
        return Err(wrong_reply(&text, &reply, "the checker"));
    }
    stop_server(run, &mut server, id)?;
    expect_removed(run)
}

/// Resumes a stopped process group when dropped, whatever happened.
pub(super) struct Stopped(Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = killpg(nix::unistd::Pid::from(self.0), Signal::SIGCONT);
    }
}

pub(super) fn concurrent_clients(run: &mut Run) -> Outcome {
    let server = start_server(run)?;
    let n = 6;
    let ids = fake_ids(&mut run.rng, n);
    let mut clients: Vec<FakeClient> = ids
        .iter()
        .map(|&id| FakeClient::new(&run.sandbox.tmp, id))
        .collect::<Result<_, _>>()?;

    // Round 1: the server is stopped while every client sends, so the
    // requests wait in the FIFO together and one read() sees several.
    let texts: Vec<String> = clients
        .iter()
        .map(|c| {
            let max = max_text(c.id);
            let len = run.rng.random_range(max / 3..=max);
            long_text(&mut run.rng, len)
        })
        .collect();
    {
        killpg(nix::unistd::Pid::from(server.pid), Signal::SIGSTOP)
            .map_err(|e| Failure::internal(format!("SIGSTOP: {e}")))?;
        let _resume = Stopped(server.pid);
        let stopped = run.poll(Duration::from_secs(2), || {
            procfs::stat(server.pid)
                .filter(|s| matches!(s.state, 'T' | 't'))
                .map(|_| ())
        });
        if stopped.is_none() {
            if has_exited(server.pid) {
                return Err(Failure::wrong(
                    "the server to wait for requests",
                    "it has exited",
                ));
            }
            return Err(Failure::internal("the server did not stop on SIGSTOP"));
        }
        for (c, text) in clients.iter().zip(&texts) {
            c.send(text, run.deadline)
                .map_err(|s| stuck(run, s, text))?;
        }
    }
    let patience = (Instant::now() + Duration::from_secs(5)).min(run.deadline);
    for (c, text) in clients.iter_mut().zip(&texts) {
        let together = "six requests were waiting in the FIFO together, so one read() returned several requests (and part of the next): a request ends at its newline, so read up to it and keep the rest for the next request (BufReader::read_until)";
        match c.reply(patience) {
            Ok(reply) if reply == reverse(text) => {}
            Ok(reply) => {
                return Err(
                    wrong_reply(text, &reply, &format!("client {}", c.id)).because(together)
                );
            }
            Err(Stuck::NoReply { id }) => {
                let mut f = run.timed_out(&format!(
                    "the reply to client {id}'s request of {} bytes",
                    text.len()
                ));
                f.why = Some(together.to_string());
                return Err(f);
            }
            Err(s) => return Err(stuck(run, s, text)),
        }
    }

    // Round 2: all six at once, each in a thread of its own, ten requests each.
    let deadline = run.deadline;
    let mut plans: Vec<(FakeClient, Vec<String>)> = Vec::new();
    for c in clients {
        let max = max_text(c.id);
        let texts: Vec<String> = (0..10)
            .map(|_| {
                if run.rng.random_bool(0.5) {
                    phrase(&mut run.rng)
                } else {
                    let len = run.rng.random_range(1..=max);
                    long_text(&mut run.rng, len)
                }
            })
            .collect();
        plans.push((c, texts));
    }
    let handles: Vec<_> = plans
        .into_iter()
        .map(|(mut c, texts)| {
            std::thread::Builder::new().name("client".into()).spawn(
                move || -> Result<(), (Stuck, String, Option<String>)> {
                    for text in texts {
                        match c.ask(&text, deadline) {
                            Ok(reply) if reply == reverse(&text) => {}
                            Ok(reply) => {
                                return Err((Stuck::Broken(String::new()), text, Some(reply)));
                            }
                            Err(s) => return Err((s, text, None)),
                        }
                    }
                    Ok(())
                },
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::internal(format!("starting a client thread: {e}")))?;
    let mut first_problem = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => {
                first_problem.get_or_insert(problem);
            }
            Err(_) => return Err(Failure::internal("a client thread panicked")),
        }
    }
    match first_problem {
        None => Ok(()),
        Some((_, text, Some(reply))) => Err(wrong_reply(&text, &reply, "a client")),
        Some((s, text, None)) => Err(stuck(run, s, &text)),
    }
}

pub(super) fn replies_reach_their_client(run: &mut Run) -> Outcome {
    let mut server = start_server(run)?;
    // Only the behaviour counts here, not the FIFOs' names: the server and
    // the clients are both the student's.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(start_client_any_fifo(run)?);
    }
    // The checker's own request goes first, while every client is idle.
    let id = fake_ids(&mut run.rng, 1)[0];
    let mut own = FakeClient::new(&run.sandbox.tmp, id)?;
    let own_text = phrase(&mut run.rng);
    own.send(&own_text, run.deadline)
        .map_err(|s| stuck(run, s, &own_text))?;
    let own_reply = own
        .reply((Instant::now() + Duration::from_millis(1500)).min(run.deadline))
        .ok();

    let mut asked: Vec<(String, String)> =
        vec![(format!("the checker's client {id}"), own_text.clone())];
    for round in 0..3 {
        let texts: Vec<String> = clients
            .iter()
            .enumerate()
            .map(|(i, _)| format!("{}{round}{i}", phrase(&mut run.rng)))
            .collect();
        // Type into all three before reading any answer: they ask at once.
        for ((client, _), text) in clients.iter_mut().zip(&texts) {
            client
                .write_stdin(format!("{text}\n").as_bytes())
                .map_err(|e| {
                    Failure::wrong(
                        "the client to read its stdin",
                        format!("writing to it failed: {e}"),
                    )
                })?;
        }
        for ((_, pid), text) in clients.iter().zip(&texts) {
            asked.push((format!("client {pid}"), text.clone()));
        }
        for ((client, pid), text) in clients.iter_mut().zip(&texts) {
            let line = run
                .line(
                    client,
                    &format!("client {pid} to print `reverse: {}`", reverse(text)),
                )?
                .text;
            if line == format!("reverse: {}", reverse(text)) {
                continue;
            }
            let mut f = Failure::wrong(
                format!("client {pid} to print `reverse: {}`", reverse(text)),
                format!("it printed `{line}`"),
            );
            if let Some((whose, _)) = asked
                .iter()
                .find(|(_, t)| t != text && line == format!("reverse: {}", reverse(t)))
            {
                f.happened = format!("it printed `{line}`: the reply to {whose}");
                f = f.because(format!(
                    "client {pid} read the reply meant for another client: replies went to a FIFO that several clients read, and whoever reads first takes the reply. Each client needs its own reply FIFO, `reply-PID`"
                ));
            }
            return Err(f);
        }
    }
    // On a busy machine the reply may come late: it is in the FIFO then.
    let own_reply = match own_reply {
        Some(reply) => Some(reply),
        None => own.reply(run.deadline).ok(),
    };
    match own_reply {
        Some(reply) if reply == reverse(&own_text) => {}
        Some(reply) => return Err(wrong_reply(&own_text, &reply, "the checker")),
        None => {
            return Err(Failure::wrong(
                format!("the reply to the checker's request on its own FIFO reply-{id}"),
                "no reply came there",
            ));
        }
    }

    // `end` from one client stops the server; the others just leave.
    let (first, pid) = &mut clients[0];
    first.write_stdin(b"end\n").map_err(|e| {
        Failure::wrong(
            "the client to read its stdin",
            format!("writing to it failed: {e}"),
        )
    })?;
    let line = run.line(first, "`client pid=P stopped the server`")?.text;
    if !line.contains("stopped the server") {
        return Err(Failure::wrong(
            format!("client {pid} to print `client pid={pid} stopped the server`"),
            format!("`{line}`"),
        ));
    }
    match run.wait(&mut server)? {
        Exit::Code(0) => {}
        other => {
            return Err(Failure::wrong(
                "the server to exit with status 0 after `end`",
                format!("it ended with {other}"),
            ));
        }
    }
    expect_removed(run)?;
    for (client, pid) in &mut clients {
        client.close_stdin();
        run.expect_success(client)?;
        if run.sandbox.tmp.join(format!("reply-{pid}")).exists() {
            return Err(Failure::wrong(
                format!("no `reply-{pid}` once client {pid} has exited"),
                format!("`reply-{pid}` is still there"),
            )
            .because("the client must remove its reply FIFO when it ends (impl Drop for Client)"));
        }
    }
    Ok(())
}

pub(super) fn requests_stay_whole(run: &mut Run) -> Outcome {
    let mut server = Inbox::create(&run.sandbox.tmp.join("requests"))?;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(start_client(run)?);
    }
    // Four long texts per client, typed at once: the clients send while
    // the others send too.
    let mut todo: Vec<Vec<String>> = Vec::new();
    for (client, pid) in &mut clients {
        let max = max_text(*pid);
        let texts: Vec<String> = (0..4)
            .map(|_| {
                let len = run.rng.random_range(max / 2..=max);
                long_text(&mut run.rng, len)
            })
            .collect();
        let typed: String = texts.iter().map(|t| format!("{t}\n")).collect();
        client.write_stdin(typed.as_bytes()).map_err(|e| {
            Failure::wrong(
                "the client to read its stdin",
                format!("writing to it failed: {e}"),
            )
        })?;
        todo.push(texts);
    }
    let all: Vec<Vec<String>> = todo.clone();
    let mut next = vec![0usize; clients.len()];
    for _ in 0..all.iter().map(Vec::len).sum::<usize>() {
        let Some(request) = server.next_line(run.deadline)? else {
            return Err(run.timed_out("the clients' requests on `requests`"));
        };
        let parsed = request
            .split_once(' ')
            .and_then(|(p, t)| Some((p.parse::<u32>().ok()?, t)));
        let Some((k, text)) = parsed.and_then(|(p, t)| {
            let k = clients.iter().position(|(_, pid)| *pid == p)?;
            Some((k, t))
        }) else {
            return Err(mixed(&request));
        };
        let pid = clients[k].1;
        let Some(wanted) = all[k].get(next[k]) else {
            return Err(mixed(&request));
        };
        if text != wanted {
            return Err(mixed(&request));
        }
        next[k] += 1;
        send_line(
            &run.sandbox.tmp.join(format!("reply-{pid}")),
            &reverse(text),
            run.deadline,
        )
        .map_err(|_| run.timed_out(&format!("client {pid} to read its reply FIFO")))?;
    }
    for ((client, pid), texts) in clients.iter_mut().zip(&all) {
        for text in texts {
            let line = run
                .line(client, &format!("client {pid}'s `reverse: ...` lines"))?
                .text;
            if line != format!("reverse: {}", reverse(text)) {
                return Err(Failure::wrong(
                    format!("client {pid} to print `reverse: {}`", clip(&reverse(text))),
                    format!("`{}`", clip(&line)),
                ));
            }
        }
    }

    // One text too long for an atomic write, then a short one.
    let (client, pid) = &mut clients[0];
    let pid = *pid;
    let extra = run.rng.random_range(1..=40);
    let too_long = long_text(&mut run.rng, max_text(pid) + extra);
    let short = word(&mut run.rng);
    client
        .write_stdin(format!("{too_long}\n{short}\n").as_bytes())
        .map_err(|e| {
            Failure::wrong(
                "the client to read its stdin",
                format!("writing to it failed: {e}"),
            )
        })?;
    let Some(request) = server.next_line(run.deadline)? else {
        return Err(run.timed_out(&format!("client {pid}'s request `{pid} {short}`")));
    };
    if request.len() + 1 > PIPE_BUF {
        return Err(Failure::wrong(
            format!("client {pid} to refuse a text whose request would take more than PIPE_BUF ({PIPE_BUF}) bytes"),
            format!("it sent a request of {} bytes", request.len() + 1),
        )
        .because("only a write of at most PIPE_BUF bytes is atomic: a longer one may be split, and other clients' requests land in between. `send` must refuse it"));
    }
    if request != format!("{pid} {short}") {
        return Err(mixed(&request));
    }
    send_line(
        &run.sandbox.tmp.join(format!("reply-{pid}")),
        &reverse(&short),
        run.deadline,
    )
    .map_err(|_| run.timed_out(&format!("client {pid} to read its reply FIFO")))?;
    let line = run
        .line(client, "`refused: ...` for the text longer than PIPE_BUF")?
        .text;
    if !line.starts_with("refused:") {
        return Err(Failure::wrong(
            "`refused: ...` for the text longer than PIPE_BUF",
            format!("`{}`", clip(&line)),
        ));
    }
    let line = run
        .line(client, &format!("`reverse: {}`", reverse(&short)))?
        .text;
    if line != format!("reverse: {}", reverse(&short)) {
        return Err(Failure::wrong(
            format!("`reverse: {}`", reverse(&short)),
            format!("`{}`", clip(&line)),
        ));
    }
    for (client, _) in &mut clients {
        client.close_stdin();
        run.expect_success(client)?;
    }
    Ok(())
}

/// A request that is not one of the texts typed, whole.
pub(super) fn mixed(request: &str) -> Failure {
    Failure::wrong(
        "each request whole: `PID TEXT` with a text typed into that client",
        format!("a request of {} bytes that is not: `{}`", request.len(), clip(request)),
    )
    .because("requests got mixed: each one must go out in ONE write() of at most PIPE_BUF bytes (`write!` on a File may make several writes, and another client's bytes land in between)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn long_texts_fit_pipe_buf_exactly() {
        let mut rng = StdRng::seed_from_u64(3);
        for id in [5_000_000, 8_999_999] {
            let text = long_text(&mut rng, max_text(id));
            assert_eq!(format!("{id} {text}\n").len(), PIPE_BUF);
        }
        assert_eq!(long_text(&mut rng, 100).len(), 100);
    }

    #[test]
    fn reverses_characters() {
        assert_eq!(reverse("año x"), "x oña");
    }
}
