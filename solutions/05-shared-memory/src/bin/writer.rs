//! Writes TEXT into a new named shared memory segment and exits, leaving
//! the segment for a reader.
//!
//! Usage: `writer TEXT`

use std::process::ExitCode;

use shared_memory::given;
use shared_memory::publish;

fn main() -> ExitCode {
    given::main_with(|| {
        let text = given::args("writer TEXT", 1)?.join(" ");
        let name = given::ipc_name("message");
        publish(&name, text.as_bytes())?;
        println!("wrote {} bytes to {name}", text.len());
        Ok(())
    })
}
