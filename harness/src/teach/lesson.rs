//! What the things in a decision trace mean, in a learner's words: a DNSSEC state and what
//! it lets the sender do, a TLSA record's fields, a certificate of the world, a handshake
//! and what the presented chain was compared with, and what the receiving side saw.

use crate::dane::{DaneOutcome, presented_identifiers};
use crate::outcome::EndpointObservation;
use crate::pki::{IssuedCert, Pki, Tlsa};
use crate::sender::TraceStep;
use crate::sender::reference::lookup::{Answer, AnswerKind, DnssecState, RType};
use crate::smtp::Transcript;

/// What a DNSSEC state means (RFC 4033 §5, RFC 7672 §2.1.1).
pub(super) fn state_meaning(state: Option<DnssecState>) -> &'static str {
    match state {
        Some(DnssecState::Secure) => {
            "secure: every signature from the trust anchor (test.) down to this answer validated, so no attacker \
             can have forged it (RFC 4033 §5)"
        }
        Some(DnssecState::Insecure) => {
            "insecure: a validated chain proves this part of the tree unsigned (no DS, or a DS whose algorithm or \
             digest the validator does not support), so nothing vouches for the answer (RFC 4035 §5.2, RFC 7672 §2.1.1)"
        }
        Some(DnssecState::Bogus) => {
            "bogus: the zone is signed but this answer does not validate (a missing, expired or wrong signature, or \
             a DS that names no key); it may be an attack (RFC 4033 §5, RFC 7672 §2.1.1)"
        }
        Some(DnssecState::Indeterminate) => {
            "indeterminate: the keys or proofs needed to validate could not be fetched, so secure and bogus cannot \
             be told apart (RFC 4033 §5)"
        }
        None => {
            "no usable answer: the server failed, refused or stayed silent, which proves nothing about the records \
             (RFC 7672 §2.1.2)"
        }
    }
}

fn failed(a: &Answer) -> bool {
    matches!(a.state, Some(DnssecState::Bogus | DnssecState::Indeterminate))
        || matches!(
            a.kind,
            AnswerKind::ServFail | AnswerKind::Refused | AnswerKind::Timeout | AnswerKind::Error(_)
        )
}

/// What the answer lets the sender do next, with the section that says so.
pub(super) fn consequence(a: &Answer) -> &'static str {
    use AnswerKind::*;
    let secure = a.state == Some(DnssecState::Secure);
    match a.rtype {
        RType::Mx if failed(a) => {
            "the sender cannot know the domain's mail hosts, so it MUST NOT guess: the message waits (RFC 7672 §2.1.2)"
        }
        RType::Mx => match &a.kind {
            Records(_) if secure => {
                "the MX hosts are the domain's own: DANE can protect delivery to it, and the domain name is a \
                 reference identifier for DANE-TA certificates (RFC 7672 §2.2.1, §3.2.2)"
            }
            Records(_) => {
                "the MX hosts could be forged: DANE still applies per host, but only each host's own name \
                 identifies the server (RFC 7672 §2.2.1)"
            }
            NoData => "no MX records: the domain is its own mail host, the implicit MX (RFC 5321 §5.1)",
            _ => "the domain does not exist: the message cannot be delivered (RFC 5321 §5.1)",
        },
        RType::A | RType::Aaaa if failed(a) => {
            "these addresses are not used; other addresses or MX hosts may still be (RFC 7672 §2.1.2)"
        }
        RType::A | RType::Aaaa => match &a.kind {
            Records(_) if secure => {
                "secure addresses: the sender may now look up the host's TLSA records (RFC 7672 §2.2.2)"
            }
            Records(_) => {
                "insecure addresses: the sender SHOULD NOT look up TLSA, so this host is not DANE-protected \
                 (RFC 7672 §2.2.2)"
            }
            NoData if secure => "no address of this type (a proven absence); the other address family may have one",
            _ => "no address of this type",
        },
        RType::Tlsa if failed(a) => {
            "a failed TLSA lookup may be an attacker hiding the records: the host MUST be treated as unusable \
             (RFC 7672 §2.1.2)"
        }
        RType::Tlsa => match (&a.kind, secure) {
            (Records(_), true) => {
                "the host has committed to TLS: its usable records decide how its certificate is checked \
                 (RFC 7672 §2.2)"
            }
            (_, true) => {
                "a proven absence: DANE does not apply to this host, so opportunistic TLS, cleartext allowed \
                 (RFC 7672 §2.2)"
            }
            _ => "unauthenticated TLSA data is ignored: opportunistic TLS (RFC 7672 §2.2.3)",
        },
    }
}

/// The three numbers of a TLSA record in words (RFC 6698 §2.1, names from RFC 7218).
pub(super) fn tlsa_fields(t: &Tlsa) -> String {
    let usage = match t.usage {
        Tlsa::PKIX_TA => "PKIX-TA(0): a public CA, unusable for SMTP (RFC 7672 §3.1.3)".to_string(),
        Tlsa::PKIX_EE => {
            "PKIX-EE(1): a CA-validated server certificate, unusable for SMTP (RFC 7672 §3.1.3)".to_string()
        }
        Tlsa::DANE_TA => "DANE-TA(2): a trust anchor the server's chain must contain (RFC 7672 §3.1.2)".to_string(),
        Tlsa::DANE_EE => {
            "DANE-EE(3): the server's own certificate or key; names and dates are not checked (RFC 7672 §3.1.1)"
                .to_string()
        }
        u => format!("usage {u}: unknown (RFC 6698 §4.1)"),
    };
    let selector = match t.selector {
        Tlsa::CERT => "Cert(0): the whole certificate (changes at every renewal)".to_string(),
        Tlsa::SPKI => "SPKI(1): the public key only (survives a renewal that keeps the key)".to_string(),
        s => format!("selector {s}: unknown"),
    };
    let matching = match t.matching {
        Tlsa::FULL => "Full(0): the data itself".to_string(),
        Tlsa::SHA2_256 => "SHA2-256(1): its SHA-256 digest".to_string(),
        Tlsa::SHA2_512 => "SHA2-512(2): its SHA-512 digest".to_string(),
        m => format!("matching type {m}: unknown"),
    };
    format!("{usage}; {selector}; {matching}")
}

/// The world's certificate with this DER, if it is one.
pub(super) fn find<'a>(pki: &'a Pki, der: &[u8]) -> Option<&'a IssuedCert> {
    pki.names().filter_map(|n| pki.get(n)).find(|c| c.der == der)
}

/// The world's certificates a TLSA record matches, by name.
pub(super) fn matching_certs(pki: &Pki, t: &Tlsa) -> Vec<String> {
    pki.names()
        .filter(|n| pki.get(n).is_some_and(|c| t.matches_cert(&c.der)))
        .map(|n| format!("`{n}`"))
        .collect()
}

/// "`mx1-new` (names mx1.example.test; valid 2026-01-01 to 2027-01-01)".
pub(super) fn cert_label(pki: &Pki, der: &[u8]) -> String {
    let name = find(pki, der).map_or_else(
        || "a certificate not of this world".to_string(),
        |c| format!("`{}`", c.name),
    );
    let names = presented_identifiers(der);
    let names = if names.is_empty() {
        "no DNS names".to_string()
    } else {
        format!("names {}", names.join(", "))
    };
    match validity(der) {
        Some((from, to)) => format!("{name} ({names}; valid {from} to {to})"),
        None => format!("{name} ({names})"),
    }
}

fn validity(der: &[u8]) -> Option<(String, String)> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let v = c.validity();
    Some((
        v.not_before.to_datetime().format(&day).ok()?,
        v.not_after.to_datetime().format(&day).ok()?,
    ))
}

fn spki_hex(der: &[u8]) -> String {
    crate::pki::spki_sha256(der).map_or_else(|_| "(unparseable)".into(), |h| h.to_uppercase())
}

/// The presented chain, what each usable record was compared with, and the verdict.
pub(super) fn handshake(
    pki: &Pki,
    presented: &[Vec<u8>],
    records: &[Tlsa],
    reference_ids: &[String],
    outcome: Option<&DaneOutcome>,
) -> Vec<String> {
    let mut out = Vec::new();
    if presented.is_empty() {
        out.push("presented: no certificate reached the sender's check".into());
    }
    for (depth, der) in presented.iter().enumerate() {
        out.push(format!(
            "presented at depth {depth}: {}, SPKI SHA-256 {}",
            cert_label(pki, der),
            spki_hex(der)
        ));
    }
    if records.is_empty() {
        out.push("the certificate is not checked: without usable secure TLSA records there is nothing to check it against (RFC 7672 §2.2)".into());
        return out;
    }
    for r in records {
        out.push(format!("compared with TLSA {}:", r.presentation()));
        // DANE-EE is about the leaf alone; a DANE-TA anchor may be any element (RFC 7672 §3.1).
        let candidates: Vec<(usize, &Vec<u8>)> = if r.usage == Tlsa::DANE_EE {
            presented.iter().enumerate().take(1).collect()
        } else {
            presented.iter().enumerate().collect()
        };
        let hit = candidates.iter().find(|(_, der)| r.matches_cert(der));
        match hit {
            Some((depth, der)) => out.push(format!(
                "  matches the certificate at depth {depth}, {}",
                find(pki, der).map_or_else(|| "not of this world".to_string(), |c| format!("`{}`", c.name))
            )),
            None => {
                for (depth, der) in &candidates {
                    if let Ok(t) = Tlsa::compute(r.usage, r.selector, r.matching, der) {
                        out.push(format!("  depth {depth} would need {}: no match", t.presentation()));
                    }
                }
                let named = matching_certs(pki, r);
                if !named.is_empty() {
                    out.push(format!(
                        "  the record names {} of this world, which the server did not present",
                        named.join(", ")
                    ));
                }
            }
        }
    }
    // Names matter only under DANE-TA (RFC 7672 §3.1.1: DANE-EE ignores them).
    if !reference_ids.is_empty() && records.iter().any(|r| r.usage == Tlsa::DANE_TA) {
        out.push(format!(
            "reference identifiers (names a DANE-TA leaf must carry, RFC 7672 §3.2.2): {}",
            reference_ids.join(", ")
        ));
    }
    match outcome {
        Some(o) => out.push(format!("verdict: {o}")),
        None => out.push("verdict: none (the handshake ended before the certificate was checked)".into()),
    }
    out
}

/// The section that covers a step the sender left uncited (its `rfc` is snapshotted, so
/// transport steps keep `None` there).
pub(super) fn cite(step: &TraceStep) -> Option<String> {
    if let Some(r) = &step.rfc {
        return Some(r.clone());
    }
    let t = step.text.as_str();
    let by_prefix = [
        ("connected to ", "RFC 5321 §5.1"),
        ("cannot connect to ", "RFC 5321 §5.1"),
        ("EHLO: STARTTLS", "RFC 3207 §4"),
        ("message accepted by ", "RFC 5321 §4.1.1.4"),
        ("result: ", "RFC 7672 §2.2"),
        (
            "exchange-online: ",
            "docs/CONFORMANCE.md, Exchange Online's documented codes",
        ),
        ("cannot set up the validating resolver", "RFC 7672 §2.1.2"),
    ];
    if let Some((_, r)) = by_prefix.iter().find(|(p, _)| t.starts_with(p)) {
        return Some((*r).to_string());
    }
    // "HOST: CODE: reason": where the sender gave a host up.
    let code = t.split(": ").nth(1)?;
    let r = match code {
        "SKIP-pre" => "RFC 7672 §2.1.2",
        "SKIP-ehlo" => "RFC 7672 §2.2",
        "SKIP-tls" => "RFC 7672 §3.2, §2.2",
        "TEMPFAIL" => "RFC 5321 §4.2.1, §4.5.4.1",
        "REJECT" => "RFC 5321 §4.2.1",
        _ => return None,
    };
    Some(r.to_string())
}

/// One line per connection the endpoint saw (and what an attacker in front of it did).
pub(super) fn witness(e: &EndpointObservation) -> Vec<String> {
    let mut out = vec![format!(
        "{} at {}{} ({}):",
        e.host,
        e.address,
        if e.port == 25 {
            String::new()
        } else {
            format!(" port {}", e.port)
        },
        e.behaviour
    )];
    if e.connections.is_empty() {
        out.push("  no connection".into());
    }
    for t in &e.connections {
        out.push(format!("  connection {}: {}", t.connection, connection(t)));
    }
    for a in &e.attacker {
        out.push(format!("  attacker in front of it: {a}"));
    }
    out
}

/// One finished connection in a line, as the endpoint recorded it.
pub(super) fn connection(t: &Transcript) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &t.ehlo {
        parts.push(format!("EHLO {e}"));
    }
    parts.push(
        if t.starttls_offered {
            "STARTTLS offered"
        } else {
            "STARTTLS not offered"
        }
        .to_string(),
    );
    if t.starttls_used {
        parts.push("STARTTLS begun".into());
        match &t.client_hello_sni {
            Some(s) => parts.push(format!("SNI {s}")),
            None => parts.push("no SNI".into()),
        }
    }
    if let Some(tls) = &t.tls {
        parts.push(format!("{} presenting {}", tls.version, tls.chain_label));
    }
    if let Some(a) = &t.client_alert {
        parts.push(format!("client alert {a}"));
    }
    match &t.mail_from {
        Some(m) if m.over_tls => parts.push(format!("MAIL FROM <{}> over TLS", m.address)),
        Some(m) => parts.push(format!("MAIL FROM <{}> in cleartext", m.address)),
        None => parts.push("no MAIL FROM".into()),
    }
    if t.accepted {
        parts.push("message accepted".into());
    }
    parts.push(format!("ended: {}", t.end));
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> TraceStep {
        TraceStep {
            step: 1,
            text: text.into(),
            rfc: None,
            facts: Vec::new(),
        }
    }

    #[test]
    fn uncited_steps_get_the_section_that_covers_them() {
        assert_eq!(cite(&step("EHLO: STARTTLS offered")).as_deref(), Some("RFC 3207 §4"));
        assert_eq!(
            cite(&step("mx1.example.test.: SKIP-tls: DANE authentication failed")).as_deref(),
            Some("RFC 7672 §3.2, §2.2")
        );
        assert_eq!(cite(&step("something new")), None);
        let mut cited = step("anything");
        cited.rfc = Some("RFC 7672 §2.2".into());
        assert_eq!(cite(&cited).as_deref(), Some("RFC 7672 §2.2"));
    }

    #[test]
    fn tlsa_fields_name_usage_selector_and_matching_type() {
        let t = Tlsa {
            usage: 1,
            selector: 0,
            matching: 2,
            data: vec![0; 64],
        };
        let f = tlsa_fields(&t);
        assert!(
            f.starts_with("PKIX-EE(1)") && f.contains("unusable for SMTP (RFC 7672 §3.1.3)"),
            "{f}"
        );
        assert!(f.contains("Cert(0)") && f.contains("SHA2-512(2)"), "{f}");
    }
}
