//! The command line: `lab [COMMAND] [ARGS]`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use lexopt::prelude::*;

use crate::report::Format;

pub const USAGE: &str = "\
The course checker.

Usage:
  cargo lab                      the course at a glance, and what to do next
  cargo lab check <LAB>...       build a lab and run its scenarios
  cargo lab check --all          every lab
  cargo lab watch <LAB>          check again on every save (Ctrl-C to stop)
  cargo lab hint <LAB>           the next hint for the first failing scenario
  cargo lab verify [LAB]...      the course checks itself: solutions pass,
                                 starters fail, every fixture is caught
  cargo lab verify LAB --fixture NAME
                                 one fixture or variant only (to run it often)
  cargo lab grade <DIR>          grade every submission in DIR (a checkout of
                                 the course per student)
  cargo lab classroom            print a GitHub Classroom autograding workflow
  cargo lab template <DIR>       write the repository to hand to students: the
                                 course without solutions, the book's student
                                 edition, the Classroom workflow
  cargo lab dev                  write target/solutions/: the reference
                                 solutions as one workspace (with the given
                                 code from labs/), for clippy, rustfmt and
                                 an editor
  cargo lab bench                build lab 12 with optimisations and run its
                                 harness: every mechanism measured, a table,
                                 a CSV file (--out, default showdown.csv) and
                                 a chart beside it (showdown.svg)

Options for check:
  --solutions                    check the reference solutions
  --tree <DIR>                   check another checkout of the course
  --format <text|json|gradescope>
  --scenario <NAME>              run one scenario only

Options for bench:
  --solutions, --tree <DIR>      measure the reference or another checkout
  --messages <N>                 round trips and messages per mechanism
  --out <FILE>                   where the CSV goes (the .svg chart beside it)

Options for grade and verify:
  --jobs <N>                     submissions (labs) checked at once (default: 2)
  --starters <DIR>               verify: the untouched starters are in DIR/labs
                                 (default: labs/)
  --out <DIR>                    where reports go (default: grades)
  --no-sandbox                   do not isolate submissions with bubblewrap

A lab is named by number (3, 03), name (fifo) or both (03-fifo).
Exit status: 0 all passed, 1 something failed, 2 the checker could not run.
Colour is used on a terminal only; set NO_COLOR to turn it off.";

/// The commands, for "did you mean".
const COMMANDS: &[&str] = &[
    "check",
    "watch",
    "hint",
    "verify",
    "grade",
    "classroom",
    "template",
    "dev",
    "bench",
    "help",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Labs,
    Solutions,
    Tree(PathBuf),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Overview,
    Check {
        labs: Vec<String>,
        all: bool,
        which: Which,
        format: Format,
        scenario: Option<String>,
    },
    Watch {
        lab: String,
        which: Which,
    },
    Hint {
        lab: String,
    },
    Verify {
        labs: Vec<String>,
        jobs: usize,
        /// Only this fixture or variant (of the one lab named).
        fixture: Option<String>,
        /// Where the untouched starters are, when not in labs/.
        starters: Option<PathBuf>,
    },
    Grade {
        dir: PathBuf,
        jobs: usize,
        out: PathBuf,
        sandbox: bool,
    },
    Classroom,
    Template {
        dir: PathBuf,
    },
    Dev,
    Bench {
        which: Which,
        messages: Option<usize>,
        out: Option<PathBuf>,
    },
    Help,
    Version,
}

pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Command> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut command: Option<String> = None;
    let mut labs = Vec::new();
    let mut all = false;
    let mut which = Which::Labs;
    let mut format = Format::Text;
    let mut scenario = None;
    let mut fixture = None;
    let mut jobs = 2usize;
    let mut out = PathBuf::from("grades");
    let mut out_given = false;
    let mut messages = None;
    let mut sandbox = true;
    let mut starters = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("all") => all = true,
            Long("solutions") => which = Which::Solutions,
            Long("tree") => which = Which::Tree(parser.value()?.into()),
            Long("format") => {
                format = match parser.value()?.string()?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    "gradescope" => Format::Gradescope,
                    other => bail!("unknown format {other:?}: use text, json or gradescope"),
                }
            }
            Long("scenario") => scenario = Some(parser.value()?.string()?),
            Long("fixture") => fixture = Some(parser.value()?.string()?),
            Long("jobs") | Short('j') => {
                let v = parser.value()?.string()?;
                jobs =
                    v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        anyhow::anyhow!("--jobs takes a number above 0, not {v:?}")
                    })?;
            }
            Long("out") => {
                out = parser.value()?.into();
                out_given = true;
            }
            Long("messages") => {
                let v = parser.value()?.string()?;
                messages = Some(v.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(|| {
                    anyhow::anyhow!("--messages takes a number above 0, not {v:?}")
                })?);
            }
            Long("no-sandbox") => sandbox = false,
            Long("starters") => starters = Some(parser.value()?.into()),
            Value(v) if command.is_none() => command = Some(v.string()?),
            Value(v) => labs.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let one_lab = |labs: Vec<String>, what: &str| -> Result<String> {
        match <[String; 1]>::try_from(labs) {
            Ok([lab]) => Ok(lab),
            Err(_) => bail!("`cargo lab {what}` takes one lab, e.g. `cargo lab {what} 1`"),
        }
    };
    Ok(match command.as_deref() {
        None => Command::Overview,
        Some("check") => {
            if labs.is_empty() && !all {
                bail!("which lab? e.g. `cargo lab check 1`, or `cargo lab check --all`");
            }
            Command::Check {
                labs,
                all,
                which,
                format,
                scenario,
            }
        }
        Some("watch") => Command::Watch {
            lab: one_lab(labs, "watch")?,
            which,
        },
        Some("hint") => Command::Hint {
            lab: one_lab(labs, "hint")?,
        },
        Some("verify") => Command::Verify {
            labs,
            jobs,
            fixture,
            starters,
        },
        Some("grade") => match <[String; 1]>::try_from(labs) {
            Ok([dir]) => Command::Grade {
                dir: dir.into(),
                jobs,
                out,
                sandbox,
            },
            Err(_) => bail!("`cargo lab grade` takes one directory of submissions"),
        },
        Some("classroom") => Command::Classroom,
        Some("template") => match <[String; 1]>::try_from(labs) {
            Ok([dir]) => Command::Template { dir: dir.into() },
            Err(_) => bail!(
                "`cargo lab template` takes one directory to write, e.g. `cargo lab template ../ipc-course`"
            ),
        },
        Some("dev") => {
            if !labs.is_empty() {
                bail!("`cargo lab dev` writes every lab's solution and takes no lab name");
            }
            Command::Dev
        }
        Some("bench") => {
            if !labs.is_empty() {
                bail!("`cargo lab bench` measures lab 12 and takes no lab name");
            }
            Command::Bench {
                which,
                messages,
                out: out_given.then_some(out),
            }
        }
        Some("help") => Command::Help,
        Some(other) => match crate::suggest::closest(other, COMMANDS.iter().copied()) {
            Some(near) => bail!(
                "unknown command {other:?}. Did you mean `cargo lab {near}`? All commands: `cargo lab --help`"
            ),
            None => bail!("unknown command {other:?}; try `cargo lab --help`"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &str) -> Result<Command> {
        parse(args.split_whitespace().map(std::ffi::OsString::from))
    }

    #[test]
    fn parses_the_command_surface() {
        assert_eq!(p("").unwrap(), Command::Overview);
        assert_eq!(
            p("check 3 --format json").unwrap(),
            Command::Check {
                labs: vec!["3".into()],
                all: false,
                which: Which::Labs,
                format: Format::Json,
                scenario: None
            }
        );
        assert!(matches!(
            p("check --all --solutions").unwrap(),
            Command::Check {
                all: true,
                which: Which::Solutions,
                ..
            }
        ));
        assert!(matches!(
            p("check 1 --tree /x").unwrap(),
            Command::Check {
                which: Which::Tree(_),
                ..
            }
        ));
        assert_eq!(
            p("hint fork").unwrap(),
            Command::Hint { lab: "fork".into() }
        );
        assert_eq!(
            p("bench --solutions --messages 500").unwrap(),
            Command::Bench {
                which: Which::Solutions,
                messages: Some(500),
                out: None
            }
        );
        assert_eq!(
            p("verify").unwrap(),
            Command::Verify {
                fixture: None,
                labs: vec![],
                jobs: 2,
                starters: None
            }
        );
        assert_eq!(
            p("template /tmp/x").unwrap(),
            Command::Template {
                dir: "/tmp/x".into()
            }
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(p("check").is_err());
        assert!(p("frobnicate").is_err());
        assert!(p("template").is_err());
        let near = p("chek 1").unwrap_err().to_string();
        assert!(near.contains("Did you mean `cargo lab check`?"), "{near}");
        let far = p("frobnicate").unwrap_err().to_string();
        assert!(!far.contains("Did you mean"), "{far}");
        assert!(p("check 1 --format xml").is_err());
        assert!(p("hint 1 2").is_err());
        assert!(p("bench 12").is_err());
        assert!(p("bench --messages 0").is_err());
    }
}
