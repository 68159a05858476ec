//! Scripted endpoint behaviours: what an endpoint offers and how it answers, beyond plain RFC 5321.
//!
//! The session state machine asks the behaviour at each decision point, so a new behaviour is a new variant plus
//! its answers here (one file per behaviour once they grow beyond a line each).

/// How an endpoint deviates from a well-behaved ESMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// RFC 5321 + RFC 3207: STARTTLS is offered whenever a chain is configured.
    #[default]
    Normal,
    /// STARTTLS is never advertised and the command is answered with 502 (a server without TLS support).
    NoStarttls,
}

impl Behaviour {
    /// Whether the EHLO reply may advertise STARTTLS (a chain must also be configured).
    pub(crate) fn offers_starttls(self) -> bool {
        match self {
            Behaviour::Normal => true,
            Behaviour::NoStarttls => false,
        }
    }

    /// Stable name for logs and snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::NoStarttls => "no-starttls",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_normal_offers_starttls() {
        assert!(Behaviour::Normal.offers_starttls());
        assert!(!Behaviour::NoStarttls.offers_starttls());
        assert_eq!(Behaviour::default(), Behaviour::Normal);
        assert_eq!(Behaviour::NoStarttls.name(), "no-starttls");
    }
}
