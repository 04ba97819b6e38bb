//! Waits for the named segment's message, prints it, and removes the
//! segment.
//!
//! Usage: `reader` (after `writer TEXT`, or before it: it waits up to 10 s
//! for the message once the segment exists).

use std::process::ExitCode;
use std::time::Duration;

use shared_memory::given;
use shared_memory::receive;

fn main() -> ExitCode {
    given::main_with(|| {
        let name = given::ipc_name("message");
        let data = receive(&name, Duration::from_secs(10))?;
        println!(
            "read {} bytes: {}",
            data.len(),
            String::from_utf8_lossy(&data)
        );
        Ok(())
    })
}
