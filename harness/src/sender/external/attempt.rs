//! What an external sender said about one delivery attempt, parsed from its log, or from its
//! output and exit status by its profile's rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// The sender logged a successful delivery.
    Sent,
    /// A temporary failure: the message stays queued.
    Deferred,
    /// A permanent failure: the sender bounced the message.
    Bounced,
}

/// How the sender logged a TLS session with one peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsClaim {
    /// Authenticated by DANE (Postfix "Verified", Exim `CV=dane`).
    Verified,
    /// Authenticated some other way (Postfix "Trusted": PKIX).
    Trusted,
    /// Encrypted, peer not authenticated.
    Untrusted,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub terminal: Terminal,
    /// The DSN code the sender logged ("2.0.0", "4.7.5"), when it logged one.
    pub dsn: Option<String>,
    /// The sender's own words for the result ("Server certificate not verified", "250 2.0.0 Ok").
    pub text: String,
    /// The peer the sender says took the message.
    pub relay: Option<(String, IpAddr)>,
    /// Per peer address, the strongest TLS claim the sender logged.
    pub tls: BTreeMap<IpAddr, TlsClaim>,
    /// Per peer address, the sender's last words about it.
    pub reasons: BTreeMap<IpAddr, String>,
    /// The sender's log lines for this attempt, normalised for snapshots (no times, pids or queue ids).
    pub log: Vec<String>,
}

impl Attempt {
    pub fn status_line(&self) -> String {
        match &self.dsn {
            Some(d) => format!("{d} {}", self.text),
            None => self.text.clone(),
        }
    }
}
