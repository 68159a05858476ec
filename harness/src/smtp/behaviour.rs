//! Scripted endpoint behaviours: what an endpoint offers and how it answers, beyond plain RFC 5321.
//!
//! The session state machine and the TLS setup ask the behaviour at each decision point, so a
//! new behaviour is a new variant plus its answers here.

/// How an endpoint deviates from a well-behaved ESMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// RFC 5321 + RFC 3207: STARTTLS is offered whenever a chain is configured.
    #[default]
    Normal,
    /// STARTTLS is never advertised and the command is answered with 502 (a server without TLS support).
    NoStarttls,
    /// STARTTLS is advertised but answered `454 4.7.0` (RFC 3207 §4: TLS temporarily unavailable).
    Starttls454,
    /// STARTTLS is answered 220, then the connection is closed before any TLS byte (a broken TLS stack).
    StarttlsAbort,
    /// STARTTLS is answered 220; the ClientHello is answered with a fatal alert (rustls, with no
    /// certificate to offer, sends `access_denied`).
    TlsAlert,
    /// Only TLS 1.2 is enabled.
    Tls12Only,
    /// Only TLS 1.3 is enabled.
    Tls13Only,
}

/// What the endpoint does after it has answered STARTTLS with 220.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterStarttls {
    Handshake,
    /// Close the connection without a TLS byte.
    Close,
}

impl Behaviour {
    pub const ALL: [Behaviour; 7] = [
        Behaviour::Normal,
        Behaviour::NoStarttls,
        Behaviour::Starttls454,
        Behaviour::StarttlsAbort,
        Behaviour::TlsAlert,
        Behaviour::Tls12Only,
        Behaviour::Tls13Only,
    ];

    /// Whether the EHLO reply may advertise STARTTLS (a chain must also be configured).
    pub(crate) fn offers_starttls(self) -> bool {
        self != Behaviour::NoStarttls
    }

    /// The reply to STARTTLS when it is not the usual 220, e.g. (454, "4.7.0 ...").
    pub(crate) fn starttls_refusal(self) -> Option<(u16, &'static str)> {
        (self == Behaviour::Starttls454).then_some((454, "4.7.0 TLS not available due to temporary reason"))
    }

    pub(crate) fn after_starttls(self) -> AfterStarttls {
        match self {
            Behaviour::StarttlsAbort => AfterStarttls::Close,
            _ => AfterStarttls::Handshake,
        }
    }

    /// The TLS versions the endpoint enables; empty means none will do (every handshake fails).
    pub(crate) fn tls_versions(self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        match self {
            Behaviour::Tls12Only => vec![&rustls::version::TLS12],
            Behaviour::Tls13Only => vec![&rustls::version::TLS13],
            _ => vec![&rustls::version::TLS12, &rustls::version::TLS13],
        }
    }

    /// Whether the endpoint refuses every handshake with a fatal alert.
    pub(crate) fn refuses_handshake(self) -> bool {
        self == Behaviour::TlsAlert
    }

    /// Stable name for scenarios, logs and snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::NoStarttls => "no-starttls",
            Behaviour::Starttls454 => "starttls-454",
            Behaviour::StarttlsAbort => "starttls-abort",
            Behaviour::TlsAlert => "tls-alert",
            Behaviour::Tls12Only => "tls1.2-only",
            Behaviour::Tls13Only => "tls1.3-only",
        }
    }

    pub fn parse(name: &str) -> Option<Behaviour> {
        Behaviour::ALL.into_iter().find(|b| b.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_starttls_hides_starttls() {
        for b in Behaviour::ALL {
            assert_eq!(b.offers_starttls(), b != Behaviour::NoStarttls, "{b:?}");
            assert_eq!(Behaviour::parse(b.name()), Some(b));
        }
        assert_eq!(Behaviour::default(), Behaviour::Normal);
        assert_eq!(Behaviour::Starttls454.starttls_refusal().map(|r| r.0), Some(454));
        assert_eq!(Behaviour::Normal.starttls_refusal(), None);
        assert_eq!(Behaviour::StarttlsAbort.after_starttls(), AfterStarttls::Close);
        assert_eq!(Behaviour::Tls13Only.tls_versions().len(), 1);
    }
}
