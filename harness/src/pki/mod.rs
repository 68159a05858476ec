//! Certificates and TLSA data for one world: fixed keys, certificate issuing, TLSA computation
//! and matching.
//!
//! pki is a leaf module: it knows nothing of DNS, SMTP or scenarios. The scenario layer turns
//! its certificate list into [`CertSpec`]s, [`Pki::issue`] builds them from the fixed keys in
//! `fixtures/keys/` (see [`KeyStore`]), the dns layer asks [`Tlsa::compute`] for record data,
//! and the reference sender checks presented chains against [`Tlsa`] records
//! (`dane`).
//!
//! - `keys`: the embedded fixture keys and the Ed25519 derivation by label.
//! - `issue`: certificate specs, issuing in dependency order, chains.
//! - `tlsa`: TLSA records (RFC 6698 §2.1): computation, matching, usability, presentation.
//! - `unchecked`: [`UncheckedVerifier`], a TLS client verifier that checks no certificate (TLS
//!   mode of RFC 7672 §2.2, and the interceptor's leg to the real server).
//! - `error`: [`PkiError`], the one error type of this boundary.

mod error;
mod issue;
mod keys;
mod tlsa;
mod unchecked;

pub use error::PkiError;
pub use issue::{CertSpec, IssuedCert, Pki, SpecField};
pub use keys::{KeyAlg, KeyRef, KeyStore};
pub use tlsa::{Tlsa, Usability, check_computable, spki_der, spki_sha256};
pub use unchecked::UncheckedVerifier;
