//! DNAME redirection as an authoritative server performs it (RFC 6672).
//!
//! hickory-server neither knows DNAME nor synthesizes CNAMEs, so the world does it in front
//! of the catalog: a query for a name strictly below a DNAME owner is answered with the DNAME
//! RRset (and its RRSIGs), an unsigned CNAME from the query name to the substituted name
//! (RFC 6672 §3.1: "synthesized", TTL of the DNAME), and then whatever the world holds for
//! that name. A validator checks the CNAME against the signed DNAME (RFC 6672 §5.3.1); the
//! CNAME itself is never signed.

use std::collections::BTreeMap;

use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::record::{dname_substitute, dname_target};
use super::world::SignedWorld;

/// A DNAME chain longer than this is a loop (`a DNAME b`, `b DNAME a`); stop synthesizing.
pub(crate) const MAX_DNAMES: usize = 8;

/// One DNAME of the world, ready to be copied into answers.
#[derive(Debug, Clone)]
pub(crate) struct Dname {
    pub owner: Name,
    pub target: Name,
    pub ttl: u32,
    /// The DNAME record and, in a signed zone, its RRSIGs.
    record: Record,
    rrsigs: Vec<Record>,
}

/// The substituted name would be longer than 255 octets (RFC 6672 §2.2: YXDOMAIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

impl Dname {
    /// RFC 6672 §2.2: replace the owner suffix of `qname` with the target.
    pub(crate) fn substitute(&self, qname: &Name) -> Result<Name, TooLong> {
        dname_substitute(qname, &self.owner, &self.target).ok_or(TooLong)
    }

    /// The DNAME RRset for an answer; RRSIGs only for a client that asked for them (RFC 4035 §3.2.1).
    pub(crate) fn records(&self, dnssec_ok: bool) -> Vec<Record> {
        let mut out = vec![self.record.clone()];
        if dnssec_ok {
            out.extend(self.rrsigs.iter().cloned());
        }
        out
    }

    /// The synthesized CNAME (RFC 6672 §3.1): owner the query name, TTL that of the DNAME.
    pub(crate) fn cname(&self, qname: &Name, target: &Name) -> Record {
        Record::from_rdata(qname.clone(), self.ttl, RData::CNAME(CNAME(target.clone())))
    }
}

/// Every DNAME of a world, by owner.
#[derive(Debug, Clone, Default)]
pub(crate) struct DnameIndex {
    by_owner: BTreeMap<Name, Dname>,
}

impl DnameIndex {
    pub(crate) fn new(world: &SignedWorld) -> Self {
        let mut by_owner = BTreeMap::new();
        for zone in world.zones() {
            let records = &zone.records;
            for (i, rrset) in records.rrsets().iter().enumerate() {
                if rrset.record_type() != RecordType::DNAME {
                    continue;
                }
                // The zone checks allow one DNAME per owner (RFC 6672 §2.4).
                let Some(record) = rrset.records_without_rrsigs().next() else {
                    continue;
                };
                let Some(target) = dname_target(record) else {
                    continue;
                };
                by_owner.insert(
                    rrset.name().clone(),
                    Dname {
                        owner: rrset.name().clone(),
                        target,
                        ttl: record.ttl,
                        record: record.clone(),
                        // `SignedWorld::build` made the DNAME RRSIGs (or failed on them).
                        rrsigs: records.rrsig(i).ok().flatten().into_iter().cloned().collect(),
                    },
                );
            }
        }
        DnameIndex { by_owner }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_owner.is_empty()
    }

    /// The DNAME that redirects `qname`: one at a proper ancestor (RFC 6672 §2.3: the owner
    /// itself is not redirected). The zone checks forbid data below a DNAME, so at most one
    /// ancestor holds one.
    pub(crate) fn covering(&self, qname: &Name) -> Option<&Dname> {
        let qname = qname.to_lowercase();
        let mut name = qname.base_name();
        loop {
            if let Some(d) = self.by_owner.get(&name) {
                return Some(d);
            }
            if name.is_root() {
                return None;
            }
            name = name.base_name();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::NULL;
    use hickory_proto::serialize::binary::BinEncodable;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn dname(owner: &str, target: &str) -> Dname {
        let record = Record::from_rdata(
            name(owner),
            300,
            RData::Unknown {
                code: RecordType::DNAME,
                rdata: NULL::with(name(target).to_bytes().unwrap()),
            },
        );
        Dname {
            owner: name(owner),
            target: name(target),
            ttl: 300,
            record,
            rrsigs: Vec::new(),
        }
    }

    #[test]
    fn substitution_replaces_the_owner_suffix() {
        let d = dname("mail.example.test.", "mail.provider.test.");
        assert_eq!(
            d.substitute(&name("_25._tcp.mx1.mail.example.test.")).unwrap(),
            name("_25._tcp.mx1.mail.provider.test.")
        );
        let target = dname_target(&d.record).unwrap();
        assert_eq!(target, name("mail.provider.test."));
    }

    #[test]
    fn an_overlong_result_is_yxdomain() {
        let long = format!("{}.test.", vec!["a".repeat(60); 4].join("."));
        let d = dname("s.test.", &long);
        let q = name(&format!("{}.s.test.", "b".repeat(60)));
        assert_eq!(d.substitute(&q), Err(TooLong));
    }

    #[test]
    fn only_proper_descendants_are_covered() {
        let mut index = DnameIndex::default();
        let d = dname("mail.example.test.", "mail.provider.test.");
        index.by_owner.insert(d.owner.clone(), d);
        assert!(index.covering(&name("mail.example.test.")).is_none());
        assert!(index.covering(&name("example.test.")).is_none());
        assert!(index.covering(&name("x.y.MAIL.example.test.")).is_some());
    }
}
