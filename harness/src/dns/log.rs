use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// One query as the authoritative server saw it, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryEntry {
    /// Lowercased, with the trailing dot ("_25._tcp.mx1.example.test.").
    pub qname: String,
    /// Mnemonic ("TLSA", "DS", "TYPE65534").
    pub qtype: String,
    /// EDNS DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// CD bit (RFC 4035 §3.2.2).
    pub checking_disabled: bool,
    pub tcp: bool,
    /// Mnemonic of the response code ("NOERROR", "NXDOMAIN", "SERVFAIL"), or "DROPPED" when
    /// no response was sent.
    pub rcode: String,
    /// Answer-section record count of the response as given to the transport (RRSIGs included).
    pub answers: u16,
    /// The declared fault that shaped this response ("servfail", "bad-signature", ...).
    pub fault: Option<String>,
}

/// The queries a server has seen, in arrival order; cheap to clone and share.
///
/// A run keeps every entry: the witness judges the whole log of one attempt. A long-lived
/// server (`danesim serve`) bounds it with [`QueryLog::set_capacity`]: only the latest
/// entries are kept, and every entry has a sequence number, so that a reader takes only what
/// is new ([`QueryLog::since`]) instead of copying the whole history.
#[derive(Debug, Clone, Default)]
pub struct QueryLog(Arc<Mutex<History>>);

#[derive(Debug, Default)]
struct History {
    entries: VecDeque<QueryEntry>,
    /// The sequence number of `entries[0]`: how many entries came before it (kept or not).
    first: u64,
    /// The most entries kept; `None` keeps them all.
    capacity: Option<usize>,
}

/// The entries after a cursor ([`QueryLog::since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueriesSince {
    /// Entries after the cursor that are no longer kept (the log is bounded and the reader
    /// fell behind by more than its capacity).
    pub skipped: u64,
    /// The kept entries after the cursor, oldest first.
    pub entries: Vec<QueryEntry>,
    /// The cursor for the next call: the number of entries ever pushed.
    pub next: u64,
}

impl QueryLog {
    /// A copy of every entry kept (all of them, unless the log is bounded).
    pub fn entries(&self) -> Vec<QueryEntry> {
        self.lock().entries.iter().cloned().collect()
    }

    /// Forget every entry (e.g. between the attempts of a timeline); sequence numbers go on.
    pub fn clear(&self) {
        let mut h = self.lock();
        h.first += h.entries.len() as u64;
        h.entries.clear();
    }

    /// Keep at most the latest `capacity` entries from now on (the older ones are dropped).
    pub fn set_capacity(&self, capacity: usize) {
        let mut h = self.lock();
        h.capacity = Some(capacity);
        h.trim();
    }

    /// How many entries were ever pushed, kept or not.
    pub fn total(&self) -> u64 {
        let h = self.lock();
        h.first + h.entries.len() as u64
    }

    /// The entries pushed since `cursor` (a previous [`QueriesSince::next`], or 0): only those are
    /// copied, so polling an idle log costs nothing however long its history.
    pub fn since(&self, cursor: u64) -> QueriesSince {
        let h = self.lock();
        let next = h.first + h.entries.len() as u64;
        let from = cursor.clamp(h.first, next);
        let skip = usize::try_from(from - h.first).unwrap_or(usize::MAX);
        QueriesSince {
            skipped: from.saturating_sub(cursor.min(next)),
            entries: h.entries.iter().skip(skip).cloned().collect(),
            next,
        }
    }

    pub(crate) fn push(&self, entry: QueryEntry) {
        let mut h = self.lock();
        h.entries.push_back(entry);
        h.trim();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        // A panic while holding this lock cannot leave the history half-written (push/clone/
        // clear are atomic with respect to it), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl History {
    fn trim(&mut self) {
        let Some(capacity) = self.capacity else {
            return;
        };
        while self.entries.len() > capacity {
            self.entries.pop_front();
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(qname: &str) -> QueryEntry {
        QueryEntry {
            qname: qname.into(),
            qtype: "DNSKEY".into(),
            dnssec_ok: true,
            checking_disabled: false,
            tcp: false,
            rcode: "NOERROR".into(),
            answers: 2,
            fault: None,
        }
    }

    #[test]
    fn clones_share_entries() {
        let log = QueryLog::default();
        let other = log.clone();
        other.push(entry("test."));
        assert_eq!(log.entries(), vec![entry("test.")]);
        log.clear();
        assert!(other.entries().is_empty());
        assert_eq!(log.total(), 1, "clearing keeps the count");
    }

    #[test]
    fn an_unbounded_log_keeps_everything() {
        let log = QueryLog::default();
        for i in 0..10_000 {
            log.push(entry(&format!("q{i}.test.")));
        }
        assert_eq!(log.entries().len(), 10_000);
        assert_eq!(log.entries()[0].qname, "q0.test.");
    }

    #[test]
    fn a_bounded_log_keeps_the_latest_and_readers_take_only_what_is_new() {
        let log = QueryLog::default();
        log.set_capacity(3);
        for i in 0..5 {
            log.push(entry(&format!("q{i}.test.")));
        }
        let names = |s: &QueriesSince| s.entries.iter().map(|e| e.qname.clone()).collect::<Vec<_>>();
        assert_eq!(log.entries().len(), 3);
        assert_eq!(log.total(), 5);
        // A reader at 0 fell behind by 2: it is told so, and gets the 3 kept.
        let s = log.since(0);
        assert_eq!((s.skipped, s.next), (2, 5));
        assert_eq!(names(&s), ["q2.test.", "q3.test.", "q4.test."]);
        // Nothing new: nothing copied.
        let idle = log.since(s.next);
        assert_eq!((idle.skipped, idle.entries.len(), idle.next), (0, 0, 5));
        log.push(entry("q5.test."));
        let s = log.since(idle.next);
        assert_eq!((s.skipped, names(&s), s.next), (0, vec!["q5.test.".to_string()], 6));
        // A cursor from the future (another log) is taken as "up to date".
        assert_eq!(log.since(99).entries.len(), 0);
        // Bounding a full log drops the oldest at once.
        log.set_capacity(1);
        assert_eq!(names(&log.since(0)), ["q5.test."]);
    }
}
