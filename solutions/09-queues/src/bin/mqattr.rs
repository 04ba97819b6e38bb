//! Attributes and limits: prints the system's limits, creates a queue with
//! the capacity and message size asked for, shows its attributes, fills it
//! until the kernel says EAGAIN, and waits until standard input ends.
//!
//! Usage: `mqattr CAPACITY MESSAGE_SIZE`

use std::process::ExitCode;

use anyhow::Context;
use nix::mqueue::{MQ_OFlag, mq_unlink};
use queues::given::{self, ipc_name, mq_limit};
use queues::{create_queue, fill};

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args();
        let [capacity, size] = args.as_slice() else {
            anyhow::bail!("usage: mqattr CAPACITY MESSAGE_SIZE");
        };
        let capacity: usize = capacity.parse().context("CAPACITY must be a number")?;
        let size: usize = size.parse().context("MESSAGE_SIZE must be a number")?;
        println!(
            "limits msg_max={} msgsize_max={} queues_max={}",
            mq_limit("msg_max")?,
            mq_limit("msgsize_max")?,
            mq_limit("queues_max")?
        );
        let name = ipc_name("attributes");
        let queue = create_queue(
            &name,
            capacity,
            size,
            MQ_OFlag::O_RDWR | MQ_OFlag::O_NONBLOCK,
        )?;
        let shown = (|| {
            let attr = queue.attributes()?;
            println!(
                "created {name} maxmsg={} msgsize={} curmsgs={}",
                attr.maxmsg(),
                attr.msgsize(),
                attr.curmsgs()
            );
            let sent = fill(&queue, &vec![b'x'; size])?;
            println!("full after {sent} messages: mq_send said EAGAIN");
            given::hold();
            anyhow::Ok(())
        })();
        mq_unlink(name.as_str()).with_context(|| format!("mq_unlink({name})"))?;
        shown
    })
}
