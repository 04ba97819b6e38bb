//! The per-course averages: one worker per course, each writing its average
//! into its own slot of memory shared with the parent.
//!
//! Usage: `averages GRADES...`, one argument per course, grades separated
//! by commas: `averages 3,5,7,1 4,4,2 6,7` (then Ctrl-D to let it end).

use std::process::ExitCode;

use anyhow::Result;
use shared_memory::given::{self, hold, me};
use shared_memory::{Mapping, course_averages};

const USAGE: &str = "averages GRADES... (one argument per course: 3,5,7,1)";

// ANCHOR: main
fn main() -> ExitCode {
    given::main_with(|| {
        let courses = given::args(USAGE, 1)?
            .iter()
            .map(|course| course.split(',').map(|g| given::number(g, USAGE)).collect())
            .collect::<Result<Vec<Vec<u32>>>>()?;
        // One 8-byte slot per course, mapped before any worker exists, so
        // that every worker inherits the same shared memory.
        let slots = Mapping::anonymous_shared(courses.len() * 8)?;
        println!("parent pid={} slots at {:#x}", me(), slots.address());
        let averages = course_averages(&courses, &slots)?;
        for (i, avg) in averages.iter().enumerate() {
            println!("course {i} average {avg:.3}");
        }
        // The checker reads this process's slots while it waits here.
        hold();
        Ok(())
    })
}
// ANCHOR_END: main
