//! Capturing the process's stdout and stderr into `output.jsonl`.
//!
//! One thread per stream splits bytes into lines; every line becomes one
//! JSON record written with a single `write` on an append-only file, under
//! a lock that also takes the timestamp, so records never interleave and
//! timestamps never go backwards in file order.

use crate::process::state::{create_private, now_ms, OutputRecord, OUTPUT};
use crate::LogStream;
use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Longer lines are split, so a process printing without newlines cannot
/// make the shim buffer without bound (Docker splits at 16 KiB too).
pub const MAX_LINE: usize = 16 * 1024;

pub struct Output {
    file: Mutex<File>,
}

impl Output {
    pub fn open(dir: &Path) -> io::Result<Output> {
        let file = create_private(&dir.join(OUTPUT), true)?;
        Ok(Output {
            file: Mutex::new(file),
        })
    }

    pub fn write_line(&self, stream: LogStream, line: &[u8]) {
        let mut file = self.file.lock();
        let record = OutputRecord {
            t: now_ms(),
            s: stream,
            m: String::from_utf8_lossy(line).into_owned(),
        };
        let mut bytes = serde_json::to_vec(&record).expect("a record serializes");
        bytes.push(b'\n');
        if let Err(e) = file.write_all(&bytes) {
            eprintln!("berth shim: cannot write output: {e}");
        }
    }

    /// Copy `reader` line by line until it ends, then flush a last line
    /// that had no newline.
    pub fn pump(&self, stream: LogStream, mut reader: impl Read) {
        let mut lines = LineSplitter::default();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lines.push(&buf[..n], |l| self.write_line(stream, l)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        lines.finish(|l| self.write_line(stream, l));
    }
}

/// Splits a byte stream into lines without their `\n`, at most
/// [`MAX_LINE`] bytes each.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&data[..nl]);
            self.flush_long(&mut emit);
            emit(&self.pending);
            self.pending.clear();
            data = &data[nl + 1..];
        }
        self.pending.extend_from_slice(data);
        self.flush_long(&mut emit);
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }

    /// Emit full-size pieces of an overlong line, cutting at a UTF-8
    /// character boundary so no character is split between two records.
    fn flush_long(&mut self, emit: &mut impl FnMut(&[u8])) {
        while self.pending.len() > MAX_LINE {
            let cut = match std::str::from_utf8(&self.pending[..MAX_LINE]) {
                Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                _ => MAX_LINE,
            };
            emit(&self.pending[..cut]);
            self.pending.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.push(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_across_chunks_and_a_last_line_without_newline() {
        let got = split(&[b"a\nb", b"c\n\nd", b"e"]);
        assert_eq!(
            got,
            vec![b"a".to_vec(), b"bc".to_vec(), vec![], b"de".to_vec()]
        );
    }

    #[test]
    fn overlong_lines_are_split_at_character_boundaries() {
        // 'é' is two bytes; an odd prefix puts a character across MAX_LINE.
        let mut line = b"x".to_vec();
        line.extend("é".repeat(MAX_LINE).as_bytes());
        line.push(b'\n');
        let got = split(&[&line]);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|l| l.len() <= MAX_LINE));
        let joined: Vec<u8> = got.concat();
        assert_eq!(joined, line[..line.len() - 1]);
        for piece in &got {
            std::str::from_utf8(piece).expect("each piece is valid UTF-8");
        }
    }
}
