//! Priorities: creates the queue `jobs`, waits until standard input ends
//! (meanwhile, others send to the queue), then takes every message out and
//! prints it with its priority, in the order the kernel hands them out.
//!
//! Usage: `prio CAPACITY`; in another terminal, send messages to the queue.

use std::process::ExitCode;

use anyhow::Context;
use nix::mqueue::{MQ_OFlag, mq_unlink};
use queues::given::{self, MESSAGE_SIZE, ipc_name};
use queues::{create_queue, drain};

fn main() -> ExitCode {
    given::main_with(|| {
        let capacity: usize = given::args()
            .first()
            .context("usage: prio CAPACITY")?
            .parse()
            .context("CAPACITY must be a number")?;
        let name = ipc_name("jobs");
        let queue = create_queue(
            &name,
            capacity,
            MESSAGE_SIZE,
            MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
        )?;
        println!("ready queue={name}");
        given::hold();
        let received = drain(&queue);
        // Remove the queue whatever happened.
        mq_unlink(name.as_str()).with_context(|| format!("mq_unlink({name})"))?;
        for (priority, message) in received? {
            println!(
                "priority={priority} message={}",
                String::from_utf8_lossy(&message)
            );
        }
        Ok(())
    })
}
