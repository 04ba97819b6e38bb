//! One module per command of the CLI.

pub mod bench;
pub mod check;
pub mod classroom;
pub mod dev;
pub mod grade;
pub mod hint;
pub mod overview;
pub mod template;
pub mod verify;
pub mod watch;

use std::io::IsTerminal;

use anyhow::Result;

use crate::cli::{Command, USAGE, Which};
use crate::stage::Tree;

/// How a command ended, as an exit status: 0 passed, 1 failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
}

pub fn run(command: Command) -> Result<Verdict> {
    match command {
        Command::Overview => overview::run(),
        Command::Check {
            labs,
            all,
            which,
            format,
            scenario,
        } => check::run(&labs, all, &tree(&which)?, format, scenario.as_deref()),
        Command::Watch { lab, which } => watch::run(&lab, &tree(&which)?),
        Command::Hint { lab } => hint::run(&lab),
        Command::Verify {
            labs,
            jobs,
            fixture,
            starters,
        } => verify::run(&labs, jobs, fixture.as_deref(), starters.as_deref()),
        Command::Grade {
            dir,
            jobs,
            out,
            sandbox,
        } => grade::run(&dir, jobs, &out, sandbox),
        Command::Bench {
            which,
            messages,
            out,
        } => bench::run(&tree(&which)?, messages, out.as_deref()),
        Command::Classroom => classroom::run(),
        Command::Template { dir } => template::run(&dir),
        Command::Dev => dev::run(),
        Command::Help => {
            println!("{USAGE}");
            Ok(Verdict::Passed)
        }
        Command::Version => {
            println!("lab {}", env!("CARGO_PKG_VERSION"));
            Ok(Verdict::Passed)
        }
    }
}

fn tree(which: &Which) -> Result<Tree> {
    Ok(match which {
        Which::Labs => Tree::labs(),
        Which::Solutions => {
            let tree = Tree::solutions();
            if !tree.labs_dir.is_dir() {
                anyhow::bail!(
                    "--solutions needs the reference solutions, and this copy of the course has no solutions/ directory (a copy for students, written by `cargo lab template`, leaves them out)"
                );
            }
            tree
        }
        Which::Tree(dir) => Tree::checkout(dir)?,
    })
}

/// Whether stderr shows colours: a terminal, and NO_COLOR unset.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A progress note on stderr, on a terminal only.
pub fn note(text: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{text}");
    }
}

/// A copy of this checker's executable that stays put while it runs child
/// checkers (`grade`, `verify`): rebuilding the checker meanwhile replaces
/// `target/debug/lab`, and the children would fail to start. Removed on drop.
pub struct StableExe(pub std::path::PathBuf);

impl StableExe {
    pub fn new() -> Result<StableExe> {
        use anyhow::Context;
        let exe = std::env::current_exe().context("finding the checker's executable")?;
        let dir = crate::stage::course_root().join("target/lab/bin");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let copy = dir.join(format!("lab-{}", std::process::id()));
        std::fs::copy(&exe, &copy)
            .with_context(|| format!("copying {} to {}", exe.display(), copy.display()))?;
        Ok(StableExe(copy))
    }
}

impl Drop for StableExe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
