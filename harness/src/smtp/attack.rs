//! What an on-path attacker in front of an endpoint does.
//!
//! RFC 7672 §1.3 names the threat DANE answers: an active attacker between sender and
//! receiver who can delete STARTTLS, forge replies in the cleartext part of the dialogue,
//! or terminate TLS with a certificate of its own. RFC 3207 §6 already warns that nothing
//! before the TLS handshake is protected; DANE makes the sender notice. Each mode below is
//! one of those powers, and [`super::serve_attacker`] plays it.

use super::config::TlsChain;
use super::script::{Reply, Stage};

/// Where a forged reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectAt {
    /// Instead of the server's reply at this stage (only reachable while the session is in
    /// cleartext: after STARTTLS the attacker sees ciphertext and can forge nothing).
    Stage(Stage),
    /// The answer to STARTTLS, given by the attacker itself (the command is not forwarded).
    Starttls,
}

impl InjectAt {
    pub fn name(self) -> &'static str {
        match self {
            InjectAt::Stage(s) => s.name(),
            InjectAt::Starttls => "starttls",
        }
    }

    pub fn parse(s: &str) -> Option<InjectAt> {
        match s {
            "starttls" => Some(InjectAt::Starttls),
            other => Stage::parse(other).map(InjectAt::Stage),
        }
    }

    /// Every accepted name, in dialogue order.
    pub fn names() -> Vec<&'static str> {
        let mut v = vec!["greeting", "ehlo", "starttls"];
        v.extend(Stage::ALL.iter().skip(2).map(|s| s.name()));
        v
    }
}

/// One attacker mode.
#[derive(Debug, Clone)]
pub enum Attack {
    /// Delete STARTTLS from EHLO replies and answer a STARTTLS command with 454 itself
    /// (the downgrade of RFC 7672 §1.3).
    StripStarttls,
    /// Replace one reply with a forged one, once per connection.
    Inject { at: InjectAt, reply: Reply },
    /// Answer STARTTLS itself, complete the handshake with the client presenting `chain`,
    /// open its own TLS session to the real server (checking nothing), and relay the
    /// decrypted dialogue: a man in the middle whose certificate the TLSA does not match
    /// (RFC 7672 §3.2).
    Intercept { chain: TlsChain },
}

impl Attack {
    /// The mode's name, as scenarios write it.
    pub fn name(&self) -> &'static str {
        match self {
            Attack::StripStarttls => "strip-starttls",
            Attack::Inject { .. } => "inject",
            Attack::Intercept { .. } => "intercept",
        }
    }
}
