//! The outcome vocabulary of DESIGN.md, shared by expectations, sender reports and verdicts.
//!
//! Keeping it in one place is what lets the same scenario body be judged against
//! every sender: a scenario states its expectation in these words, every sender
//! adapter reports in them, and the verdict compares the two.

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// What happened to the message as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ResultCode {
    /// Delivered over STARTTLS to a DANE-authenticated peer.
    #[serde(rename = "AUTH")]
    Auth,
    /// Delivered over mandatory STARTTLS, certificate unchecked (every TLSA record unusable, RFC 7672 §2.2).
    #[serde(rename = "TLS")]
    Tls,
    /// Pre-DANE opportunistic delivery: STARTTLS if offered, cleartext allowed.
    #[serde(rename = "OPP")]
    Opp,
    /// Temporary failure; the message stays queued.
    #[serde(rename = "DEFER")]
    Defer,
    /// Permanent failure.
    #[serde(rename = "BOUNCE")]
    Bounce,
}

impl ResultCode {
    pub const ALL: [ResultCode; 5] = [Self::Auth, Self::Tls, Self::Opp, Self::Defer, Self::Bounce];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "AUTH",
            Self::Tls => "TLS",
            Self::Opp => "OPP",
            Self::Defer => "DEFER",
            Self::Bounce => "BOUNCE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn delivered(self) -> bool {
        matches!(self, Self::Auth | Self::Tls | Self::Opp)
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the sender did with one MX host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum HostCode {
    /// Not even dialled (e.g. its address or TLSA lookup failed).
    #[serde(rename = "SKIP-pre")]
    SkipPre,
    /// Connected, saw no usable STARTTLS, quit.
    #[serde(rename = "SKIP-ehlo")]
    SkipEhlo,
    /// Began TLS but gave up before MAIL FROM (authentication or handshake failed).
    #[serde(rename = "SKIP-tls")]
    SkipTls,
    /// The SMTP dialogue failed temporarily (4xx, drop, timeout).
    #[serde(rename = "TEMPFAIL")]
    TempFail,
    /// The SMTP dialogue failed permanently (5xx).
    #[serde(rename = "REJECT")]
    Reject,
    #[serde(rename = "AUTH")]
    Auth,
    #[serde(rename = "TLS")]
    Tls,
    #[serde(rename = "OPP")]
    Opp,
    /// Listed in the MX RRset but never reached, because an earlier host took the message.
    #[serde(rename = "UNUSED")]
    Unused,
}

impl HostCode {
    pub const ALL: [HostCode; 9] = [
        Self::SkipPre,
        Self::SkipEhlo,
        Self::SkipTls,
        Self::TempFail,
        Self::Reject,
        Self::Auth,
        Self::Tls,
        Self::Opp,
        Self::Unused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SkipPre => "SKIP-pre",
            Self::SkipEhlo => "SKIP-ehlo",
            Self::SkipTls => "SKIP-tls",
            Self::TempFail => "TEMPFAIL",
            Self::Reject => "REJECT",
            Self::Auth => "AUTH",
            Self::Tls => "TLS",
            Self::Opp => "OPP",
            Self::Unused => "UNUSED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for HostCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Invariants the receiving side (the impartial witness) can check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Invariant {
    /// No `MAIL FROM` in cleartext at any endpoint whose host has a usable TLSA (RFC 7672 §2.2).
    NoClear,
    /// No `MAIL FROM` at all at this host.
    NoMail(String),
    /// No TCP connection at all to the endpoints this address or host leads to; with a port,
    /// to those of them that listen on it (a trap on port 25 beside a relay route on 2525).
    NoConnect { at: ConnectTarget, port: Option<u16> },
    /// Every ClientHello to this host carries this server name (RFC 7672 §8.1).
    Sni { host: String, name: String },
    /// This query never reaches the authoritative server; for an underscored name
    /// (`_25._tcp.mx1...`), no query of any type for an underscored proper ancestor either, which
    /// only a lookup heading for it asks (a qname-minimised step, RFC 9156 §2.3).
    NoQuery { name: String, rtype: String },
    /// This query reaches the authoritative server at least once.
    Query { name: String, rtype: String },
    /// The first query for `before` reaches the server before the first for `after`, and
    /// both are asked.
    Order {
        before: (String, String),
        after: (String, String),
    },
    /// This query reaches the server over TCP (e.g. the retry after a truncated UDP answer,
    /// RFC 7766 §5).
    Tcp { name: String, rtype: String },
    /// The message was accepted exactly once, with the submitted body hash.
    Once,
    /// The sender's own report does not claim DANE-authenticated delivery.
    NoAuthLog,
}

impl Invariant {
    /// Parse the written form used in scenario files.
    pub fn parse(s: &str) -> Result<Invariant, String> {
        let s = s.trim();
        let arg = |prefix: &str| -> Option<String> {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .map(|r| r.trim().to_string())
        };
        match s {
            "NOCLEAR" => return Ok(Invariant::NoClear),
            "ONCE" => return Ok(Invariant::Once),
            "NOAUTH-LOG" => return Ok(Invariant::NoAuthLog),
            _ => {}
        }
        if let Some(h) = arg("NOMAIL") {
            return name_arg(&h, "NOMAIL(host) needs the host, e.g. NOMAIL(mx1.example.test)").map(Invariant::NoMail);
        }
        if let Some(a) = arg("NOCONNECT") {
            return connect_target(&a).map(|(at, port)| Invariant::NoConnect { at, port });
        }
        if let Some(q) = arg("NOQUERY") {
            let (name, rtype) = query_arg(&q, "NOQUERY")?;
            return Ok(Invariant::NoQuery { name, rtype });
        }
        if let Some(q) = arg("QUERY") {
            let (name, rtype) = query_arg(&q, "QUERY")?;
            return Ok(Invariant::Query { name, rtype });
        }
        if let Some(q) = arg("TCP") {
            let (name, rtype) = query_arg(&q, "TCP")?;
            return Ok(Invariant::Tcp { name, rtype });
        }
        if let Some(q) = arg("ORDER") {
            let example = "e.g. ORDER(mx1.example.test A < _25._tcp.mx1.example.test TLSA)";
            let Some((before, after)) = q.split_once('<') else {
                return Err(format!("ORDER takes two queries separated by `<`, {example}"));
            };
            if after.contains('<') {
                // One relation per invariant: a chain would hide which pair failed.
                return Err(format!(
                    "ORDER compares two queries; write one ORDER per pair, {example}"
                ));
            }
            let side = |written: &str, which: &str| {
                query_arg(written, "ORDER").map_err(|e| match e.split_once(", e.g.") {
                    Some((why, _)) => format!("{why} on the {which} of `<`, {example}"),
                    None => format!("{e} (the {which} of `<`)"),
                })
            };
            let before = side(before, "left")?;
            let after = side(after, "right")?;
            if before == after {
                return Err(format!("ORDER names the same query twice, {example}"));
            }
            return Ok(Invariant::Order { before, after });
        }
        if let Some(rest) = s.strip_prefix("SNI") {
            if let Some((host, name)) = rest.split_once('=')
                && let Some(h) = host.trim().strip_prefix('(').and_then(|h| h.strip_suffix(')'))
            {
                let example = "e.g. SNI(mx1.example.test) = mx1.example.test";
                return Ok(Invariant::Sni {
                    host: name_arg(h, &format!("SNI(host) = name needs the MX host, {example}"))?,
                    // RFC 7672 §8.1: the client sends the MX host's name; an empty HostName is
                    // not allowed either (RFC 6066 §3), so "no name" is never what to expect.
                    name: name_arg(
                        name,
                        &format!("SNI(host) = name needs the name every ClientHello must carry, {example}"),
                    )?,
                });
            }
            return Err("SNI is written SNI(host) = name".into());
        }
        Err(format!(
            "unknown invariant `{s}`; known: NOCLEAR, ONCE, NOAUTH-LOG, NOMAIL(host), NOCONNECT(addr), \
             SNI(host) = name, NOQUERY(name TYPE), QUERY(name TYPE), TCP(name TYPE), \
             ORDER(name TYPE < name TYPE)"
        ))
    }

    /// The RFC section whose rule this invariant checks.
    pub fn rfc(&self) -> &'static str {
        match self {
            Invariant::NoClear => "RFC 7672 §2.2",
            Invariant::NoMail(_) => "RFC 7672 §2.2",
            Invariant::NoConnect { .. } => "RFC 7672 §2.2.1",
            Invariant::Sni { .. } => "RFC 7672 §8.1",
            Invariant::NoQuery { .. } => "RFC 7672 §2.2.2",
            // The lookups RFC 7672 §2.2.2 orders: addresses first, TLSA only when secure.
            Invariant::Query { .. } | Invariant::Order { .. } => "RFC 7672 §2.2.2",
            Invariant::Tcp { .. } => "RFC 7766 §5",
            Invariant::Once => "RFC 5321 §6.1",
            Invariant::NoAuthLog => "RFC 7672 §2.2.3",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invariant::NoClear => f.write_str("NOCLEAR"),
            Invariant::NoMail(h) => write!(f, "NOMAIL({h})"),
            Invariant::NoConnect { at, port: None } => write!(f, "NOCONNECT({at})"),
            Invariant::NoConnect {
                at: ConnectTarget::Address(IpAddr::V6(a)),
                port: Some(p),
            } => write!(f, "NOCONNECT([{a}]:{p})"),
            Invariant::NoConnect { at, port: Some(p) } => write!(f, "NOCONNECT({at}:{p})"),
            Invariant::Sni { host, name } => write!(f, "SNI({host}) = {name}"),
            Invariant::NoQuery { name, rtype } => write!(f, "NOQUERY({name} {rtype})"),
            Invariant::Query { name, rtype } => write!(f, "QUERY({name} {rtype})"),
            Invariant::Tcp { name, rtype } => write!(f, "TCP({name} {rtype})"),
            Invariant::Order { before, after } => {
                write!(f, "ORDER({} {} < {} {})", before.0, before.1, after.0, after.1)
            }
            Invariant::Once => f.write_str("ONCE"),
            Invariant::NoAuthLog => f.write_str("NOAUTH-LOG"),
        }
    }
}

/// `name TYPE` of a query invariant: a name and a record type mnemonic.
fn query_arg(written: &str, what: &str) -> Result<(String, String), String> {
    let mut parts = written.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        // The root `.` is a name one can query (Postfix's DNSSEC probe asks `. NS`; issue 14):
        // the loader then refuses it unless the world has a root zone. Only `..` and the like
        // are empty.
        (Some(name), Some(rtype), None) if name == "." || !name.trim_end_matches('.').is_empty() => {
            let rtype = rtype.to_ascii_uppercase();
            if hickory_proto::rr::RecordType::from_str(&rtype).is_err() {
                return Err(format!("{what}: `{rtype}` is not a record type"));
            }
            Ok((fqdn(name), rtype))
        }
        (name, rtype, _) => {
            let why = match (name, rtype) {
                (None, _) => "; nothing is given",
                (Some(n), Some(_)) if n.trim_end_matches('.').is_empty() => "; the name is empty",
                (Some(_), None) => "; the type is missing",
                _ => "; more than a name and a type is given",
            };
            Err(format!(
                "{what} takes a name and a type{why}, e.g. {what}(_25._tcp.mx1.example.test TLSA)"
            ))
        }
    }
}

/// The host or name an invariant names, as [`fqdn`]: one name, never nothing (issue 14:
/// `SNI(host) =` became a check that the server name is `.`, which no sender sends).
fn name_arg(written: &str, needs: &str) -> Result<String, String> {
    let n = written.trim();
    if n.is_empty() || n == "." || n.contains(char::is_whitespace) {
        let what = if n.is_empty() {
            "no name is given".to_string()
        } else {
            format!("`{n}` is not one name")
        };
        return Err(format!("{needs}; {what}"));
    }
    Ok(fqdn(n))
}

/// What `NOCONNECT` names: an endpoint address, or a host (the endpoints it leads to).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ConnectTarget {
    Address(IpAddr),
    Host(String),
}

impl fmt::Display for ConnectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectTarget::Address(a) => write!(f, "{a}"),
            ConnectTarget::Host(h) => f.write_str(h),
        }
    }
}

/// The target and optional port of `NOCONNECT(addr)`, `NOCONNECT(addr:port)`,
/// `NOCONNECT([v6]:port)`, `NOCONNECT(host)` or `NOCONNECT(host:port)`.
fn connect_target(a: &str) -> Result<(ConnectTarget, Option<u16>), String> {
    let usage = "NOCONNECT takes an endpoint address or a host, with an optional port: NOCONNECT(192.0.2.10), \
                 NOCONNECT(192.0.2.10:25), NOCONNECT([2001:db8::10]:2525) or NOCONNECT(mx1.example.test:25)";
    if a.starts_with('[') && !a.contains("]:") {
        return Err(format!("{usage}; `{a}` is not one"));
    }
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Ok((ConnectTarget::Address(ip), None));
    }
    if let Ok(sa) = a.parse::<SocketAddr>() {
        return Ok((
            ConnectTarget::Address(sa.ip()),
            Some(port_arg(a, &sa.port().to_string())?),
        ));
    }
    let (name, port) = match a.rsplit_once(':') {
        Some((n, p)) => (n, Some(port_arg(a, p)?)),
        None => (a, None),
    };
    if name.starts_with('[') || name.contains(':') || name.parse::<IpAddr>().is_ok() {
        return Err(format!("{usage}; `{a}` is not one"));
    }
    let host = name_arg(name, usage)?;
    Ok((ConnectTarget::Host(host), port))
}

/// A TCP port an endpoint can listen on: 1 to 65535 (port 0 is no port a client can dial).
pub fn port_arg(written: &str, port: &str) -> Result<u16, String> {
    match port.trim().parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        Ok(0) => Err(format!(
            "`{written}`: port 0 is no port a sender can connect to; write 1 to 65535 (25 for SMTP)"
        )),
        _ => Err(format!(
            "`{written}`: `{port}` is not a TCP port; write 1 to 65535 (25 for SMTP)"
        )),
    }
}

/// Lowercase, with the trailing dot: the one spelling of a host name used in reports.
pub fn fqdn(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invariants_round_trip_through_their_written_form() {
        for s in [
            "NOCLEAR",
            "ONCE",
            "NOAUTH-LOG",
            "NOMAIL(mx1.example.test.)",
            "NOCONNECT(192.0.2.10)",
            "SNI(mx1.example.test.) = mx1.example.test.",
            "NOQUERY(_25._tcp.mx1.example.test. TLSA)",
            "NOQUERY(. NS)",
            "QUERY(. NS)",
        ] {
            assert_eq!(Invariant::parse(s).unwrap().to_string(), s);
        }
        assert!(Invariant::parse("NOCLEAR(x)").is_err());
        // The port is optional; a host names the endpoints it leads to.
        for (s, shown) in [
            ("NOCONNECT(192.0.2.10:25)", "NOCONNECT(192.0.2.10:25)"),
            ("NOCONNECT( 192.0.2.10 )", "NOCONNECT(192.0.2.10)"),
            ("NOCONNECT([2001:db8::10]:2525)", "NOCONNECT([2001:db8::10]:2525)"),
            ("NOCONNECT(mx1.example.test:25)", "NOCONNECT(mx1.example.test.:25)"),
            ("NOCONNECT(MX1.example.test)", "NOCONNECT(mx1.example.test.)"),
        ] {
            assert_eq!(Invariant::parse(s).unwrap().to_string(), shown, "{s}");
            assert_eq!(Invariant::parse(shown).unwrap().to_string(), shown, "{shown}");
        }
        for (s, want) in [
            ("NOCONNECT(192.0.2.10:0)", "port 0"),
            ("NOCONNECT(mx1.example.test:0)", "port 0"),
            ("NOCONNECT(mx1.example.test:65536)", "not a TCP port"),
            ("NOCONNECT(192.0.2.10:99999)", "not a TCP port"),
            ("NOCONNECT(mx1.example.test:smtp)", "not a TCP port"),
            ("NOCONNECT([2001:db8::10])", "is not one"),
            ("NOCONNECT(:25)", "no name is given"),
        ] {
            let e = Invariant::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(Invariant::parse("NOQUERY(x)").is_err());
        // The query-log invariants (issue 15).
        assert_eq!(
            Invariant::parse("ORDER(mx1.example.test a < _25._tcp.mx1.example.test tlsa)")
                .unwrap()
                .to_string(),
            "ORDER(mx1.example.test. A < _25._tcp.mx1.example.test. TLSA)"
        );
        assert_eq!(
            Invariant::parse("TCP(_25._tcp.mx1.example.test TLSA)")
                .unwrap()
                .to_string(),
            "TCP(_25._tcp.mx1.example.test. TLSA)"
        );
        assert_eq!(
            Invariant::parse("QUERY(example.test MX)").unwrap().to_string(),
            "QUERY(example.test. MX)"
        );
        for bad in [
            "ORDER(mx1.example.test A)",
            "ORDER(mx1.example.test A < mx1.example.test A)",
            "ORDER(mx1.example.test A < )",
            "QUERY(mx1.example.test NOTATYPE)",
            "TCP(.. A)",
            "QUERY()",
        ] {
            assert!(Invariant::parse(bad).is_err(), "{bad}");
        }
        // Each misuse says what is wrong, and ORDER which side (issue 15).
        for (bad, want) in [
            (
                "ORDER(mx1.example.test A _25._tcp.mx1.example.test TLSA)",
                "separated by `<`",
            ),
            (
                "ORDER(mx1.example.test A < mx1.example.test. a)",
                "the same query twice",
            ),
            ("ORDER( < mx1.example.test A)", "nothing is given on the left of `<`"),
            ("ORDER(mx1.example.test A < )", "nothing is given on the right of `<`"),
            (
                "ORDER(mx1.example.test < example.test MX)",
                "the type is missing on the left",
            ),
            (
                "ORDER(mx1.example.test ADDR < example.test MX)",
                "`ADDR` is not a record type (the left",
            ),
            (
                "ORDER(example.test MX < mx1.example.test A < mx2.example.test A)",
                "one ORDER per pair",
            ),
            ("QUERY(_25._tcp.mx1.example.test TLSB)", "`TLSB` is not a record type"),
            ("QUERY(_25._tcp.mx1.example.test TLSA A)", "more than a name and a type"),
            ("TCP(_25._tcp.mx1.example.test)", "the type is missing"),
            ("TCP(.. TLSA)", "the name is empty"),
            ("QUERY(   )", "nothing is given"),
        ] {
            let e = Invariant::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    /// Every name an invariant takes is one name (issue 14: `SNI(host) =` was read as the
    /// name `.`, and became a violation at run time).
    #[test]
    fn invariants_name_something() {
        for (s, want) in [
            ("SNI(mx1.example.test) =", "needs the name every ClientHello must carry"),
            ("SNI(mx1.example.test) =   ", "no name is given"),
            ("SNI(mx1.example.test) = .", "`.` is not one name"),
            ("SNI(mx1.example.test) = a b", "`a b` is not one name"),
            ("SNI() = mx1.example.test", "needs the MX host"),
            ("NOMAIL()", "NOMAIL(host) needs the host"),
            ("NOMAIL( . )", "`.` is not one name"),
        ] {
            let e = Invariant::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn codes_parse_their_own_spelling_only() {
        for c in ResultCode::ALL {
            assert_eq!(ResultCode::parse(c.as_str()), Some(c));
        }
        for c in HostCode::ALL {
            assert_eq!(HostCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(ResultCode::parse("auth"), None);
    }
}
