//! The unkind peers over message queues: clients that vanish before their
//! reply (a queue removed, a queue left full by a dead client), requests
//! and replies as large as the queue's message size with letters of
//! several bytes, requests back to back, and waiting measured.

use super::*;
use crate::peers::reversing::{self as rev};

/// Message queues, in the words of the shared peers.
static TRANSPORT: rev::Transport = rev::Transport {
    gone: &[
        (
            "ENOENT",
            "its reply queue was removed, so mq_open fails with ENOENT",
        ),
        (
            "EAGAIN",
            "its reply queue is full of replies nobody will read, so mq_send on a queue opened \
             with O_NONBLOCK fails with EAGAIN",
        ),
        (
            "request",
            "a request came without its client's pid (a client's bug: skip it, with a word on \
             stderr)",
        ),
    ],
    blocked: &[(
        "mq_timedsend",
        "it sends the reply on a queue opened without O_NONBLOCK, and the queue of a client \
         that is gone stays full: mq_send waits for room that never comes",
    )],
};

/// How a checker's client vanishes.
#[derive(Clone, Copy, PartialEq)]
enum Vanish {
    /// Its reply queue is removed, as a client's Drop does: ENOENT.
    Unlinks,
    /// It dies with its reply queue (capacity 1) full: EAGAIN, or a
    /// blocking send that never ends.
    LeavesFull,
    /// Its request has no pid (a client's bug), then it goes like `Unlinks`.
    Malformed,
}

/// A checker's client with its own reply queue, as the shared peers
/// drive it.
struct Peer {
    id: i32,
    name: String,
    queue: Mq,
    requests: Mq,
    request_name: String,
    gone: Vanish,
}

impl Peer {
    fn new(
        run: &mut Run,
        names: &mut Names,
        gone: Vanish,
        capacity: usize,
    ) -> Result<Peer, Failure> {
        let request_name = format!("{}requests", run.sandbox.ipc_prefix);
        let requests = open(&request_name, MQ_OFlag::O_WRONLY).map_err(|e| {
            Failure::wrong(
                format!("the request queue {request_name} to exist"),
                format!("mq_open says {e}"),
            )
        })?;
        let id = loop {
            let id = run.rng.random_range(100_000..4_000_000);
            let name = format!("{}reply-{id}", run.sandbox.ipc_prefix);
            if !names.0.contains(&name) {
                break id;
            }
        };
        let name = format!("{}reply-{id}", run.sandbox.ipc_prefix);
        names.0.push(name.clone());
        let capacity = if gone == Vanish::LeavesFull {
            1
        } else {
            capacity
        };
        let queue = create(
            &name,
            capacity,
            MESSAGE_SIZE,
            MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK,
        )?;
        Ok(Peer {
            id,
            name,
            queue,
            requests,
            request_name,
            gone,
        })
    }
}

impl rev::Client for Peer {
    fn who(&self) -> String {
        match self.gone {
            Vanish::Malformed => {
                format!("the checker's client {} (no pid in its request)", self.id)
            }
            _ => format!("the checker's client {}", self.id),
        }
    }

    fn send(
        &mut self,
        text: &str,
        _split: Option<(usize, Duration)>,
        until: Instant,
    ) -> Result<(), String> {
        let message = match self.gone {
            Vanish::Malformed => text.to_string(),
            _ => format!("{} {text}", self.id),
        };
        loop {
            match mq_send(self.requests.get(), message.as_bytes(), 0) {
                Ok(()) => return Ok(()),
                Err(Errno::EAGAIN | Errno::EINTR) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(Errno::EAGAIN) => {
                    return Err(format!(
                        "the request queue {} stayed full: nobody takes the requests out",
                        self.request_name
                    ));
                }
                Err(Errno::EMSGSIZE) => {
                    let size = mq_getattr(self.requests.get())
                        .map(|a| a.msgsize())
                        .unwrap_or(-1);
                    return Err(format!(
                        "mq_send of a request of {} bytes failed with EMSGSIZE: the request \
                         queue's message size is {size} bytes, smaller than a request may be \
                         (MESSAGE_SIZE, {MESSAGE_SIZE} bytes)",
                        message.len()
                    ));
                }
                Err(e) => return Err(format!("mq_send({}): {e}", self.request_name)),
            }
        }
    }

    fn reply(&mut self, until: Instant) -> Result<Option<String>, String> {
        loop {
            if let Some((m, _)) = try_receive(&self.queue) {
                return Ok(Some(String::from_utf8_lossy(&m).into_owned()));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn vanish(&mut self) {
        match self.gone {
            Vanish::Unlinks | Vanish::Malformed => {
                let _ = mq_unlink(self.name.as_str());
            }
            Vanish::LeavesFull => {
                let _ = mq_send(self.queue.get(), b"an old reply nobody read", 0);
            }
        }
    }
}

/// Sends `end` and expects the server to exit 0 and remove its queue.
fn end_and_clean(run: &Run, server: &mut Proc, peer: &Peer, names: &Names) -> Outcome {
    send(
        run,
        &peer.requests,
        &peer.request_name,
        format!("{} end", peer.id).as_bytes(),
        0,
    )?;
    expect_exit_0(run, server)?;
    let mine: Vec<String> = names
        .0
        .iter()
        .filter(|n| n.ends_with("requests"))
        .cloned()
        .collect();
    expect_nothing_left(
        run,
        &mine,
        "the server",
        "the server removes its request queue (mq_unlink) when it stops, e.g. in `impl Drop for Server`",
    )
}

fn start(run: &mut Run, names: &mut Names) -> Result<Proc, Failure> {
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    names.0.push(request_name.clone());
    let mut server = run.spawn("server", &[])?;
    server_ready(run, &mut server, &request_name)?;
    Ok(server)
}

pub(super) fn client_vanishes(run: &mut Run) -> Outcome {
    let mut names = Names(Vec::new());
    let mut server = start(run, &mut names)?;
    let mut removed = Peer::new(run, &mut names, Vanish::Unlinks, 2)?;
    let mut full = Peer::new(run, &mut names, Vanish::LeavesFull, 1)?;
    let mut malformed = Peer::new(run, &mut names, Vanish::Malformed, 2)?;
    let mut next = Peer::new(run, &mut names, Vanish::Unlinks, 2)?;
    rev::survives_vanishing(
        run,
        &TRANSPORT,
        &mut server,
        &mut [&mut removed, &mut malformed, &mut full],
        &mut next,
    )?;
    end_and_clean(run, &mut server, &next, &names)
}

pub(super) fn waiting_sleeps(run: &mut Run) -> Outcome {
    let mut names = Names(Vec::new());
    let mut server = start(run, &mut names)?;
    rev::idle_asleep(run, server.pid, "the server", "a request")?;
    let mut asker = Peer::new(run, &mut names, Vanish::Unlinks, 2)?;
    let text = rev::word(&mut run.rng);
    rev::ask(run, &mut asker, &text, PATIENCE)?;
    end_and_clean(run, &mut server, &asker, &names)?;
    drop(asker);

    // The client, waiting for a reply the checker holds back.
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let requests = create(
        &request_name,
        8,
        MESSAGE_SIZE,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
    )?;
    let (mut client, reply_name) = start_client(run, &mut names)?;
    let text = rev::word(&mut run.rng);
    let request = next_request(run, &mut client, &requests, &text)?;
    let _ = request;
    rev::idle_asleep(run, client.pid, "the client", "its reply")?;
    let answer = rev::word(&mut run.rng);
    answer_client(run, &mut client, &reply_name, &answer)?;
    client.close_stdin();
    expect_exit_0(run, &mut client)
}

/// Runs `client` and reads its first line; returns its reply queue's name.
fn start_client(run: &mut Run, names: &mut Names) -> Result<(Proc, String), Failure> {
    let mut client = run.spawn("client", &[])?;
    let reply_name = format!("{}reply-{}", run.sandbox.ipc_prefix, client.pid);
    names.0.push(reply_name.clone());
    line_within(
        run,
        &mut client,
        PATIENCE,
        "a line `client pid=P replies=NAME`",
    )?;
    Ok((client, reply_name))
}

/// Types `text` into the client and takes its request off the queue.
fn next_request(
    run: &Run,
    client: &mut Proc,
    requests: &Mq,
    text: &str,
) -> Result<String, Failure> {
    write_line(client, text)?;
    let Some((m, _)) = run.poll(PATIENCE, || try_receive(requests)) else {
        return Err(stalled(
            run,
            format!("the client's request for `{}`", rev::clip(text)),
            format!("nothing arrived within {} s", PATIENCE.as_secs()),
        ));
    };
    let m = String::from_utf8_lossy(&m).into_owned();
    let pid = client.pid;
    if m != format!("{pid} {text}") {
        return Err(Failure::wrong(
            format!("the request `{pid} {}`", rev::clip(text)),
            format!("`{}`", rev::clip(&m)),
        ));
    }
    Ok(m)
}

/// Sends `answer` to the client's reply queue and expects `reply: ANSWER`.
fn answer_client(run: &Run, client: &mut Proc, reply_name: &str, answer: &str) -> Outcome {
    let replies = open(reply_name, MQ_OFlag::O_WRONLY).map_err(|e| {
        Failure::wrong(
            format!("the client's reply queue {reply_name} while it waits"),
            format!("mq_open says {e}"),
        )
    })?;
    match mq_send(replies.get(), answer.as_bytes(), 0) {
        Ok(()) => {}
        Err(Errno::EMSGSIZE) => {
            let size = mq_getattr(replies.get()).map(|a| a.msgsize()).unwrap_or(-1);
            return Err(Failure::wrong(
                format!("the client's reply queue to take a reply of {} bytes", answer.len()),
                format!("mq_send failed with EMSGSIZE: its message size is {size} bytes"),
            )
            .because(format!(
                "the client made its reply queue with a message size of {size} bytes, smaller \
                 than a reply can be: a reply is as long as the request's text, up to \
                 MESSAGE_SIZE ({MESSAGE_SIZE}) bytes"
            ))
            .hint("create the reply queue with MESSAGE_SIZE as its message size, like the request queue"));
        }
        Err(e) => return Err(Failure::internal(format!("mq_send({reply_name}): {e}"))),
    }
    let line = line_within(run, client, PATIENCE, "a line `reply: ...`")?;
    if line != format!("reply: {answer}") {
        return Err(Failure::wrong(
            format!("`reply: {}`", rev::clip(answer)),
            format!("`{}`", rev::clip(&line)),
        ));
    }
    Ok(())
}

pub(super) fn full_size_messages(run: &mut Run) -> Outcome {
    let mut names = Names(Vec::new());
    let mut server = start(run, &mut names)?;
    let msg_max = limit("msg_max")? as usize;
    let n = 8.min(msg_max);
    let mut client = Peer::new(run, &mut names, Vanish::Unlinks, n)?;
    // Requests of exactly the queue's message size, letters of one, two
    // and three bytes among them.
    let max = MESSAGE_SIZE - format!("{} ", client.id).len();
    for _ in 0..2 {
        let text = rev::text(&mut run.rng, max);
        rev::ask(run, &mut client, &text, PATIENCE)?;
    }
    // Back to back, as many as the request queue holds.
    let texts: Vec<String> = (0..n)
        .map(|_| {
            let len = run.rng.random_range(1..=max);
            rev::text(&mut run.rng, len)
        })
        .collect();
    rev::back_to_back(run, server.pid, &mut client, &texts)?;
    end_and_clean(run, &mut server, &client, &names)?;
    drop(client);

    // The client: a reply as long as a message may be.
    let request_name = format!("{}requests", run.sandbox.ipc_prefix);
    let requests = create(
        &request_name,
        8,
        MESSAGE_SIZE,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
    )?;
    let (mut client, reply_name) = start_client(run, &mut names)?;
    let text = rev::text(&mut run.rng, 40);
    next_request(run, &mut client, &requests, &text)?;
    let answer = rev::text(&mut run.rng, MESSAGE_SIZE);
    answer_client(run, &mut client, &reply_name, &answer)?;
    client.close_stdin();
    expect_exit_0(run, &mut client)
}
