//! DANE matching and name checks (RFC 7672 §3, RFC 7671 §5 and §9, RFC 6698 §2.1): the one
//! place that decides whether a presented chain is authenticated by TLSA records.
//!
//! A leaf: it depends only on [`crate::pki`] (TLSA records, certificate parsing). The
//! reference sender plugs it into rustls ([`DaneVerifier`]), `danesim check` and
//! `danesim explain` report with it, and the witness asks it whether a chain the sender
//! accepted matches a usable record ([`chain_matches`]).
//!
//! - `verify`: the full check: DANE-EE (§3.1.1, no names or dates), DANE-TA (§3.1.2, a
//!   WebPKI path from the matched anchor with the §3.2.2 reference identifiers and dates),
//!   digest agility (RFC 7671 §9), the rustls verifier, and why a check failed.

pub mod verify;

pub use verify::{DaneFailure, DaneOutcome, DaneVerifier, danger, presented_identifiers, records_in_use, verify_chain};

use crate::pki::Tlsa;

/// The witness's match (RFC 7672 §3.2): does any usable record name this chain? A DANE-EE
/// record must match the leaf (§3.1.1), a DANE-TA record a certificate the server sent above
/// it (§3.1.2). Names and dates are the sender's business; a chain that no record names at
/// all can never have been authenticated, whatever the sender logged.
pub fn chain_matches(usable: &[&Tlsa], chain: &[Vec<u8>]) -> bool {
    usable.iter().any(|t| match t.usage {
        Tlsa::DANE_EE => chain.first().is_some_and(|leaf| t.matches_cert(leaf)),
        Tlsa::DANE_TA => chain.iter().skip(1).any(|c| t.matches_cert(c)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_must_name_the_leaf_or_a_certificate_above_it() {
        let leaf = b"leaf certificate".to_vec();
        let issuer = b"issuer certificate".to_vec();
        let ee = Tlsa::compute(3, 0, 1, &leaf).expect("a digest of any bytes");
        let ta = Tlsa::compute(2, 0, 1, &issuer).expect("a digest of any bytes");
        let ee_on_issuer = Tlsa::compute(3, 0, 1, &issuer).expect("a digest of any bytes");
        let ta_on_leaf = Tlsa::compute(2, 0, 1, &leaf).expect("a digest of any bytes");
        let chain = vec![leaf.clone(), issuer.clone()];
        assert!(chain_matches(&[&ee], &chain));
        assert!(chain_matches(&[&ta], &chain));
        // DANE-EE is about the leaf only; DANE-TA never about the leaf itself.
        assert!(!chain_matches(&[&ee_on_issuer], &chain));
        assert!(!chain_matches(&[&ta_on_leaf], &chain));
        assert!(!chain_matches(&[], &chain));
        assert!(!chain_matches(&[&ee], &[]));
    }
}
