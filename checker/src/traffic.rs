//! Traffic with real shapes, for every lab that sends bytes to a program:
//! bursts (several messages in one write), messages larger than any read
//! buffer, data split at random byte boundaries with pauses, every byte
//! value. Built once here; the labs say which shape they send.

use std::io::Write;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use crate::stuck::Activity;

/// The sizes where buffers and atomicity change: a typical read buffer,
/// a page and `PIPE_BUF` (both 4096 on Linux), a pipe's default capacity.
pub const READ_BUFFER: usize = 1024;
pub const PAGE: usize = 4096;
pub const PIPE_BUF: usize = 4096;
pub const PIPE_CAPACITY: usize = 65536;

/// Sizes of a message that no single read of a small buffer returns
/// whole: just past a read buffer, past `PIPE_BUF` and a page, several pages.
pub fn large_sizes(rng: &mut StdRng) -> [usize; 3] {
    [
        READ_BUFFER + rng.random_range(1..512),
        PIPE_BUF + rng.random_range(1..PAGE),
        3 * PAGE + rng.random_range(1..PAGE),
    ]
}

/// A word of lowercase letters, `len` long.
pub fn word(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A line of printable words (no newline), exactly `len` bytes long.
pub fn text(rng: &mut StdRng, len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        if !out.is_empty() {
            out.push(' ');
        }
        let n = rng.random_range(1..=9).min(len - out.len()).max(1);
        out.push_str(&word(rng, n));
    }
    out.truncate(len);
    out
}

/// Every byte value 0..=255 once, in a random order, then `extra` random
/// bytes: for a transport that must carry bytes, not text.
pub fn every_byte(rng: &mut StdRng, extra: usize) -> Vec<u8> {
    use rand::seq::SliceRandom;
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.shuffle(rng);
    bytes.extend((0..extra).map(|_| rng.random::<u8>()));
    bytes
}

/// `bytes` cut at random places into pieces of 1 to `max` bytes: how a
/// stream may arrive, whatever the writer's calls were.
pub fn split(rng: &mut StdRng, bytes: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = rng.random_range(1..=max.max(1)).min(bytes.len() - at);
        out.push(bytes[at..at + n].to_vec());
        at += n;
    }
    out
}

/// Several lines in one buffer, so that one read returns them together.
pub fn burst(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

/// How a peer sends: each piece is one write, with a pause after it.
pub struct Pieces {
    pub pieces: Vec<Vec<u8>>,
    pub pause: Duration,
}

impl Pieces {
    /// `bytes` in random pieces of up to `max` bytes, `pause` apart (keep
    /// `pause` well under a second: see [`crate::stuck`]).
    pub fn random(rng: &mut StdRng, bytes: &[u8], max: usize, pause: Duration) -> Pieces {
        Pieces {
            pieces: split(rng, bytes, max),
            pause,
        }
    }

    /// Writes every piece to `to`, pausing between pieces; bumps
    /// `activity` at each write. Stops quietly if the reader goes away.
    pub fn write_to(self, to: &mut impl Write, activity: &Activity) -> std::io::Result<()> {
        let last = self.pieces.len().saturating_sub(1);
        for (i, piece) in self.pieces.into_iter().enumerate() {
            to.write_all(&piece)?;
            to.flush()?;
            activity.touch();
            if i < last {
                std::thread::sleep(self.pause);
                activity.touch();
            }
        }
        Ok(())
    }

    /// Like [`Pieces::write_to`], on a thread of its own, so that the
    /// checker can read the replies meanwhile. The thread owns `to`, and
    /// drops it (closing it) when done.
    pub fn send_from_thread<W: Write + Send + 'static>(
        self,
        mut to: W,
        activity: Activity,
    ) -> std::thread::JoinHandle<std::io::Result<()>> {
        std::thread::Builder::new()
            .name("peer-writer".into())
            .spawn(move || self.write_to(&mut to, &activity))
            .expect("the checker cannot start a thread")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pieces_add_up_to_the_whole() {
        let mut rng = StdRng::seed_from_u64(7);
        let bytes = every_byte(&mut rng, 1000);
        assert_eq!(bytes.len(), 1256);
        let pieces = split(&mut rng, &bytes, 100);
        assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= 100));
        assert_eq!(pieces.concat(), bytes);
        let t = text(&mut rng, 5000);
        assert_eq!(t.len(), 5000);
        assert!(!t.contains('\n'));
    }
}
