//! DNAME support in the reference sender's validating stub (RFC 7672 §2.1.3).
//!
//! RFC 7672 §2.1.3 leaves DNAME to the validating stub: a name below a DNAME owner is
//! answered with the signed DNAME and an unsigned, synthesized CNAME (RFC 6672 §3.1), and
//! the stub must check the two together; the MTA then only sees CNAMEs. hickory-resolver
//! 0.26 does not know DNAME: it judges the unsigned CNAME bogus and drops the whole answer.
//!
//! So when a validated lookup comes back bogus, ask once more through hickory's DNSSEC
//! handle alone (no caching client), which keeps a proof per record instead of failing,
//! and look for a DNAME that explains the CNAME (RFC 6672 §5.3.1): the CNAME is then as
//! secure as the DNAME, and the rest of the chain is an ordinary lookup of its target.

use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::net::DnsHandle;
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::xfer::FirstAnswer;
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::{DnsRequestOptions, Query};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};

use super::lookup::{DnssecState, LookupError};
use super::runtime::WorldRuntime;
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

/// hickory's DNSSEC handle over a pool of the one world server, without a caching client.
pub(super) struct DnameCheck {
    handle: DnssecDnsHandle<NameServerPool<WorldRuntime>>,
    options: DnsRequestOptions,
}

impl std::fmt::Debug for DnameCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnameCheck").finish_non_exhaustive()
    }
}

impl DnameCheck {
    pub(super) fn new(
        server: NameServerConfig,
        opts: &ResolverOpts,
        anchors: Arc<TrustAnchors>,
    ) -> Result<DnameCheck, LookupError> {
        let tls = TlsConfig::new().map_err(|e| LookupError::Resolver(e.to_string()))?;
        let context = Arc::new(PoolContext::new(opts.clone(), tls));
        let pool = NameServerPool::from_config([server], context, WorldRuntime::default());
        let mut options = DnsRequestOptions::default();
        options.use_edns = opts.edns0;
        options.edns_set_dnssec_ok = true;
        options.recursion_desired = opts.recursion_desired;
        Ok(DnameCheck {
            handle: DnssecDnsHandle::with_trust_anchor(pool, anchors),
            options,
        })
    }

    /// Ask `qname`/`rtype` again and explain its CNAME by a DNAME, if one was sent.
    pub(super) async fn redirect(&self, qname: &Name, rtype: RecordType) -> Option<Redirect> {
        let response = self
            .handle
            .lookup(Query::query(qname.clone(), rtype), self.options)
            .first_answer()
            .await
            .ok()?;
        explain(qname, &response.answers)
    }
}

/// Find the DNAME among `answers` that covers `qname` and check the CNAME against it.
fn explain(qname: &Name, answers: &[Record]) -> Option<Redirect> {
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
