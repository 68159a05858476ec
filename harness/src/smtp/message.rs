//! The witness hash of a message, computed identically on the submitting and the receiving side.

use sha2::{Digest, Sha256};

/// The message content as it travels in DATA before dot-stuffing: every bare LF becomes CRLF and a final CRLF is
/// added when missing (RFC 5321 §2.3.8: lines end in CRLF; §4.1.1.4: the content ends with CRLF before ".").
/// An empty body stays empty.
pub fn normalize_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 2);
    let mut prev = None;
    for &b in body {
        if b == b'\n' && prev != Some(b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        prev = Some(b);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// SHA-256 hex of the message content as received after dot-unstuffing, every line ending CRLF, without the
/// terminating ".". Given a submitted body, this computes the same value the receiving endpoint records.
pub fn message_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(normalize_body(body)))
}

/// Accumulates DATA lines on the receiving side (RFC 5321 §4.5.2 transparency) without storing the message.
pub(crate) struct MessageSink {
    hasher: Sha256,
    size: usize,
    max: usize,
    oversize: bool,
}

impl MessageSink {
    pub(crate) fn new(max: usize) -> Self {
        MessageSink {
            hasher: Sha256::new(),
            size: 0,
            max,
            oversize: false,
        }
    }

    /// Adds one received line (terminator already removed). Returns true when it was the end-of-data line ".".
    pub(crate) fn push_line(&mut self, line: &[u8]) -> bool {
        if line == b"." {
            return true;
        }
        // RFC 5321 §4.5.2: a leading period was doubled by the client; remove one.
        let content = line.strip_prefix(b".").unwrap_or(line);
        self.size = self.size.saturating_add(content.len() + 2);
        if self.size > self.max {
            self.oversize = true;
        }
        if !self.oversize {
            self.hasher.update(content);
            self.hasher.update(b"\r\n");
        }
        false
    }

    /// A line too long to even buffer: the message cannot be accepted.
    pub(crate) fn push_too_long(&mut self) {
        self.oversize = true;
        self.size = self.size.saturating_add(self.max);
    }

    /// Bytes of content received so far (counted even past the limit).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The hash, or None when the message exceeded the limit.
    pub(crate) fn finish(self) -> Option<String> {
        (!self.oversize).then(|| hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize_body(b""), b"");
        assert_eq!(normalize_body(b"a\nb"), b"a\r\nb\r\n");
        assert_eq!(normalize_body(b"a\r\nb\r\n"), b"a\r\nb\r\n");
        assert_eq!(normalize_body(b"a\r"), b"a\r\r\n");
        assert_eq!(normalize_body(b"\n\n"), b"\r\n\r\n");
    }

    #[test]
    fn hash_of_empty_and_known_value() {
        assert_eq!(
            message_sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(message_sha256(b"abc\n"), hex::encode(Sha256::digest(b"abc\r\n")));
        assert_eq!(message_sha256(b"abc"), message_sha256(b"abc\r\n"));
    }

    #[test]
    fn sink_unstuffs_and_matches_the_submitted_hash() {
        let body = b"Subject: t\n\n.leading dot\n..two dots\nend";
        let mut sink = MessageSink::new(1000);
        for line in ["Subject: t", "", "..leading dot", "...two dots", "end"] {
            assert!(!sink.push_line(line.as_bytes()));
        }
        assert!(sink.push_line(b"."));
        assert_eq!(sink.finish(), Some(message_sha256(body)));
    }

    #[test]
    fn sink_refuses_oversize() {
        let mut sink = MessageSink::new(10);
        sink.push_line(b"12345678");
        assert_eq!(sink.size(), 10);
        sink.push_line(b"x");
        assert_eq!(sink.finish(), None);
        let mut sink = MessageSink::new(10);
        sink.push_too_long();
        assert_eq!(sink.finish(), None);
    }
}
