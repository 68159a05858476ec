//! What the world publishes, as the harness itself knows it from the scenario (not over
//! DNS): every record, with the security of its zone, and CNAME- and DNAME-following lookups.
//!
//! The witness (`crate::witness::route`) reads it to decide which routes a secure TLSA
//! RRset commits to TLS (RFC 7672 §2.2), the loader to check that invariants name hosts
//! the world routes to, and tests to predict what an independent validator must say.

use crate::dns::DsMode;
use crate::scenario::{EndpointDecl, ZoneDecl};
use crate::vocab::fqdn;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct Published {
    /// (owner, TYPE) → record data in presentation form, in declaration order.
    records: BTreeMap<(String, String), Vec<String>>,
    /// Zone origin → signed.
    zones: BTreeMap<String, bool>,
}

/// The outcome of resolving a name in the world's own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The final owner after following CNAMEs.
    pub name: String,
    pub data: Vec<String>,
    /// Every zone on every name's path from `test.` is signed.
    pub secure: bool,
    /// The final name exists (has records of some type, or is an apex).
    pub exists: bool,
    /// Owners of the DNAMEs followed on the way, in order.
    pub dnames: Vec<String>,
    /// The alias links followed (CNAMEs and DNAME substitutions), in order.
    pub links: Vec<Link>,
    /// The chain came back to a name it had passed: it has no end (no data, `exists` false).
    pub looped: bool,
}

/// One alias link of a chain: `owner` is an alias for `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub owner: String,
    pub target: String,
    /// The zone holding the alias (the CNAME, or the DNAME that synthesizes it) is secure.
    pub secure: bool,
}

impl Published {
    /// What `zones` publish, read from their record templates: the loader's view of a world
    /// before any certificate is issued. A `{cert:NAME}` placeholder stands in as `00`;
    /// TLSA data never routes a name to an address, so routing is the world's own.
    pub fn from_templates(zones: &[ZoneDecl]) -> Published {
        let mut p = Published::default();
        for z in zones {
            // The same rule as the world's: signed and reached through a matching DS.
            p.add_zone(&z.origin, z.signed && z.ds == DsMode::Secure);
        }
        for z in zones {
            for r in &z.records {
                p.add_line(&r.stand_in(), &z.origin);
            }
        }
        p
    }

    pub fn add_zone(&mut self, origin: &str, signed: bool) {
        self.zones.insert(fqdn(origin), signed);
    }

    /// Record one rendered RFC 1035 line of the zone `origin`.
    pub fn add_line(&mut self, line: &str, origin: &str) {
        if let Some((owner, rtype, data)) = fields(line, origin) {
            self.records.entry((owner, rtype)).or_default().push(data);
        }
    }

    /// The zone that holds `name`: the deepest declared origin it falls under.
    fn zone_of(&self, name: &str) -> Option<&str> {
        self.zones
            .keys()
            .filter(|o| name == o.as_str() || name.ends_with(&format!(".{o}")))
            .max_by_key(|o| o.len())
            .map(String::as_str)
    }

    /// Whether every zone from `test.` down to the zone of `name` is signed.
    pub fn secure(&self, name: &str) -> bool {
        let Some(zone) = self.zone_of(name) else {
            return false;
        };
        self.zones
            .iter()
            .filter(|(o, _)| zone == o.as_str() || zone.ends_with(&format!(".{o}")))
            .all(|(_, signed)| *signed)
    }

    /// Look `name`/`rtype` up in the world's data, following CNAMEs (RFC 1034 §3.6.2) and
    /// DNAMEs (RFC 6672 §2.2) to the end: the witness must see at least as far as any
    /// sender can (a client can ask again after each answer), so there is no depth limit,
    /// only loop detection.
    pub fn resolve(&self, name: &str, rtype: &str) -> Resolved {
        let mut name = fqdn(name);
        let rtype = rtype.to_ascii_uppercase();
        let mut secure = self.secure(&name);
        let mut dnames = Vec::new();
        let mut links = Vec::new();
        let mut seen = BTreeSet::from([name.clone()]);
        let mut looped = false;
        loop {
            if let Some(data) = self.records.get(&(name.clone(), rtype.clone())) {
                return Resolved {
                    name,
                    data: data.clone(),
                    secure,
                    exists: true,
                    dnames,
                    links,
                    looped,
                };
            }
            let cname = self
                .records
                .get(&(name.clone(), "CNAME".to_string()))
                .and_then(|t| t.first())
                .filter(|_| rtype != "CNAME")
                .map(|t| fqdn(t));
            // RFC 6672 §2.2: below a DNAME owner, the owner suffix is replaced by the target.
            let dname = self.dname_substitute(&name);
            if rtype == "CNAME"
                && let Some((owner, target)) = dname
            {
                // The synthesized CNAME answers a CNAME query (RFC 1034 §4.3.2 step 3a).
                dnames.push(owner);
                return Resolved {
                    name,
                    data: vec![target],
                    secure,
                    exists: true,
                    dnames,
                    links,
                    looped,
                };
            }
            let dname = dname.map(|(owner, target)| {
                dnames.push(owner);
                target
            });
            let Some(target) = cname.or(dname) else { break };
            links.push(Link {
                owner: name.clone(),
                target: target.clone(),
                secure: self.secure(&name),
            });
            if !seen.insert(target.clone()) {
                looped = true;
                name = target;
                break;
            }
            name = target;
            secure &= self.secure(&name);
        }
        let exists = !looped
            && (self.zones.contains_key(&name)
                || self
                    .records
                    .keys()
                    .any(|(o, _)| o == &name || o.ends_with(&format!(".{name}"))));
        Resolved {
            name,
            data: Vec::new(),
            secure,
            exists,
            dnames,
            links,
            looped,
        }
    }

    /// `name` rewritten by a DNAME at one of its proper ancestors, if any (RFC 6672 §2.2):
    /// the DNAME's owner and the new name.
    fn dname_substitute(&self, name: &str) -> Option<(String, String)> {
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.is_empty() {
                break;
            }
            if let Some(target) = self
                .records
                .get(&(parent.to_string(), "DNAME".to_string()))
                .and_then(|t| t.first())
            {
                let prefix = &name[..name.len() - parent.len()];
                return Some((parent.to_string(), format!("{prefix}{}", fqdn(target))));
            }
            rest = parent;
        }
        None
    }

    /// The MX RRset of `domain` (CNAMEs and DNAMEs followed) as (preference, host FQDN),
    /// by preference then name; `None` when there is none (RFC 5321 §5.1: the domain is its
    /// own mail host). A null MX (`0 .`, RFC 7505 §3) names no host, so it gives `Some([])`.
    pub fn mx(&self, domain: &str) -> Option<Vec<(u16, String)>> {
        let r = self.resolve(domain, "MX");
        if r.data.is_empty() {
            return None;
        }
        let mut hosts: Vec<(u16, String)> = r
            .data
            .iter()
            .filter_map(|d| {
                let mut it = d.split_whitespace();
                let pref = it.next()?.parse().ok()?;
                let name = it.next()?;
                (name != ".").then(|| (pref, fqdn(name)))
            })
            .collect();
        hosts.sort();
        Some(hosts)
    }

    /// The addresses of `name`'s A and AAAA RRsets, CNAMEs and DNAMEs followed: where a
    /// sender dials when it picked `name` as a mail host (RFC 5321 §5.1, RFC 7672 §2.2.2).
    pub fn addresses(&self, name: &str) -> BTreeSet<IpAddr> {
        ["A", "AAAA"]
            .into_iter()
            .flat_map(|t| self.resolve(name, t).data)
            .filter_map(|d| d.trim().parse().ok())
            .collect()
    }

    /// The endpoints (by address) that the host `name` leads to: those that declare it as
    /// their host name, and those at the addresses the world's records route it to (an MX
    /// target, a CNAME or DNAME alias). The one routing rule for invariants about hosts, at
    /// load time and in verdicts alike: a greeting name alone proves nothing about where a
    /// sender connected (DESIGN.md, "decided from the route").
    pub fn route<'a>(&self, name: &str, endpoints: impl IntoIterator<Item = &'a EndpointDecl>) -> BTreeSet<IpAddr> {
        let name = fqdn(name);
        let routed = self.addresses(&name);
        endpoints
            .into_iter()
            .filter(|e| e.host == name || routed.contains(&e.address))
            .map(|e| e.address)
            .collect()
    }

    /// Every name of the world's data that routes somewhere (owners of A, AAAA and CNAME
    /// records, MX targets, and `extra`), by the address it leads to: what an error about
    /// an unroutable host lists.
    pub fn routed_names(&self, extra: &[&str]) -> BTreeMap<IpAddr, BTreeSet<String>> {
        let mut names: BTreeSet<String> = extra.iter().map(|n| fqdn(n)).collect();
        for ((owner, rtype), data) in &self.records {
            match rtype.as_str() {
                "A" | "AAAA" | "CNAME" => {
                    names.insert(owner.clone());
                }
                "MX" => names.extend(data.iter().filter_map(|d| d.split_whitespace().nth(1)).map(fqdn)),
                _ => {}
            }
        }
        let mut out: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
        for n in names.into_iter().filter(|n| n != ".") {
            for a in self.addresses(&n) {
                out.entry(a).or_default().insert(n.clone());
            }
        }
        out
    }
}

/// Owner (FQDN), TYPE and data of a one-line record: `owner [ttl] [class] TYPE data...`.
fn fields(line: &str, origin: &str) -> Option<(String, String, String)> {
    let mut tokens = line.split_whitespace();
    let owner = tokens.next()?;
    let mut rest: Vec<&str> = tokens.collect();
    while let Some(t) = rest.first() {
        let is_ttl = t.chars().all(|c| c.is_ascii_digit());
        let is_class = t.eq_ignore_ascii_case("IN");
        if is_ttl || is_class {
            rest.remove(0);
        } else {
            break;
        }
    }
    let rtype = rest.first()?.to_ascii_uppercase();
    let data = rest[1..].join(" ");
    let origin = fqdn(origin);
    let owner = match owner {
        "@" => origin.clone(),
        o if o.ends_with('.') => o.to_ascii_lowercase(),
        o => format!("{}.{origin}", o.to_ascii_lowercase()),
    };
    // Names in CNAME, DNAME and MX data are relative to the origin as well (RFC 1035 §5.1).
    let absolute = |n: &str| match n {
        "@" => origin.clone(),
        n if n.ends_with('.') => n.to_ascii_lowercase(),
        n => format!("{}.{origin}", n.to_ascii_lowercase()),
    };
    let data = match rtype.as_str() {
        "CNAME" | "DNAME" => absolute(&data),
        "MX" => match data.split_once(' ') {
            Some((pref, host)) => format!("{pref} {}", absolute(host.trim())),
            None => data,
        },
        _ => data,
    };
    Some((owner, rtype, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> Published {
        let mut p = Published::default();
        p.add_zone("test.", true);
        p.add_zone("example.test.", true);
        p.add_zone("_tcp.mx2.example.test.", false);
        for l in [
            "@ MX 10 mx1",
            "mx1 300 IN A 192.0.2.10",
            "_25._tcp.mx1 CNAME tlsa._dane",
            "tlsa._dane TLSA 2 0 1 AABB",
            "mx2 A 192.0.2.20",
        ] {
            p.add_line(l, "example.test.");
        }
        p.add_line("_25 TLSA 3 1 1 CCDD", "_tcp.mx2.example.test.");
        p
    }

    #[test]
    fn tlsa_through_a_cname_is_found_and_secure() {
        let p = world();
        let t = p.resolve("_25._tcp.mx1.example.test", "TLSA");
        assert!(t.secure);
        assert_eq!(t.data, vec!["2 0 1 AABB"]);
        assert_eq!(t.links.len(), 1);
        assert!(t.links[0].secure);
    }

    #[test]
    fn tlsa_in_an_unsigned_subzone_is_insecure() {
        let p = world();
        let t = p.resolve("_25._tcp.mx2.example.test.", "TLSA");
        assert_eq!(t.data, vec!["3 1 1 CCDD"]);
        assert!(!t.secure);
        assert!(p.secure("mx2.example.test."));
    }

    #[test]
    fn chains_are_followed_to_the_end_and_loops_end_nowhere() {
        let mut p = world();
        for i in 0..40 {
            p.add_line(&format!("c{i} CNAME c{}", i + 1), "example.test.");
        }
        p.add_line("c40 A 192.0.2.40", "example.test.");
        p.add_line("l1 CNAME l2", "example.test.");
        p.add_line("l2 CNAME l1", "example.test.");
        let r = p.resolve("c0.example.test", "A");
        assert_eq!(
            (r.data.clone(), r.links.len(), r.looped),
            (vec!["192.0.2.40".to_string()], 40, false)
        );
        let l = p.resolve("l1.example.test", "A");
        assert!(l.looped && l.data.is_empty() && !l.exists, "{l:?}");
        assert_eq!(l.links.len(), 2);
    }

    #[test]
    fn names_below_a_dname_are_rewritten() {
        let mut p = world();
        p.add_zone("provider.test.", false);
        p.add_line("mail DNAME mail.provider.test.", "example.test.");
        p.add_line("mx9.mail A 192.0.2.99", "provider.test.");
        let r = p.resolve("mx9.mail.example.test", "A");
        assert_eq!(r.name, "mx9.mail.provider.test.");
        assert_eq!(r.data, vec!["192.0.2.99"]);
        assert!(!r.secure, "the target zone is unsigned");
        assert_eq!(r.dnames, vec!["mail.example.test."]);
        // A CNAME query is answered by the synthesized CNAME itself.
        let c = p.resolve("mx9.mail.example.test", "CNAME");
        assert_eq!(c.data, vec!["mx9.mail.provider.test."]);
        assert!(c.secure);
        // The owner itself is not redirected.
        assert!(p.resolve("mail.example.test", "A").data.is_empty());
        assert_eq!(p.resolve("mail.example.test", "A").name, "mail.example.test.");
    }

    #[test]
    fn absent_names_and_types_resolve_to_nothing() {
        let p = world();
        let r = p.resolve("mx1.example.test", "AAAA");
        assert!(r.data.is_empty() && r.exists && r.secure);
        let r = p.resolve("nope.example.test", "A");
        assert!(r.data.is_empty() && !r.exists);
        assert_eq!(p.resolve("mx1.example.test", "A").data, vec!["192.0.2.10"]);
    }

    /// Hosts are decided by route: by the endpoint's declared name, or by the world's
    /// addresses for a name, through MX targets, CNAMEs and DNAMEs; never by anything else.
    #[test]
    fn hosts_route_to_endpoints_by_address_or_declared_name() {
        let s = crate::scenario::load_str(
            std::path::Path::new("route.toml"),
            r#"
id = "route"
title = "route"
teaches = "route"

[[cert]]
name = "mx1"
key = "ed25519:mx1"

[[zone]]
origin = "example.test."
records = ["@ MX 10 mx1.mail", "mail DNAME mail.provider.test.", "alias CNAME mx1.mail", "_25._tcp.x TLSA 3 1 1 {cert:mx1}"]

[[zone]]
origin = "provider.test."
records = ["mx1.mail A 192.0.2.10", "mx1.mail AAAA 2001:db8::10", "spare A 192.0.2.30"]

[[endpoint]]
address = "192.0.2.10"
host = "smtp.provider.test"
cert = "mx1"

[[endpoint]]
address = "2001:db8::10"
host = "smtp6.provider.test"
cert = "mx1"

[[endpoint]]
address = "192.0.2.20"
host = "trap.example.test"
cert = "mx1"

[expect]
result = "AUTH"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let p = Published::from_templates(&s.zones);
        let both: BTreeSet<IpAddr> = ["192.0.2.10", "2001:db8::10"].map(|a| a.parse().unwrap()).into();
        // The MX target, through the DNAME; its alias; the expanded name itself.
        for name in ["mx1.mail.example.test", "alias.example.test.", "MX1.mail.provider.test"] {
            assert_eq!(p.route(name, &s.endpoints), both, "{name}");
        }
        // A declared host name with no records still names its endpoint.
        assert_eq!(
            p.route("trap.example.test", &s.endpoints),
            BTreeSet::from(["192.0.2.20".parse().unwrap()])
        );
        // An address with no endpoint, and a name that resolves nowhere, lead to none.
        assert!(p.route("spare.provider.test", &s.endpoints).is_empty());
        assert!(p.route("mx2.example.test", &s.endpoints).is_empty());
        // The names an error lists for an address.
        let names = p.routed_names(&["example.test."]);
        let at: &BTreeSet<String> = &names[&"192.0.2.10".parse::<IpAddr>().unwrap()];
        assert_eq!(
            at.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "alias.example.test.",
                "mx1.mail.example.test.",
                "mx1.mail.provider.test."
            ]
        );
        assert!(!names.contains_key(&"192.0.2.20".parse::<IpAddr>().unwrap()));
    }
}
