//! Fixed key material: the embedded fixture keys and key references.
//!
//! Keys are fixed so that SPKI hashes, TLSA records, DNSKEYs and (for Ed25519) whole
//! certificates and signatures are byte-stable across runs and machines. Ed25519 keys are
//! derived from one master seed by label, so any zone or certificate gets its own fixed key
//! without a file per key. ECDSA P-256 keys cannot be derived as simply (a seed is not a valid
//! scalar in general), so four are stored as PEM. All of it is PUBLIC test material
//! (`fixtures/README.md`).

use std::fmt;

use sha2::{Digest, Sha256};

use super::PkiError;

/// The master seed: 64 hex digits (`fixtures/regen.sh` writes it).
const MASTER_SEED_HEX: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/keys/ed25519-master.seed"
));

/// The stored P-256 keys, `p256:1` .. `p256:4`, PKCS#8 PEM.
const P256_PEMS: [&str; 4] = [
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-1.pem")),
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-2.pem")),
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-3.pem")),
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-4.pem")),
];

/// Domain separation for the Ed25519 derivation; changing it changes every key.
const ED25519_DERIVATION_TAG: &[u8] = b"danesim ed25519 v1\0";

/// PKCS#8 v1 (RFC 8410 §7) wrapper for a 32-byte Ed25519 seed: the DER of
/// `PrivateKeyInfo { version 0, algorithm id-Ed25519, privateKey OCTET STRING { OCTET STRING seed } }`
/// up to the seed itself.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A signature algorithm a fixture key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyAlg {
    Ed25519,
    P256,
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlg::Ed25519 => "ed25519",
            KeyAlg::P256 => "p256",
        })
    }
}

/// A reference to a fixed key: `ed25519:<any label>` (derived) or `p256:<1..4>` (stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    pub alg: KeyAlg,
    pub name: String,
}

impl KeyRef {
    /// Parses `ed25519:mx1-2025` or `p256:1`. The inverse of `Display`.
    pub fn parse(s: &str) -> Result<KeyRef, PkiError> {
        let bad = |reason: &str| PkiError::BadKeyRef {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (alg, name) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ed25519:<label> or p256:<1-4>"))?;
        let alg = match alg {
            "ed25519" => KeyAlg::Ed25519,
            "p256" => KeyAlg::P256,
            _ => return Err(bad("unknown algorithm; expected ed25519 or p256")),
        };
        if name.is_empty() {
            return Err(bad("empty key name"));
        }
        if alg == KeyAlg::P256 && p256_index(name).is_none() {
            return Err(bad("p256 keys are the stored fixtures p256:1 .. p256:4"));
        }
        Ok(KeyRef {
            alg,
            name: name.to_string(),
        })
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg, self.name)
    }
}

/// `"1"` .. `"4"` to an index into [`P256_PEMS`]; anything else (including `"01"`) is `None`,
/// so that one key has one spelling.
fn p256_index(name: &str) -> Option<usize> {
    match name {
        "1" => Some(0),
        "2" => Some(1),
        "3" => Some(2),
        "4" => Some(3),
        _ => None,
    }
}

/// The fixed key material of the harness.
#[derive(Clone)]
pub struct KeyStore {
    master: [u8; 32],
    p256: Vec<String>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public test keys, but a Debug dump of key bytes helps nobody.
        f.debug_struct("KeyStore")
            .field("p256_keys", &self.p256.len())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// The keys compiled into the binary from `fixtures/keys/`.
    pub fn embedded() -> KeyStore {
        let master = decode_master(MASTER_SEED_HEX)
            .expect("fixtures/keys/ed25519-master.seed holds 64 hex digits (checked by pki tests)");
        KeyStore {
            master,
            p256: P256_PEMS.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The PKCS#8 v1 DER of the Ed25519 key for `label`:
    /// seed = SHA-256("danesim ed25519 v1\0" || master || label). Also used for DNSSEC zone keys.
    pub fn ed25519_pkcs8(&self, label: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(ED25519_DERIVATION_TAG);
        h.update(self.master);
        h.update(label.as_bytes());
        let seed = h.finalize();
        let mut der = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + seed.len());
        der.extend_from_slice(&ED25519_PKCS8_PREFIX);
        der.extend_from_slice(&seed);
        der
    }

    /// An rcgen key pair for signing certificates.
    pub fn key_pair(&self, key: &KeyRef) -> Result<rcgen::KeyPair, PkiError> {
        let bad = |reason: String| PkiError::BadKey {
            key: key.to_string(),
            reason,
        };
        match key.alg {
            KeyAlg::Ed25519 => {
                let der = self.ed25519_pkcs8(&key.name);
                rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), &rcgen::PKCS_ED25519)
                    .map_err(|e| bad(e.to_string()))
            }
            KeyAlg::P256 => {
                let pem = p256_index(&key.name)
                    .and_then(|i| self.p256.get(i))
                    .ok_or_else(|| bad("no such stored key; p256:1 .. p256:4 exist".into()))?;
                rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_ECDSA_P256_SHA256)
                    .map_err(|e| bad(e.to_string()))
            }
        }
    }
}

fn decode_master(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_master_seed_is_32_bytes() {
        assert!(decode_master(MASTER_SEED_HEX).is_some());
    }

    #[test]
    fn key_refs_parse_and_print() {
        let k = KeyRef::parse("ed25519:mx1-2025").unwrap();
        assert_eq!(k.alg, KeyAlg::Ed25519);
        assert_eq!(k.name, "mx1-2025");
        assert_eq!(k.to_string(), "ed25519:mx1-2025");
        // Labels may contain colons and dots (zone names).
        let k = KeyRef::parse("ed25519:zone:example.test.").unwrap();
        assert_eq!(k.name, "zone:example.test.");
        let k = KeyRef::parse("p256:4").unwrap();
        assert_eq!((k.alg, k.name.as_str()), (KeyAlg::P256, "4"));
        for bad in [
            "", "ed25519", "ed25519:", "rsa:1", "p256:0", "p256:5", "p256:01", "p256:x",
        ] {
            assert!(
                matches!(KeyRef::parse(bad), Err(PkiError::BadKeyRef { .. })),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn ed25519_derivation_is_fixed_and_label_separated() {
        let ks = KeyStore::embedded();
        let a = ks.ed25519_pkcs8("mx1");
        assert_eq!(a.len(), 48);
        assert_eq!(a[..16], ED25519_PKCS8_PREFIX);
        assert_eq!(a, ks.ed25519_pkcs8("mx1"));
        assert_ne!(a, ks.ed25519_pkcs8("mx2"));
        // Independent recomputation of the documented formula.
        let mut h = Sha256::new();
        h.update(b"danesim ed25519 v1\0");
        h.update(hex::decode(MASTER_SEED_HEX.trim()).unwrap());
        h.update(b"mx1");
        assert_eq!(a[16..], h.finalize()[..]);
    }

    #[test]
    fn every_fixture_key_loads() {
        let ks = KeyStore::embedded();
        for n in 1..=4 {
            let k = KeyRef::parse(&format!("p256:{n}")).unwrap();
            let kp = ks.key_pair(&k).unwrap();
            assert_eq!(kp.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        }
        let kp = ks.key_pair(&KeyRef::parse("ed25519:x").unwrap()).unwrap();
        assert_eq!(kp.algorithm(), &rcgen::PKCS_ED25519);
        // The four stored keys are distinct.
        let mut pubs: Vec<Vec<u8>> = (1..=4)
            .map(|n| {
                ks.key_pair(&KeyRef::parse(&format!("p256:{n}")).unwrap())
                    .unwrap()
                    .public_key_raw()
                    .to_vec()
            })
            .collect();
        pubs.sort();
        pubs.dedup();
        assert_eq!(pubs.len(), 4);
    }

    #[test]
    fn unknown_stored_key_is_an_error() {
        let ks = KeyStore::embedded();
        // Constructed directly: parse() already refuses it.
        let k = KeyRef {
            alg: KeyAlg::P256,
            name: "9".into(),
        };
        assert!(matches!(ks.key_pair(&k), Err(PkiError::BadKey { .. })));
    }
}
