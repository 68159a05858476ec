//! World addresses: which IP addresses a scenario may give its endpoints and publish in A
//! and AAAA records (DESIGN.md "Addresses").
//!
//! - By default only the documentation and test ranges: 192.0.2.0/24, 198.51.100.0/24,
//!   203.0.113.0/24 (RFC 5737) and 2001:db8::/32 (RFC 3849). No world can then be mistaken
//!   for, or leak towards, a real network.
//! - A scenario that needs another address opts in by listing it (`allow_addresses`).
//! - Never, even then: loopback, unspecified, multicast, the limited broadcast address
//!   and link-local (the harness's own listeners are on loopback, and the others are no
//!   host's address; RFC 6890 marks them not forwardable).
//! - Every check first reads an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, RFC 4291
//!   §2.5.5.2) as the IPv4 address it stands for: a dual-stack socket dials that.
//!
//! Whatever is allowed, nothing is dialled outside the world: in process the dialer knows
//! only the endpoints' addresses (`world::dialer`), and in namespace mode the addresses live
//! on the private namespace's `lo`.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The ranges a world uses without opting in, for messages.
pub const DOCUMENTATION_RANGES: &str = "192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32";

/// The address itself, with an IPv4-mapped IPv6 address read as its IPv4 address.
pub fn normalise(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// In a documentation or test range (RFC 5737, RFC 3849), after [`normalise`].
pub fn is_documentation(ip: IpAddr) -> bool {
    match normalise(ip) {
        IpAddr::V4(v4) => matches!(v4.octets(), [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]),
        IpAddr::V6(v6) => v6.segments()[..2] == [0x2001, 0x0db8],
    }
}

/// Why an address is never a world address, even when a scenario allows it; `None` if it
/// may be one.
pub fn never(ip: IpAddr) -> Option<&'static str> {
    match normalise(ip) {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("multicast"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("multicast"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Loopback, unspecified, multicast, broadcast or link-local.
    #[error("{addr} is {what}, never a world address")]
    Never { addr: IpAddr, what: &'static str },
    /// Outside the documentation ranges and not opted in.
    #[error("{addr} is outside the documentation ranges ({DOCUMENTATION_RANGES})")]
    NotDocumentation { addr: IpAddr },
}

/// Checks `ip` as a world address, with `allowed` the scenario's opt-ins (normalised);
/// returns the normalised address.
pub fn check(ip: IpAddr, allowed: &BTreeSet<IpAddr>) -> Result<IpAddr, AddressError> {
    let addr = normalise(ip);
    if let Some(what) = never(addr) {
        return Err(AddressError::Never { addr, what });
    }
    if is_documentation(addr) || allowed.contains(&addr) {
        Ok(addr)
    } else {
        Err(AddressError::NotDocumentation { addr })
    }
}

/// Where the attacker relay may connect upstream: loopback (its endpoint's listener) or a
/// documentation address (bound only inside a private namespace), after [`normalise`].
pub fn dialable_upstream(ip: IpAddr) -> bool {
    let ip = normalise(ip);
    ip.is_loopback() || is_documentation(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address literal")
    }

    #[test]
    fn documentation_addresses_pass_without_opting_in() {
        let none = BTreeSet::new();
        for ok in [
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.255",
            "2001:db8::10",
            "::ffff:192.0.2.10",
        ] {
            assert!(check(ip(ok), &none).is_ok(), "{ok}");
        }
        assert_eq!(check(ip("::ffff:192.0.2.10"), &none), Ok(ip("192.0.2.10")));
        for bad in [
            "8.8.8.8",
            "10.0.0.1",
            "192.0.3.1",
            "2606:4700::1",
            "2001:db9::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(
                matches!(check(ip(bad), &none), Err(AddressError::NotDocumentation { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_opt_in_allows_only_what_it_lists() {
        let allowed = BTreeSet::from([ip("10.0.0.1"), ip("2606:4700::1")]);
        assert!(check(ip("10.0.0.1"), &allowed).is_ok());
        assert!(check(ip("::ffff:10.0.0.1"), &allowed).is_ok());
        assert!(check(ip("2606:4700::1"), &allowed).is_ok());
        assert!(check(ip("10.0.0.2"), &allowed).is_err());
    }

    #[test]
    fn some_addresses_are_never_allowed() {
        for (bad, what) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "the unspecified address"),
            ("::", "the unspecified address"),
            ("255.255.255.255", "the broadcast address"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
        ] {
            let allowed = BTreeSet::from([normalise(ip(bad))]);
            assert_eq!(never(ip(bad)), Some(what), "{bad}");
            assert!(
                matches!(check(ip(bad), &allowed), Err(AddressError::Never { .. })),
                "{bad} even when listed"
            );
        }
    }

    #[test]
    fn the_attacker_relays_only_within_the_world() {
        for ok in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "192.0.2.25", "2001:db8::25"] {
            assert!(dialable_upstream(ip(ok)), "{ok}");
        }
        for bad in ["10.0.0.1", "8.8.8.8", "::ffff:8.8.8.8", "2001:4860::8888"] {
            assert!(!dialable_upstream(ip(bad)), "{bad}");
        }
    }
}
