//! Finds a quote that never closes. The CSV parser reads an unclosed quote
//! as one field running to the end of the file, so a stray `"` would
//! silently swallow every row after it. [`QuoteWatch`] follows the bytes as
//! they are read, with the parser's own rule (a quote opens a quoted field
//! only at the start of a field; a doubled quote inside one is a quote), and
//! at the end of the file tells the line where a quote opened and never
//! closed. Between the bytes that matter it jumps with `memchr`, so reading
//! costs little more than the parser alone.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const QUOTE: u8 = b'"';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field, or doubles.
    QuoteInQuoted,
}

/// A reader that watches for a quote left open at the end.
pub(crate) struct QuoteWatch<R> {
    inner: R,
    delimiter: u8,
    state: State,
    /// Line breaks seen so far.
    lines: usize,
    /// The line (from 1) where the open quoted field started.
    opened: usize,
    /// Set at the end of the input to the line of a quote never closed.
    unclosed: Arc<AtomicUsize>,
}

impl<R: Read> QuoteWatch<R> {
    /// The reader, and where it will tell the line of an unclosed quote
    /// (0: none) once the input has been read to its end.
    pub(crate) fn new(inner: R, delimiter: u8) -> (Self, Arc<AtomicUsize>) {
        let unclosed = Arc::new(AtomicUsize::new(0));
        let watch =
            QuoteWatch { inner, delimiter, state: State::FieldStart, lines: 0, opened: 0, unclosed: unclosed.clone() };
        (watch, unclosed)
    }

    fn follow(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            i = match self.state {
                State::Quoted => match memchr::memchr(QUOTE, &bytes[i..]) {
                    Some(at) => {
                        self.lines += memchr::memchr_iter(b'\n', &bytes[i..i + at]).count();
                        self.state = State::QuoteInQuoted;
                        i + at + 1
                    }
                    None => {
                        self.lines += memchr::memchr_iter(b'\n', &bytes[i..]).count();
                        bytes.len()
                    }
                },
                State::Unquoted => match memchr::memchr2(self.delimiter, b'\n', &bytes[i..]) {
                    Some(at) => self.step(bytes[i + at], i + at),
                    None => bytes.len(),
                },
                State::FieldStart | State::QuoteInQuoted => self.step(bytes[i], i),
            };
        }
    }

    /// Moves on one byte `b` at `i`; returns where to look next.
    fn step(&mut self, b: u8, i: usize) -> usize {
        let boundary = b == self.delimiter || b == b'\n';
        if b == b'\n' {
            self.lines += 1;
        }
        self.state = match (self.state, b) {
            (_, _) if boundary => State::FieldStart,
            (State::FieldStart, QUOTE) => {
                self.opened = self.lines + 1;
                State::Quoted
            }
            (State::QuoteInQuoted, QUOTE) => State::Quoted,
            _ => State::Unquoted,
        };
        i + 1
    }
}

impl<R: Read> Read for QuoteWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if self.state == State::Quoted {
                self.unclosed.store(self.opened, Ordering::Relaxed);
            }
        } else {
            self.follow(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The line of an unclosed quote in `text` read in chunks of `chunk` bytes.
    fn unclosed(text: &str, chunk: usize) -> usize {
        let (mut watch, line) = QuoteWatch::new(text.as_bytes(), b',');
        let mut buf = vec![0u8; chunk];
        while watch.read(&mut buf).unwrap() > 0 {}
        line.load(Ordering::Relaxed)
    }

    #[test]
    fn well_formed_quoting_is_not_an_unclosed_quote() {
        for text in [
            "a,b\n1,2\n",
            "a,b\n1,\"two, and\nmore\"\n3,4\n",
            "a,b\n1,\"say \"\"hi\"\"\"\n",
            "height,b\n5'11\",x\n6'0\",y\n",
            "a,b\n1,\"\"\n",
            "a,b\r\n1,\"x\"\r\n",
        ] {
            for chunk in [1, 3, 64] {
                assert_eq!(unclosed(text, chunk), 0, "{text:?} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn a_quote_that_never_closes_is_found_at_the_line_it_opened() {
        for (text, line) in [("a,b\n1,\"two\n3,4\n", 2), ("a,b\n1,2\n3,4\n\"five,6\n", 4), ("\"a,b\n", 1)] {
            for chunk in [1, 2, 64] {
                assert_eq!(unclosed(text, chunk), line, "{text:?} in chunks of {chunk}");
            }
        }
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_answer(text in "[a\",\n']{0,40}", chunk in 1usize..8) {
            prop_assert_eq!(unclosed(&text, chunk), unclosed(&text, 4096));
        }
    }
}
