//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{Ending, args, join, main_with, me, run_child};

/// The server's answer to a request: the text reversed, character by
/// character (`abracadabra` -> `arbadacarba`, `ñandú` -> `údnañ`).
pub fn reverse(request: &str) -> String {
    request.chars().rev().collect()
}
