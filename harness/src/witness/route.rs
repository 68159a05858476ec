//! Commitment by route: which connections a secure TLSA RRset committed to TLS.
//!
//! The witness never asks an endpoint what it is called. A sender reaches an address by a
//! route: the next-hop domain's MX RRset (RFC 7672 §2.2.1; the domain itself when it has
//! none), an MX host name, the CNAMEs from that name to the address records (§2.2.2), and
//! the TLSA base-domain candidates those give (§2.2.2: the fully expanded name, then the
//! original name, when the whole chain is secure; the original name only when the first
//! CNAME is secure and a later link is not; none when the address records are insecure).
//! Each candidate's `_25._tcp` TLSA RRset is looked up in the world's own records, chains
//! followed to the end; the first secure RRset found commits the route (§2.2.3), insecure
//! ones are skipped as a sender skips them. A route whose MX RRset is insecure commits
//! nothing: a sender MAY then deliver opportunistically (§2.2.1, MX-02).
//!
//! An address can be reached by several routes. When every route commits it, cleartext there
//! is a violation; when some do and some do not, the witness cannot know which one the
//! sender took, and the outcome says so instead of guessing.

use crate::pki::{Tlsa, Usability};
use crate::vocab::fqdn;
use crate::world::Published;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// One way a sender can reach `address` for the next-hop domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The MX host as the MX RRset names it (or the domain itself, implicit MX).
    pub mx_host: String,
    pub preference: u16,
    pub address: IpAddr,
    /// The port the route dials: 25, or a relay's (RFC 7672 §2.2.3: its TLSA name).
    pub port: u16,
    /// The TLSA RRset that commits this route to TLS, if any.
    pub tlsa: Option<RouteTlsa>,
    /// Why the route is or is not committed, in one line for messages.
    pub why: String,
}

/// A secure TLSA RRset found at a TLSA base domain of a route (RFC 7672 §2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTlsa {
    /// The TLSA base domain (an MX host name or its CNAME expansion).
    pub base: String,
    pub records: Vec<Tlsa>,
}

impl RouteTlsa {
    /// RFC 7672 §3.1.3: only DANE-TA(2)/DANE-EE(3) with known selector and matching type.
    /// Empty means TLS is mandatory but the certificate is not checked (§2.2, TLSA-U-01).
    pub fn usable(&self) -> Vec<&Tlsa> {
        self.records
            .iter()
            .filter(|t| matches!(t.usability(), Usability::Usable))
            .collect()
    }
}

/// What the routes to one address say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commitment<'a> {
    /// No route leads here (a trap endpoint) or none commits it: cleartext is allowed.
    Free,
    /// Every route here is committed to TLS.
    Committed(Vec<&'a Route>),
    /// Some routes here are committed and some are not.
    Disputed {
        committed: Vec<&'a Route>,
        free: Vec<&'a Route>,
    },
}

/// Every route of the next-hop domain, as the world publishes it now.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub routes: Vec<Route>,
}

impl Routes {
    pub fn of(published: &Published, domain: &str) -> Routes {
        let domain = fqdn(domain);
        let mx = published.resolve(&domain, "MX");
        let mx_secure = mx.secure;
        // RFC 5321 §5.1: no MX RRset, the domain is its own mail host; a null MX names none.
        let hosts = published.mx(&domain).unwrap_or_else(|| vec![(0, domain.clone())]);
        let mut routes = Vec::new();
        for (preference, host) in hosts {
            routes.extend(host_routes(published, &host, preference, 25, mx_secure));
        }
        Routes { routes }
    }

    /// The one route of a relay that skips MX (RFC 7672 §2.2.2: "any administrator
    /// configured relay hostname, not subject to MX resolution"): no MX RRset is involved, so
    /// the relay host itself is the TLSA base domain candidate, at `_<port>._tcp` (§2.2.3).
    pub fn relay(published: &Published, relay: &crate::scenario::Relay) -> Routes {
        Routes {
            routes: host_routes(published, &relay.host, 0, relay.port, true),
        }
    }

    /// The routes of the world's sender: its relay if it has one, else the next-hop
    /// domain's MX RRset.
    pub fn of_world(world: &crate::world::World) -> Routes {
        match &world.relay {
            Some(r) => Routes::relay(&world.published, r),
            None => Routes::of(&world.published, &world.next_hop),
        }
    }

    /// The routes that end at `address` (every port).
    pub fn at(&self, address: IpAddr) -> Vec<&Route> {
        self.routes.iter().filter(|r| r.address == address).collect()
    }

    /// The routes that end at `address` and dial `port`: only these reach an endpoint
    /// listening there.
    pub fn at_port(&self, address: IpAddr, port: u16) -> Vec<&Route> {
        self.routes
            .iter()
            .filter(|r| r.address == address && r.port == port)
            .collect()
    }

    /// The route through MX host `host` to `address` (a real sender's report names both).
    pub fn via(&self, host: &str, address: IpAddr) -> Option<&Route> {
        let host = fqdn(host);
        self.routes.iter().find(|r| r.mx_host == host && r.address == address)
    }

    /// What the routes to the endpoint at `address` listening on `port` say.
    pub fn commitment(&self, address: IpAddr, port: u16) -> Commitment<'_> {
        let (committed, free): (Vec<&Route>, Vec<&Route>) =
            self.at_port(address, port).into_iter().partition(|r| r.tlsa.is_some());
        match (committed.is_empty(), free.is_empty()) {
            (true, _) => Commitment::Free,
            (false, true) => Commitment::Committed(committed),
            (false, false) => Commitment::Disputed { committed, free },
        }
    }

    /// One line per address where routes disagree, for the outcome.
    pub fn disputes(&self) -> Vec<String> {
        let ends: BTreeSet<(IpAddr, u16)> = self.routes.iter().map(|r| (r.address, r.port)).collect();
        ends.into_iter()
            .filter_map(|(a, port)| match self.commitment(a, port) {
                Commitment::Disputed { committed, free } => Some(format!(
                    "routes disagree at {a}: committed to TLS via {}; not via {} (the witness cannot tell which \
                     route a sender took, so it does not judge cleartext or the chain there by route)",
                    names(&committed),
                    names(&free)
                )),
                _ => None,
            })
            .collect()
    }
}

fn names(routes: &[&Route]) -> String {
    let mut v: Vec<String> = routes.iter().map(|r| format!("{} ({})", r.mx_host, r.why)).collect();
    v.dedup();
    v.join(", ")
}

/// The routes through `host` to each of its addresses, dialling `port`.
fn host_routes(published: &Published, host: &str, preference: u16, port: u16, mx_secure: bool) -> Vec<Route> {
    let (tlsa, why) = host_tlsa(published, host, port, mx_secure);
    published
        .addresses(host)
        .into_iter()
        .map(|address| Route {
            mx_host: host.to_string(),
            preference,
            address,
            port,
            tlsa: tlsa.clone(),
            why: why.clone(),
        })
        .collect()
}

/// The TLSA RRset committing host `host` on `port`, and why (RFC 7672 §2.2.2, §2.2.3; RFC
/// 6698 §3: the owner is `_<port>._tcp.<base>`, so a port-25 RRset says nothing of 2525).
fn host_tlsa(published: &Published, host: &str, port: u16, mx_secure: bool) -> (Option<RouteTlsa>, String) {
    if !mx_secure {
        return (None, "the MX RRset is insecure (RFC 7672 §2.2.1)".into());
    }
    // The address RRsets and the chain leading to them (A first, as senders ask).
    let a = published.resolve(host, "A");
    let addr = if a.data.is_empty() {
        published.resolve(host, "AAAA")
    } else {
        a
    };
    let all_secure = addr.secure && addr.links.iter().all(|l| l.secure);
    let first_secure = addr.links.first().is_some_and(|l| l.secure);
    let bases: Vec<String> = if all_secure {
        let mut b = vec![addr.name.clone()];
        if addr.name != host {
            b.push(host.to_string());
        }
        b
    } else if first_secure {
        vec![host.to_string()]
    } else {
        return (
            None,
            format!("the address records of {host} are insecure (RFC 7672 §2.2.2)"),
        );
    };
    for base in &bases {
        let t = published.resolve(&format!("_{port}._tcp.{base}"), "TLSA");
        let records: Vec<Tlsa> = t.data.iter().filter_map(|d| Tlsa::parse(d).ok()).collect();
        if records.is_empty() {
            continue;
        }
        // An insecure TLSA RRset is ignored; the next candidate may still commit (§2.2.3).
        if t.secure && t.links.iter().all(|l| l.secure) {
            return (
                Some(RouteTlsa {
                    base: base.clone(),
                    records,
                }),
                format!("secure TLSA at _{port}._tcp.{base}"),
            );
        }
    }
    (
        None,
        format!("no secure TLSA RRset at _{port}._tcp for {host} (RFC 7672 §2.2.3)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(lines: &[&str], unsigned: &[&str]) -> Published {
        let mut p = Published::default();
        p.add_zone("test.", true);
        p.add_zone("example.test.", true);
        p.add_zone("provider.test.", true);
        for z in unsigned {
            p.add_zone(z, false);
        }
        for l in lines {
            let (line, origin) = l.split_once(" @ ").unwrap_or((l, "example.test."));
            p.add_line(line, origin);
        }
        p
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_secure_cname_into_a_signed_zone_commits_by_the_expanded_name_and_the_original() {
        // The TLSA sits at the original MX name only: §2.2.2's second candidate.
        let p = world(
            &[
                "@ MX 10 mx1",
                "mx1 CNAME smtp.provider.test.",
                "smtp A 192.0.2.10 @ provider.test.",
                "_25._tcp.mx1 TLSA 3 1 1 AABB",
            ],
            &[],
        );
        let r = Routes::of(&p, "example.test");
        let Commitment::Committed(c) = r.commitment(addr("192.0.2.10"), 25) else {
            panic!("{r:?}");
        };
        assert_eq!(c[0].tlsa.as_ref().unwrap().base, "mx1.example.test.");
    }

    /// A relay route commits by `_<port>._tcp.<relay host>` only (RFC 7672 §2.2.2, §2.2.3): a
    /// port-25 RRset says nothing of 2525, and the MX RRset says nothing of the relay.
    #[test]
    fn a_relay_commits_by_its_own_port_and_host_not_by_mx() {
        let relay = crate::scenario::Relay {
            host: "mx1.example.test.".into(),
            port: 2525,
        };
        let only_25 = world(
            &[
                "@ MX 10 mx2",
                "mx1 A 192.0.2.10",
                "mx2 A 192.0.2.20",
                "_25._tcp.mx1 TLSA 3 1 1 AABB",
            ],
            &[],
        );
        let r = Routes::relay(&only_25, &relay);
        assert_eq!(r.commitment(addr("192.0.2.10"), 2525), Commitment::Free, "{r:?}");
        assert!(r.at(addr("192.0.2.20")).is_empty(), "the MX host is no route: {r:?}");
        // The same records by MX: port 25 is committed.
        let by_mx = Routes::of(&only_25, "example.test");
        assert_eq!(
            by_mx.commitment(addr("192.0.2.10"), 25),
            Commitment::Free,
            "mx1 is not an MX host"
        );
        let with_2525 = world(
            &["@ MX 10 mx2", "mx1 A 192.0.2.10", "_2525._tcp.mx1 TLSA 3 1 1 AABB"],
            &[],
        );
        let r = Routes::relay(&with_2525, &relay);
        let Commitment::Committed(c) = r.commitment(addr("192.0.2.10"), 2525) else {
            panic!("{r:?}");
        };
        assert_eq!(c[0].tlsa.as_ref().unwrap().base, "mx1.example.test.");
        assert_eq!(c[0].why, "secure TLSA at _2525._tcp.mx1.example.test.");
        // An endpoint on another port of the same address is not on the route.
        assert_eq!(r.commitment(addr("192.0.2.10"), 25), Commitment::Free);
    }

    #[test]
    fn an_insecure_cname_commits_nothing_whatever_the_target_publishes() {
        // The provider's TLSA is secure, but the alias into it is not: no DANE (§2.2.2).
        let p = world(
            &[
                "@ MX 10 mx1.alias",
                "mx1 CNAME smtp.provider.test. @ alias.example.test.",
                "smtp A 192.0.2.10 @ provider.test.",
                "_25._tcp.smtp TLSA 3 1 1 AABB @ provider.test.",
            ],
            &["alias.example.test."],
        );
        let r = Routes::of(&p, "example.test");
        assert_eq!(r.commitment(addr("192.0.2.10"), 25), Commitment::Free, "{r:?}");
    }

    #[test]
    fn a_secure_cname_into_an_unsigned_zone_commits_by_the_original_name_only() {
        let p = world(
            &[
                "@ MX 10 mx1",
                "mx1 CNAME smtp.hosting.test.",
                "smtp A 192.0.2.10 @ hosting.test.",
                "_25._tcp.smtp TLSA 3 1 1 AABB @ hosting.test.",
            ],
            &["hosting.test."],
        );
        assert_eq!(
            Routes::of(&p, "example.test").commitment(addr("192.0.2.10"), 25),
            Commitment::Free
        );
        let mut p = p;
        p.add_line("_25._tcp.mx1 TLSA 3 1 1 CCDD", "example.test.");
        let r = Routes::of(&p, "example.test");
        let Commitment::Committed(c) = r.commitment(addr("192.0.2.10"), 25) else {
            panic!("{r:?}");
        };
        assert_eq!(c[0].tlsa.as_ref().unwrap().records[0].data, vec![0xCC, 0xDD]);
    }

    #[test]
    fn routes_that_disagree_are_reported_and_an_insecure_mx_commits_nothing() {
        let p = world(
            &[
                "@ MX 10 mx1",
                "@ MX 20 mx2",
                "mx1 A 192.0.2.10",
                "mx2 A 192.0.2.10",
                "_25._tcp.mx1 TLSA 3 1 1 AABB",
            ],
            &[],
        );
        let r = Routes::of(&p, "example.test");
        assert!(matches!(
            r.commitment(addr("192.0.2.10"), 25),
            Commitment::Disputed { .. }
        ));
        assert_eq!(r.disputes().len(), 1);
        assert!(r.via("mx1.example.test", addr("192.0.2.10")).unwrap().tlsa.is_some());
        assert!(r.via("mx2.example.test", addr("192.0.2.10")).unwrap().tlsa.is_none());

        let mut q = Published::default();
        q.add_zone("test.", true);
        q.add_zone("example.test.", false);
        q.add_zone("provider.test.", true);
        q.add_line("@ MX 10 mx1.provider.test.", "example.test.");
        q.add_line("mx1 A 192.0.2.10", "provider.test.");
        q.add_line("_25._tcp.mx1 TLSA 3 1 1 AABB", "provider.test.");
        assert_eq!(
            Routes::of(&q, "example.test").commitment(addr("192.0.2.10"), 25),
            Commitment::Free
        );
    }

    #[test]
    fn an_address_no_route_leads_to_is_free() {
        let p = world(
            &["@ MX 10 mx1", "mx1 A 192.0.2.10", "_25._tcp.mx1 TLSA 3 1 1 AABB"],
            &[],
        );
        assert_eq!(
            Routes::of(&p, "example.test").commitment(addr("192.0.2.99"), 25),
            Commitment::Free
        );
    }
}
