//! DNAME support in the reference sender's validating stub (RFC 7672 §2.1.3).
//!
//! RFC 7672 §2.1.3 leaves DNAME to the validating stub: a name below a DNAME owner is
//! answered with the signed DNAME and an unsigned, synthesized CNAME (RFC 6672 §3.1), and
//! the stub must check the two together; the MTA then only sees CNAMEs. hickory-resolver
//! 0.26 does not know DNAME: it judges the unsigned CNAME bogus and drops the whole answer.
//!
//! The stub follows chains itself over hickory's DNSSEC handle, which keeps a proof per
//! record; for an unsigned CNAME it looks for a DNAME in the same answer that explains it
//! (RFC 6672 §5.3.1): the CNAME is then as secure as the DNAME, and the rest of the chain
//! is an ordinary lookup of its target.

use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::rr::{Name, RData, Record};

use super::lookup::DnssecState;
use crate::dns::{dname_substitute, dname_target};

/// A DNAME that redirected a query, as the stub checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Lowercase FQDN of the DNAME owner.
    pub owner: String,
    /// The DNAME target.
    pub target: String,
    /// The query name after substitution (RFC 6672 §2.2): where the lookup continues.
    pub substituted: Name,
    /// The DNAME's own validation state; the synthesized CNAME inherits it.
    pub state: DnssecState,
    /// Why the state, for the trace (e.g. a CNAME that does not match the DNAME).
    pub why: &'static str,
}

/// Find the DNAME among `answers` that covers `qname` and check the CNAME against it.
pub(super) fn explain(qname: &Name, answers: &[Record]) -> Option<Redirect> {
    let qname = qname.to_lowercase();
    let (dname, target) = answers.iter().find_map(|r| {
        let owner = r.name.to_lowercase();
        // RFC 6672 §2.3: only names strictly below the owner are redirected.
        (owner != qname && owner.zone_of(&qname))
            .then(|| dname_target(r))
            .flatten()
            .map(|t| (r, t))
    })?;
    let owner = dname.name.to_lowercase();
    let substituted = dname_substitute(&qname, &owner, &target)?.to_lowercase();
    let cname = answers.iter().find_map(|r| match &r.data {
        RData::CNAME(c) if r.name.to_lowercase() == qname => Some(c.0.to_lowercase()),
        _ => None,
    });
    let (state, why) = match (dname.proof, cname) {
        // RFC 6672 §5.3.1: a CNAME that is not the DNAME's substitution is a forgery.
        (_, Some(c)) if c != substituted => (
            DnssecState::Bogus,
            "the CNAME in the answer is not the one the DNAME synthesizes",
        ),
        (Proof::Secure, _) => (DnssecState::Secure, "the DNAME validated; the CNAME follows from it"),
        (Proof::Insecure, _) => (DnssecState::Insecure, "the DNAME is in an unsigned zone"),
        (Proof::Bogus, _) => (DnssecState::Bogus, "the DNAME failed validation"),
        (Proof::Indeterminate, _) => (DnssecState::Indeterminate, "the DNAME could not be validated"),
    };
    Some(Redirect {
        owner: owner.to_string(),
        target: target.to_string(),
        substituted,
        state,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::RecordType;
    use hickory_resolver::proto::rr::rdata::{A, CNAME, NULL};
    use hickory_resolver::proto::serialize::binary::BinEncodable;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn dname(owner: &str, target: &str, proof: Proof) -> Record {
        let mut r = Record::from_rdata(
            name(owner),
            300,
            RData::Unknown {
                code: RecordType::DNAME,
                rdata: NULL::with(name(target).to_bytes().unwrap()),
            },
        );
        r.proof = proof;
        r
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
    }

    #[test]
    fn a_secure_dname_explains_its_cname() {
        let q = name("mx1.mail.example.test.");
        let answers = [
            dname("mail.example.test.", "mail.provider.test.", Proof::Secure),
            cname("mx1.mail.example.test.", "mx1.mail.provider.test."),
            Record::from_rdata(name("mx1.mail.provider.test."), 300, RData::A(A::new(192, 0, 2, 10))),
        ];
        let r = explain(&q, &answers).unwrap();
        assert_eq!(r.state, DnssecState::Secure);
        assert_eq!(r.owner, "mail.example.test.");
        assert_eq!(r.substituted, name("mx1.mail.provider.test."));
    }

    #[test]
    fn a_forged_cname_beside_a_dname_is_bogus() {
        let q = name("mx1.mail.example.test.");
        let answers = [
            dname("mail.example.test.", "mail.provider.test.", Proof::Secure),
            cname("mx1.mail.example.test.", "evil.attacker.test."),
        ];
        assert_eq!(explain(&q, &answers).unwrap().state, DnssecState::Bogus);
    }

    #[test]
    fn the_state_is_the_dnames_and_the_owner_itself_is_not_redirected() {
        let answers = [dname("mail.example.test.", "mail.provider.test.", Proof::Insecure)];
        let r = explain(&name("a.mail.example.test."), &answers).unwrap();
        assert_eq!(r.state, DnssecState::Insecure);
        assert!(explain(&name("mail.example.test."), &answers).is_none());
        assert!(explain(&name("a.other.test."), &answers).is_none());
    }
}
