//! The string-reversing server and its client over message queues.

use super::*;

// ---------------------------------------------------------------------
// The string-reversing server and its client.

/// Waits for `server ready ...` and opens the request queue for writing.
pub(super) fn server_ready(run: &Run, server: &mut Proc, requests: &str) -> Result<Mq, Failure> {
    let ready = match line_within(
        run,
        server,
        PATIENCE * 2,
        "a line `server ready ...` once the request queue exists",
    ) {
        Ok(line) => line,
        Err(f) => {
            if let Ok(Exit::Code(c)) = server.wait(Instant::now()) {
                return Err(Failure::wrong(
                    "the server to start and print `server ready ...`",
                    format!("it exited with status {c} first"),
                )
                .because("creating the request queue failed: see its error below. A queue from an earlier run that crashed may still exist: remove it (mq_unlink, ignoring ENOENT) before creating yours"));
            }
            return Err(f);
        }
    };
    if !ready.starts_with("server ready") {
        return Err(Failure::wrong(
            "a line `server ready ...`",
            format!("`{ready}`"),
        ));
    }
    open(requests, MQ_OFlag::O_WRONLY).map_err(|e| {
        Failure::wrong(
            format!("the request queue {requests} to exist once the server is ready"),
            format!("mq_open({requests}) says {e}"),
        )
        .because("the server creates the queue named `given::request_queue_name()` before it says it is ready")
    })
}

/// One client the checker plays: an id and its reply queue.
pub(super) struct FakeClient {
    pub(super) id: i32,
    pub(super) name: String,
    pub(super) queue: Mq,
}

pub(super) fn fake_clients(
    run: &mut Run,
    names: &mut Names,
    n: usize,
) -> Result<Vec<FakeClient>, Failure> {
    let msg_max = limit("msg_max")? as usize;
    let mut ids: Vec<i32> = Vec::new();
    while ids.len() < n {
        let id = run.rng.random_range(100_000..4_000_000);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut clients = Vec::new();
    for id in ids {
        let name = format!("{}reply-{id}", run.sandbox.ipc_prefix);
        names.0.push(name.clone());
        // Room for every reply of a round, should they all come here.
        let queue = create(
            &name,
            n.min(msg_max),
            MESSAGE_SIZE,
            MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
        )?;
        clients.push(FakeClient { id, name, queue });
    }
    Ok(clients)
}

/// Sends one request from each client, in a random order, then collects
/// the replies and checks each went to the client who asked.
pub(super) fn one_round(
    run: &mut Run,
    requests: &Mq,
    request_name: &str,
    clients: &[FakeClient],
) -> Outcome {
    let mut order: Vec<usize> = (0..clients.len()).collect();
    order.shuffle(&mut run.rng);
    let mut asked: HashMap<i32, String> = HashMap::new();
    for &i in &order {
        let text = word(&mut run.rng, 4, 30);
        let message = format!("{} {text}", clients[i].id);
        send(run, requests, request_name, message.as_bytes(), 0)?;
        asked.insert(clients[i].id, text);
    }
    let mut got: HashMap<i32, Vec<String>> = HashMap::new();
    let mut count = 0;
    run.poll(PATIENCE * 2, || {
        for c in clients {
            while let Some((m, _)) = try_receive(&c.queue) {
                got.entry(c.id)
                    .or_default()
                    .push(String::from_utf8_lossy(&m).into_owned());
                count += 1;
            }
        }
        (count >= clients.len()).then_some(())
    });
    // A reply in another client's queue first: that is the diagnosis.
    for c in clients {
        for m in got.get(&c.id).into_iter().flatten() {
            if let Some((other, text)) = asked
                .iter()
                .find(|(id, t)| **id != c.id && reversed(t) == *m)
            {
                return Err(Failure::wrong(
                    format!("the reply to client {other}'s `{text}` in client {other}'s queue"),
                    format!("`{m}` arrived in the queue of client {} ({})", c.id, c.name),
                )
                .because(
                    "the server sent a reply to the wrong client: every reply must go to the queue named after \
                     the pid in *that* request (`reply_queue_name(pid)`), opened for that reply. One shared reply \
                     queue, or the queue of the first client kept open, mixes up the clients",
                ));
            }
        }
    }
    for c in clients {
        let want = reversed(&asked[&c.id]);
        match got.get(&c.id).map(Vec::as_slice) {
            Some([m]) if *m == want => {}
            Some(ms) if !ms.is_empty() => {
                return Err(Failure::wrong(
                    format!("one reply `{want}` to client {}'s `{}`", c.id, asked[&c.id]),
                    format!("its queue got {}", ms.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")),
                )
                .because("the reply is the request's text (after the pid and one space) reversed, by characters"));
            }
            _ => {
                return Err(stalled(
                    run,
                    format!("a reply to client {}'s `{}` in its queue {}", c.id, asked[&c.id], c.name),
                    format!("nothing arrived there within {} s", (PATIENCE * 2).as_secs()),
                )
                .because("the server must answer each request on the queue `reply_queue_name(pid)`, pid being the number before the first space of the request"));
            }
        }
    }
    Ok(())
}

pub(super) fn reverse_server(run: &mut Run) -> Outcome {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let mut names = Names(vec![request_name.clone()]);
    let mut server = run.spawn("server", &[])?;
    let requests = server_ready(run, &mut server, &request_name)?;
    let n = run.rng.random_range(3..=5);
    let clients = fake_clients(run, &mut names, n)?;
    for _ in 0..3 {
        one_round(run, &requests, &request_name, &clients)?;
    }
    send(
        run,
        &requests,
        &request_name,
        format!("{} end", clients[0].id).as_bytes(),
        0,
    )?;
    expect_exit_0(run, &mut server)
}

pub(super) fn server_end_unlinks(run: &mut Run) -> Outcome {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let mut names = Names(vec![request_name.clone()]);
    // What a crashed server leaves: its queue, with a request in it.
    {
        let stale = create(&request_name, 4, MESSAGE_SIZE, MQ_OFlag::O_WRONLY)?;
        let _ = mq_send(stale.get(), b"1 stale request", 0);
    }
    let mut server = run.spawn("server", &[])?;
    let requests = server_ready(run, &mut server, &request_name)?;
    let clients = fake_clients(run, &mut names, 1)?;
    one_round(run, &requests, &request_name, &clients)?;
    let client = &clients[0];
    send(
        run,
        &requests,
        &request_name,
        format!("{} end", client.id).as_bytes(),
        0,
    )?;
    drop(requests);
    match exit_within(run, &mut server, PATIENCE)? {
        Exit::Code(0) => {}
        other => {
            return Err(Failure::wrong(
                "the server to stop with status 0 at `end`",
                format!("it ended with {other}"),
            ));
        }
    }
    if let Some((m, _)) = try_receive(&client.queue) {
        return Err(Failure::wrong(
            "no reply to `end`",
            format!("the client's queue got `{}`", String::from_utf8_lossy(&m)),
        )
        .because("`end` stops the server; it is not a word to reverse"));
    }
    let mine: Vec<String> = names
        .0
        .iter()
        .filter(|n| **n != client.name)
        .cloned()
        .collect();
    expect_nothing_left(
        run,
        &mine,
        "the server",
        "the server removes its request queue (mq_unlink) when it stops, e.g. in `impl Drop for Server`",
    )
}

pub(super) fn reverse_client(run: &mut Run) -> Outcome {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let mut names = Names(vec![request_name.clone()]);
    let requests = create(
        &request_name,
        8,
        MESSAGE_SIZE,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
    )?;
    let mut client = run.spawn("client", &[])?;
    let pid = client.pid;
    let reply_name = format!("{}reply-{pid}", run.sandbox.ipc_prefix);
    names.0.push(reply_name.clone());
    let first = line_within(
        run,
        &mut client,
        PATIENCE * 2,
        "a line `client pid=P replies=NAME`",
    )?;
    if Pid::field(&first, "pid") != Some(pid) {
        return Err(Failure::wrong(
            format!("a line `client pid={pid} replies={reply_name}`"),
            format!("`{first}`"),
        ));
    }
    if !exists(&reply_name) {
        return Err(Failure::wrong(
            format!("the client's reply queue {reply_name} to exist before it asks anything"),
            "there is no such queue".to_string(),
        )
        .because("the client creates its reply queue, named `reply_queue_name(its pid)`, in `Client::connect`"));
    }
    let rounds = run.rng.random_range(3..=5);
    for _ in 0..rounds {
        let text = format!(
            "{} {}",
            word(&mut run.rng, 3, 12),
            word(&mut run.rng, 3, 12)
        );
        write_line(&mut client, &text)?;
        let Some((m, _)) = run.poll(PATIENCE * 2, || try_receive(&requests)) else {
            return Err(stalled(
                run,
                format!("the request for `{text}` in the queue {request_name}"),
                format!("nothing arrived within {} s", (PATIENCE * 2).as_secs()),
            ));
        };
        let m = String::from_utf8_lossy(&m).into_owned();
        if m != format!("{pid} {text}") {
            return Err(
                Failure::wrong(format!("the request `{pid} {text}`"), format!("`{m}`"))
                    .because("a request is the client's own pid, one space, and the line"),
            );
        }
        // Not the reversal: the client must print what the server said.
        let answer = word(&mut run.rng, 6, 20);
        let replies = open(&reply_name, MQ_OFlag::O_WRONLY).map_err(|e| {
            Failure::wrong(
                format!("the client's reply queue {reply_name} while it waits"),
                format!("mq_open says {e}"),
            )
        })?;
        send(run, &replies, &reply_name, answer.as_bytes(), 0)?;
        let line = line_within(
            run,
            &mut client,
            PATIENCE * 2,
            &format!("a line `reply: {answer}`"),
        )?;
        if line != format!("reply: {answer}") {
            return Err(Failure::wrong(format!("`reply: {answer}`"), format!("`{line}`"))
                .because("the client prints what came back in its reply queue (the checker, as the server, answered with a word of its own)"));
        }
    }
    client.close_stdin();
    rest_within(
        run,
        &mut client,
        PATIENCE,
        "the client to finish once its input ends",
    )?;
    expect_exit_0(run, &mut client)?;
    let reply_only = vec![reply_name];
    expect_nothing_left(
        run,
        &reply_only,
        "the client",
        "the client removes its reply queue (mq_unlink) when it is done, e.g. in `impl Drop for Client`",
    )
}
