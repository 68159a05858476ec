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

/// SHA-256 hex of the message *body*: the content after the empty line that ends the header section
/// (RFC 5322 §2.1), as received after dot-unstuffing with every line ending CRLF. Relays prepend trace header
/// fields (RFC 5321 §4.4: every SMTP server adds a `Received:` line) and may add missing ones such as
/// `Message-ID` or `Date` (RFC 5321 §6.4), but they carry the body unchanged, so the body is what identifies the
/// submitted message at the receiving side, whichever sender relayed it. Content with no header/body separator
/// is hashed whole. Empty lines at the end of the body are left out (some clients add one).
/// Given a submitted message, this computes the same value the receiving endpoint records.
pub fn body_sha256(message: &[u8]) -> String {
    received(message).finish().expect("an unlimited sink never refuses")
}

/// Octets of the message *body* (after the header section, RFC 5322 §2.1) as the receiving
/// endpoint counts them for `drop_after_body_bytes`: dot-unstuffed, every line ending CRLF.
/// A message with no header/body separator has no body: 0.
pub fn body_len(message: &[u8]) -> usize {
    received(message).body_size()
}

/// The submitted message as an endpoint's sink receives it.
fn received(message: &[u8]) -> MessageSink {
    let mut sink = MessageSink::new(usize::MAX);
    let normalized = normalize_body(message);
    let mut rest: &[u8] = &normalized;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        // Lines are stuffed here as a client would send them, so the sink's unstuffing restores them.
        let line = &rest[..i];
        if line.starts_with(b".") {
            let mut stuffed = Vec::with_capacity(line.len() + 1);
            stuffed.push(b'.');
            stuffed.extend_from_slice(line);
            sink.push_line(&stuffed);
        } else {
            sink.push_line(line);
        }
        rest = &rest[i + 2..];
    }
    sink
}

/// Accumulates DATA lines on the receiving side (RFC 5321 §4.5.2 transparency) without storing the message.
pub(crate) struct MessageSink {
    whole: Sha256,
    body: Sha256,
    /// Still inside the header section (RFC 5322 §2.1): no empty line seen yet.
    in_header: bool,
    /// Empty body lines not yet hashed: trailing ones are left out, because some clients
    /// (swaks) end every message with an extra CRLF.
    pending_empty: usize,
    size: usize,
    /// Octets of the body so far (lines after the header section, each with its CRLF).
    body_size: usize,
    max: usize,
    oversize: bool,
    /// An octet above 127 arrived (RFC 6152: 8-bit content).
    eight_bit: bool,
}

impl MessageSink {
    pub(crate) fn new(max: usize) -> Self {
        MessageSink {
            whole: Sha256::new(),
            body: Sha256::new(),
            in_header: true,
            pending_empty: 0,
            size: 0,
            body_size: 0,
            max,
            oversize: false,
            eight_bit: false,
        }
    }

    /// Adds one received line (terminator already removed). Returns true when it was the end-of-data line ".".
    pub(crate) fn push_line(&mut self, line: &[u8]) -> bool {
        if line == b"." {
            return true;
        }
        // RFC 5321 §4.5.2: a leading period was doubled by the client; remove one.
        let content = line.strip_prefix(b".").unwrap_or(line);
        self.eight_bit |= content.iter().any(|&b| b >= 0x80);
        self.size = self.size.saturating_add(content.len() + 2);
        if self.size > self.max {
            self.oversize = true;
        }
        if !self.in_header {
            self.body_size = self.body_size.saturating_add(content.len() + 2);
        }
        if !self.oversize {
            self.whole.update(content);
            self.whole.update(b"\r\n");
            if self.in_header {
                // RFC 5322 §2.1: the first empty line separates the header section from the body.
                self.in_header = !content.is_empty();
            } else if content.is_empty() {
                self.pending_empty += 1;
            } else {
                for _ in 0..std::mem::take(&mut self.pending_empty) {
                    self.body.update(b"\r\n");
                }
                self.body.update(content);
                self.body.update(b"\r\n");
            }
        }
        false
    }

    /// A line too long to even buffer: the message cannot be accepted.
    pub(crate) fn push_too_long(&mut self) {
        self.oversize = true;
        self.size = self.size.saturating_add(self.max);
    }

    /// Counts the `n` bytes of an over-long line that was skipped, so the flood bound still applies; the message
    /// itself is refused by the caller for its line, not for its size.
    pub(crate) fn push_discarded(&mut self, n: usize) {
        self.size = self.size.saturating_add(n);
    }

    /// Whether any received octet was above 127.
    pub(crate) fn has_8bit(&self) -> bool {
        self.eight_bit
    }

    /// Bytes of content received so far (counted even past the limit).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Octets of the body received so far (see [`body_len`]).
    pub(crate) fn body_size(&self) -> usize {
        self.body_size
    }

    /// The body hash (see [`body_sha256`]), or None when the message exceeded the limit.
    pub(crate) fn finish(self) -> Option<String> {
        if self.oversize {
            return None;
        }
        let h = if self.in_header { self.whole } else { self.body };
        Some(hex::encode(h.finalize()))
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
            body_sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // No header/body separator: the content is hashed whole.
        assert_eq!(body_sha256(b"abc\n"), hex::encode(Sha256::digest(b"abc\r\n")));
        assert_eq!(body_sha256(b"abc"), body_sha256(b"abc\r\n"));
        // With one, only the body counts.
        assert_eq!(
            body_sha256(b"Subject: x\n\nhello\n"),
            hex::encode(Sha256::digest(b"hello\r\n"))
        );
    }

    #[test]
    fn trace_headers_added_by_a_relay_do_not_change_the_hash() {
        let submitted = b"From: a@client.test\r\nSubject: t\r\n\r\nbody\r\n.dot\r\n";
        let relayed = b"Received: from client.test by mx1\r\nMessage-Id: <1@client.test>\r\nFrom: a@client.test\r\nSubject: t\r\n\r\nbody\r\n.dot\r\n";
        assert_eq!(body_sha256(submitted), body_sha256(relayed));
        assert_ne!(body_sha256(submitted), body_sha256(b"Subject: t\r\n\r\nother\r\n"));
        // A client that adds a blank line before the final dot still delivered the same body,
        // but blank lines inside the body count.
        assert_eq!(
            body_sha256(b"S: t\r\n\r\nbody\r\n"),
            body_sha256(b"S: t\r\n\r\nbody\r\n\r\n")
        );
        assert_ne!(
            body_sha256(b"S: t\r\n\r\na\r\nb\r\n"),
            body_sha256(b"S: t\r\n\r\na\r\n\r\nb\r\n")
        );
    }

    #[test]
    fn sink_unstuffs_and_matches_the_submitted_hash() {
        let body = b"Subject: t\n\n.leading dot\n..two dots\nend";
        let mut sink = MessageSink::new(1000);
        for line in ["Subject: t", "", "..leading dot", "...two dots", "end"] {
            assert!(!sink.push_line(line.as_bytes()));
        }
        assert!(sink.push_line(b"."));
        assert_eq!(sink.finish(), Some(body_sha256(body)));
    }

    #[test]
    fn body_length_counts_after_the_header_section_only() {
        assert_eq!(body_len(b"Subject: t\n\nab\n.c\n"), 4 + 4);
        assert_eq!(body_len(b"Subject: t\n\n"), 0);
        assert_eq!(body_len(b"no separator\n"), 0);
        assert_eq!(body_len(b"S: t\r\n\r\n\r\nx\r\n"), 2 + 3);
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
