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
#[derive(Debug, Clone, Default)]
pub struct QueryLog(Arc<Mutex<Vec<QueryEntry>>>);

impl QueryLog {
    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<QueryEntry> {
        self.lock().clone()
    }

    /// Forget every entry (e.g. between the attempts of a timeline).
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub(crate) fn push(&self, entry: QueryEntry) {
        self.lock().push(entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<QueryEntry>> {
        // A panic while holding this lock cannot leave the Vec half-written (push/clone/clear
        // are atomic with respect to it), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_entries() {
        let log = QueryLog::default();
        let other = log.clone();
        let entry = QueryEntry {
            qname: "test.".into(),
            qtype: "DNSKEY".into(),
            dnssec_ok: true,
            checking_disabled: false,
            tcp: false,
            rcode: "NOERROR".into(),
            answers: 2,
            fault: None,
        };
        other.push(entry.clone());
        assert_eq!(log.entries(), vec![entry]);
        log.clear();
        assert!(other.entries().is_empty());
    }
}
