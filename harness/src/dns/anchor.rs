use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use super::sign::{CSK_FLAGS, ZoneKey};

/// DNSSEC algorithm number of Ed25519 (RFC 8080 §5).
const ED25519: u8 = 15;
/// DNSKEY protocol field, always 3 (RFC 4034 §2.1.2).
const PROTOCOL: u8 = 3;
/// DS digest type SHA-256 (RFC 4509).
const SHA256: u8 = 2;

/// The trust anchor of a world: the key of `test.`, in the forms validators take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustAnchor {
    /// "test."
    pub zone: String,
    pub flags: u16,
    pub algorithm: u8,
    /// Raw Ed25519 public key (RFC 8080 §3).
    pub public_key: Vec<u8>,
    /// Presentation line: `test. IN DNSKEY 257 3 15 <base64>`.
    pub dnskey: String,
    /// Presentation line of the SHA-256 DS: `test. IN DS <tag> 15 2 <HEX>`.
    pub ds: String,
}

impl TrustAnchor {
    pub(crate) fn from_key(zone: &str, key: &ZoneKey) -> Result<Self, String> {
        let owner = hickory_proto::rr::Name::from_ascii(zone).map_err(|e| e.to_string())?;
        let ds = key.ds(&owner)?;
        let public_key = key.public_key().to_vec();
        let b64 = BASE64.encode(&public_key);
        Ok(Self {
            zone: zone.to_string(),
            flags: CSK_FLAGS,
            algorithm: ED25519,
            dnskey: format!("{zone} IN DNSKEY {CSK_FLAGS} {PROTOCOL} {ED25519} {b64}"),
            ds: format!(
                "{zone} IN DS {} {ED25519} {SHA256} {}",
                ds.key_tag(),
                hex::encode_upper(ds.digest())
            ),
            public_key,
        })
    }

    /// A `delv -a` anchor file: `trust-anchors { test. static-key 257 3 15 "..."; };`.
    pub fn delv_anchors(&self) -> String {
        format!(
            "trust-anchors {{\n\t{} static-key {} {PROTOCOL} {} \"{}\";\n}};\n",
            self.zone,
            self.flags,
            self.algorithm,
            BASE64.encode(&self.public_key)
        )
    }

    /// One line for unbound's `trust-anchor-file:` (a DNSKEY in zone-file format).
    pub fn unbound_anchor(&self) -> String {
        format!("{}\n", self.dnskey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fixture;

    #[test]
    fn anchor_formats() {
        let key = ZoneKey::from_pkcs8(&fixture::ed25519_pkcs8_v1(1)).unwrap();
        let anchor = TrustAnchor::from_key("test.", &key).unwrap();
        let b64 = BASE64.encode(&anchor.public_key);
        assert_eq!(anchor.dnskey, format!("test. IN DNSKEY 257 3 15 {b64}"));
        assert_eq!(
            anchor.delv_anchors(),
            format!("trust-anchors {{\n\ttest. static-key 257 3 15 \"{b64}\";\n}};\n")
        );
        assert!(anchor.ds.starts_with(&format!("test. IN DS {} 15 2 ", key.key_tag)));
        // SHA-256 digest: 64 hex digits.
        assert_eq!(anchor.ds.rsplit(' ').next().unwrap().len(), 64);
        assert_eq!(anchor.unbound_anchor(), format!("{}\n", anchor.dnskey));
    }
}
