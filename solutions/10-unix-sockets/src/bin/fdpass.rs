//! Passing an open file descriptor to another process.
//!
//! Usage:
//! - `fdpass send SOCKET FILE SKIP`: opens FILE, reads its first SKIP bytes,
//!   connects to the Unix socket SOCKET and sends the open file over it.
//! - `fdpass recv SOCKET`: connects to SOCKET, receives a descriptor with a
//!   line of text, and writes that line into the descriptor it received.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::{Context, bail};
use unix_sockets::given::{self, me};
use unix_sockets::{recv_fd, send_fd};

fn main() -> ExitCode {
    given::main_with(|| {
        let args = given::args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["send", socket, file, skip] => {
                let skip: usize = skip.parse().context("SKIP must be a number")?;
                let mut file = File::open(file).with_context(|| format!("open {file}"))?;
                let mut head = vec![0u8; skip];
                file.read_exact(&mut head)
                    .context("reading the first bytes")?;
                let stream =
                    UnixStream::connect(socket).with_context(|| format!("connect {socket}"))?;
                send_fd(&stream, file.as_fd(), b"file\n")?;
                println!(
                    "sender pid={} sent fd {} after reading {skip} bytes",
                    me(),
                    file.as_raw_fd()
                );
                Ok(())
            }
            ["recv", socket] => {
                let stream =
                    UnixStream::connect(socket).with_context(|| format!("connect {socket}"))?;
                let mut buf = [0u8; 256];
                let (n, fd) = recv_fd(&stream, &mut buf)?;
                // The line may go on past what came with the descriptor.
                let mut line = buf[..n].to_vec();
                if !line.ends_with(b"\n") {
                    BufReader::new(&stream)
                        .read_until(b'\n', &mut line)
                        .context("reading the rest of the line")?;
                }
                let raw = fd.as_raw_fd();
                let mut out = File::from(fd);
                out.write_all(&line)
                    .context("writing into the received descriptor")?;
                println!(
                    "receiver pid={} got fd {raw}, wrote {} bytes into it",
                    me(),
                    line.len()
                );
                Ok(())
            }
            _ => bail!("usage: fdpass send SOCKET FILE SKIP | fdpass recv SOCKET"),
        }
    })
}
