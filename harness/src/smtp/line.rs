//! A bounded, cancel-safe line reader over any async byte stream (commands, DATA lines, relayed replies).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How many bytes of one over-long line are skipped before the reader reports it as over-long again, so that an
/// endless line is answered (and counted as abuse) instead of being swallowed forever.
const DISCARD_CAP: usize = 1024 * 1024;
const READ_CHUNK: usize = 8 * 1024;

/// What [`LineIo::read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// One line without its terminator (CRLF, or a bare LF from a sloppy peer).
    Complete(Vec<u8>),
    /// The line exceeded the limit; its bytes up to the next LF are skipped on the next call.
    TooLong,
    /// The peer closed; any partial line is dropped.
    Eof,
}

/// A stream with a read buffer. All state lives in the struct, so a `read_line` future dropped by `select!` loses
/// no bytes (it only awaits `read`, which is itself cancel-safe).
pub(crate) struct LineIo<S> {
    stream: S,
    buf: Vec<u8>,
    discarding: bool,
    discarded: usize,
}

impl<S> LineIo<S> {
    pub(crate) fn new(stream: S) -> Self {
        LineIo {
            stream,
            buf: Vec::new(),
            discarding: false,
            discarded: 0,
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream and the bytes read ahead from it.
    pub(crate) fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }
}

impl<S: AsyncRead + Unpin> LineIo<S> {
    /// Waits until at least one byte is buffered (read once if none is): how many there
    /// are, 0 at the end of the stream. Nothing is consumed.
    pub(crate) async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            let mut chunk = [0u8; READ_CHUNK];
            let n = self.stream.read(&mut chunk).await?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(self.buf.len())
    }

    /// Reads the next line of at most `limit` bytes (terminator excluded).
    pub(crate) async fn read_line(&mut self, limit: usize) -> std::io::Result<Line> {
        loop {
            if self.discarding {
                if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                    self.buf.drain(..=pos);
                    self.discarding = false;
                    self.discarded = 0;
                    continue;
                }
                self.discarded += self.buf.len();
                self.buf.clear();
                if self.discarded > DISCARD_CAP {
                    self.discarded = 0;
                    return Ok(Line::TooLong);
                }
            } else if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(if line.len() > limit {
                    Line::TooLong
                } else {
                    Line::Complete(line)
                });
            } else if self.buf.len() > limit.saturating_add(1) {
                // +1: the CR of a CRLF may already be here while its LF is still in flight.
                self.buf.clear();
                self.discarding = true;
                return Ok(Line::TooLong);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                self.buf.clear();
                return Ok(Line::Eof);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl<S: AsyncWrite + Unpin> LineIo<S> {
    /// Writes and flushes (a TLS stream holds records back until flushed).
    pub(crate) async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(data).await?;
        self.stream.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8], limit: usize) -> Vec<Line> {
        let mut io = LineIo::new(input);
        let mut out = Vec::new();
        loop {
            let line = io.read_line(limit).await.expect("reading a slice cannot fail");
            let eof = line == Line::Eof;
            out.push(line);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_crlf_and_bare_lf() {
        let got = lines_of(b"EHLO a\r\nNOOP\nx\r\r\npartial", 100).await;
        assert_eq!(
            got,
            vec![
                Line::Complete(b"EHLO a".to_vec()),
                Line::Complete(b"NOOP".to_vec()),
                Line::Complete(b"x\r".to_vec()),
                Line::Eof
            ]
        );
    }

    #[tokio::test]
    async fn over_long_lines_are_reported_and_skipped() {
        let mut input = vec![b'a'; 50_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        input.extend_from_slice(&[b'b'; 20]);
        input.extend_from_slice(b"\r\n");
        let got = lines_of(&input, 10).await;
        assert_eq!(
            got,
            vec![
                Line::TooLong,
                Line::Complete(b"NOOP".to_vec()),
                Line::TooLong,
                Line::Eof
            ]
        );
    }

    #[tokio::test]
    async fn an_endless_line_is_reported_repeatedly() {
        let input = vec![b'z'; 3 * DISCARD_CAP];
        let got = lines_of(&input, 100).await;
        assert!(
            got.iter().filter(|l| **l == Line::TooLong).count() >= 2,
            "{}",
            got.len()
        );
        assert_eq!(got.last(), Some(&Line::Eof));
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_limit_is_accepted() {
        let got = lines_of(b"12345\r\n123456\r\n", 5).await;
        assert_eq!(got, vec![Line::Complete(b"12345".to_vec()), Line::TooLong, Line::Eof]);
    }
}
