//! TLSA records (RFC 6698 §2.1): association data computation, matching, usability for SMTP
//! (RFC 7672 §3.1, RFC 7671 §9) and presentation format (RFC 6698 §2.2).

use std::fmt;

use sha2::{Digest, Sha256, Sha512};

use super::PkiError;

/// One TLSA record's RDATA.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// Whether an SMTP client may use a record to authenticate a server (RFC 7672 §2.2, where
/// "usable" is in the sense of RFC 6698 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Usable,
    /// Why not, with the RFC section.
    Unusable(&'static str),
}

impl Tlsa {
    /// Certificate usages (RFC 6698 §2.1.1, names from RFC 7218).
    pub const PKIX_TA: u8 = 0;
    pub const PKIX_EE: u8 = 1;
    pub const DANE_TA: u8 = 2;
    pub const DANE_EE: u8 = 3;
    /// Selectors (RFC 6698 §2.1.2).
    pub const CERT: u8 = 0;
    pub const SPKI: u8 = 1;
    /// Matching types (RFC 6698 §2.1.3).
    pub const FULL: u8 = 0;
    pub const SHA2_256: u8 = 1;
    pub const SHA2_512: u8 = 2;

    /// The record with the given parameters that matches `cert_der`. The usage does not enter
    /// the computation, so any value is accepted (scenarios publish unknown usages on purpose);
    /// the selector must be 0 or 1 and the matching type 0, 1 or 2.
    pub fn compute(usage: u8, selector: u8, matching: u8, cert_der: &[u8]) -> Result<Tlsa, PkiError> {
        let data = association(selector, matching, cert_der)?;
        Ok(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }

    /// Whether this record's association data matches the certificate under its selector and
    /// matching type. Records with unknown parameters and certificates that do not parse never
    /// match.
    pub fn matches_cert(&self, cert_der: &[u8]) -> bool {
        association(self.selector, self.matching, cert_der).is_ok_and(|d| d == self.data)
    }

    /// Usability for SMTP. Checked in the order a client discards records.
    pub fn usability(&self) -> Usability {
        use Usability::Unusable;
        match self.usage {
            // RFC 7672 §3.1.3: SMTP clients treat PKIX usages as unusable.
            Self::PKIX_TA => return Unusable("PKIX-TA(0) is unusable for SMTP (RFC 7672 §3.1.3)"),
            Self::PKIX_EE => return Unusable("PKIX-EE(1) is unusable for SMTP (RFC 7672 §3.1.3)"),
            Self::DANE_TA | Self::DANE_EE => {}
            _ => return Unusable("unknown certificate usage (RFC 6698 §4.1, RFC 7672 §2.2)"),
        }
        if !matches!(self.selector, Self::CERT | Self::SPKI) {
            return Unusable("unknown selector (RFC 6698 §4.1, RFC 7672 §2.2)");
        }
        match (self.matching, self.data.len()) {
            (Self::FULL, 0) => Unusable("empty association data: malformed (RFC 7671 §9)"),
            // RFC 6698 §4.1: "If the comparison data for a certificate is malformed, the
            // certificate association MUST be considered unusable". Full data is the selected
            // structure itself, so it must decode as one, with nothing left over (OpenSSL's
            // and Postfix's reading too).
            (Self::FULL, _) if !decodes_as_selected(self.selector, &self.data) => Unusable(match self.selector {
                Self::CERT => {
                    "full data (matching type 0) does not decode as a DER X.509 certificate: malformed (RFC 6698 §4.1)"
                }
                _ => {
                    "full data (matching type 0) does not decode as a DER SubjectPublicKeyInfo: malformed (RFC 6698 §4.1)"
                }
            }),
            (Self::FULL, _) => Usability::Usable,
            (Self::SHA2_256, 32) | (Self::SHA2_512, 64) => Usability::Usable,
            // RFC 7671 §9: records with an incorrect digest length are malformed and are
            // discarded before digest agility is applied.
            (Self::SHA2_256 | Self::SHA2_512, _) => {
                Unusable("digest length does not fit the matching type: malformed (RFC 7671 §9)")
            }
            _ => Unusable("unknown matching type (RFC 6698 §4.1, RFC 7672 §2.2)"),
        }
    }

    /// RFC 6698 §2.2 presentation: `3 1 1 <UPPERCASE HEX>`.
    pub fn presentation(&self) -> String {
        format!(
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            hex::encode_upper(&self.data)
        )
    }

    /// Parses the presentation format: three numbers (or their RFC 7218 mnemonics) and the
    /// hex data, which may be split by white space and wrapped in parentheses as in zone files.
    pub fn parse(text: &str) -> Result<Tlsa, PkiError> {
        let bad = |reason: &str| PkiError::BadTlsa {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        let mut fields = text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|f| !f.is_empty());
        let mut number = |what: &str, mnemonics: &[(&str, u8)]| -> Result<u8, PkiError> {
            let f = fields.next().ok_or_else(|| bad(&format!("missing {what}")))?;
            if let Some((_, v)) = mnemonics.iter().find(|(m, _)| m.eq_ignore_ascii_case(f)) {
                return Ok(*v);
            }
            f.parse::<u8>()
                .map_err(|_| bad(&format!("{what} {f:?} is not a number 0-255 or a mnemonic")))
        };
        let usage = number(
            "certificate usage",
            &[
                ("PKIX-TA", 0),
                ("PKIX-EE", 1),
                ("DANE-TA", 2),
                ("DANE-EE", 3),
                ("PrivCert", 255),
            ],
        )?;
        let selector = number("selector", &[("Cert", 0), ("SPKI", 1), ("PrivSel", 255)])?;
        let matching = number(
            "matching type",
            &[("Full", 0), ("SHA2-256", 1), ("SHA2-512", 2), ("PrivMatch", 255)],
        )?;
        let hex_text: String = fields.collect();
        if hex_text.is_empty() {
            // RFC 6698 §2.2: the association data is required.
            return Err(bad("missing certificate association data"));
        }
        let data = hex::decode(&hex_text).map_err(|e| bad(&format!("association data: {e}")))?;
        Ok(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }
}

impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.presentation())
    }
}

/// Whether `data` is exactly one DER structure of what the selector selects: a certificate
/// (Cert(0)) or a SubjectPublicKeyInfo (SPKI(1)).
fn decodes_as_selected(selector: u8, data: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    match selector {
        Tlsa::CERT => x509_parser::parse_x509_certificate(data).is_ok_and(|(rest, _)| rest.is_empty()),
        Tlsa::SPKI => x509_parser::x509::SubjectPublicKeyInfo::from_der(data).is_ok_and(|(rest, _)| rest.is_empty()),
        _ => false,
    }
}

/// Whether association data can be computed for a selector and matching type: only the
/// selectors Cert(0) and SPKI(1) (RFC 6698 §2.1.2) and the matching types Full(0),
/// SHA2-256(1) and SHA2-512(2) (§2.1.3) say what to select and how to hash it. The
/// scenario loader asks before any certificate exists, so that a `{cert:NAME}` placeholder
/// with other parameters is refused at its line.
pub fn check_computable(selector: u8, matching: u8) -> Result<(), PkiError> {
    if !matches!(selector, Tlsa::CERT | Tlsa::SPKI) {
        return Err(PkiError::UnsupportedTlsa {
            what: format!("selector {selector}"),
        });
    }
    if !matches!(matching, Tlsa::FULL | Tlsa::SHA2_256 | Tlsa::SHA2_512) {
        return Err(PkiError::UnsupportedTlsa {
            what: format!("matching type {matching}"),
        });
    }
    Ok(())
}

/// The association data for a selector and matching type.
fn association(selector: u8, matching: u8, cert_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    check_computable(selector, matching)?;
    let selected: &[u8] = if selector == Tlsa::CERT {
        cert_der
    } else {
        spki_der(cert_der)?
    };
    digest(matching, selected).ok_or_else(|| PkiError::UnsupportedTlsa {
        what: format!("matching type {matching}"),
    })
}

fn digest(matching: u8, bytes: &[u8]) -> Option<Vec<u8>> {
    match matching {
        Tlsa::FULL => Some(bytes.to_vec()),
        Tlsa::SHA2_256 => Some(Sha256::digest(bytes).to_vec()),
        Tlsa::SHA2_512 => Some(Sha512::digest(bytes).to_vec()),
        _ => None,
    }
}

/// The DER of the certificate's subjectPublicKeyInfo (what selector SPKI(1) covers).
pub fn spki_der(cert_der: &[u8]) -> Result<&[u8], PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    Ok(cert.tbs_certificate.subject_pki.raw)
}

/// Lowercase hex SHA-256 of the certificate's SPKI: the data of a `3 1 1` record.
pub fn spki_sha256(cert_der: &[u8]) -> Result<String, PkiError> {
    Ok(hex::encode(Sha256::digest(spki_der(cert_der)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertSpec, KeyRef, KeyStore, Pki};

    /// A fixed Ed25519 certificate (byte-identical on every run) for known-answer tests.
    fn known_cert() -> Vec<u8> {
        let spec = CertSpec {
            common_name: Some("mx1.example.test".into()),
            sans: vec!["mx1.example.test".into()],
            ..CertSpec::new(
                "known-ee",
                KeyRef::parse("ed25519:known-ee").unwrap(),
                rcgen::date_time_ymd(2025, 1, 1),
                rcgen::date_time_ymd(2035, 1, 1),
            )
        };
        let pki = Pki::issue(&[spec], &KeyStore::embedded()).unwrap();
        pki.get("known-ee").unwrap().der.clone()
    }

    // Expected values derived once with openssl 3.0 from the DER of known_cert() and from
    // fixtures/keys/p256-1.pem; see fixtures/README.md for the commands.
    const KNOWN_CERT_SHA256: &str = "b83e5eb2c2062a72b11cc2cfe5f5f9629f98a28dd1487dcba9af16a591349a06";
    const KNOWN_CERT_SHA512: &str = "20731bd6395a17e4c7f03bf79c621e0c6ea0b35be8ed04965067d964bacda78d4f7fe1311bfe2f142a90cc29f7be6563eac7c7b8f9848aba63d49815fd8ec500";
    const KNOWN_SPKI_FULL: &str =
        "302a300506032b65700321000d3f95759dcd69a993a322b67792b4231b1e3160e833d9eab2409e593acc0ec8";
    const KNOWN_SPKI_SHA256: &str = "106b6df0c934eba8e651d5d5510d8f2385882a361858e457494c26b3a07d9bb6";
    const KNOWN_SPKI_SHA512: &str = "c9f96157f04161533dae66fc2b83c1977c315990840e59a6e6f1da87669b7a689f21a22f1789f4483607daa47981b4c28d52a30a494faa51ef24eee6321b41f5";
    const P256_1_SPKI_SHA256: &str = "fec0e8dadf06f66922681b1fc1072916b7b98ba4b30287e6b3a5f1ccd753e1da";
    const P256_1_SPKI_SHA512: &str = "f05e52ca0fb43de31d700f850aaaedfe3f982981567c71c7b25a36344534dc8d3d2d0225f21e8c3172accbe055b083cb6351892fe442b955741fa87ecdbe66c8";

    #[test]
    fn every_parameter_combination_against_openssl() {
        let der = known_cert();
        for usage in 0..=3u8 {
            for selector in 0..=1u8 {
                for matching in 0..=2u8 {
                    let t = Tlsa::compute(usage, selector, matching, &der).unwrap();
                    let want = match (selector, matching) {
                        (0, 0) => hex::encode_upper(&der),
                        (0, 1) => KNOWN_CERT_SHA256.to_uppercase(),
                        (0, 2) => KNOWN_CERT_SHA512.to_uppercase(),
                        (1, 0) => KNOWN_SPKI_FULL.to_uppercase(),
                        (1, 1) => KNOWN_SPKI_SHA256.to_uppercase(),
                        (1, 2) => KNOWN_SPKI_SHA512.to_uppercase(),
                        _ => unreachable!("selector and matching loop over 0..=1 and 0..=2"),
                    };
                    assert_eq!(t.presentation(), format!("{usage} {selector} {matching} {want}"));
                    assert!(t.matches_cert(&der));
                    assert_eq!(Tlsa::parse(&t.presentation()).unwrap(), t);
                }
            }
        }
        assert_eq!(spki_sha256(&der).unwrap(), KNOWN_SPKI_SHA256);
    }

    #[test]
    fn p256_spki_hashes_against_openssl() {
        // ECDSA certificates differ on every run; their SPKI does not.
        let spec = CertSpec::new(
            "p256-ee",
            KeyRef::parse("p256:1").unwrap(),
            rcgen::date_time_ymd(2025, 1, 1),
            rcgen::date_time_ymd(2035, 1, 1),
        );
        let pki = Pki::issue(&[spec], &KeyStore::embedded()).unwrap();
        let der = &pki.get("p256-ee").unwrap().der;
        let t = Tlsa::compute(3, 1, 1, der).unwrap();
        assert_eq!(hex::encode(&t.data), P256_1_SPKI_SHA256);
        let t = Tlsa::compute(3, 1, 2, der).unwrap();
        assert_eq!(hex::encode(&t.data), P256_1_SPKI_SHA512);
        assert_eq!(pki.get("p256-ee").unwrap().spki_sha256, P256_1_SPKI_SHA256);
    }

    #[test]
    fn mismatches_do_not_match() {
        let der = known_cert();
        let mut t = Tlsa::compute(3, 1, 1, &der).unwrap();
        t.data[0] ^= 1;
        assert!(!t.matches_cert(&der));
        // Same digest under the other selector.
        let t = Tlsa {
            selector: 0,
            ..Tlsa::compute(3, 1, 1, &der).unwrap()
        };
        assert!(!t.matches_cert(&der));
        // Garbage is not a certificate; unknown parameters never match.
        assert!(!Tlsa::compute(3, 0, 1, &der).unwrap().matches_cert(b"junk"));
        let t = Tlsa {
            matching: 7,
            ..Tlsa::compute(3, 1, 1, &der).unwrap()
        };
        assert!(!t.matches_cert(&der));
        assert!(matches!(
            Tlsa::compute(3, 2, 1, &der),
            Err(PkiError::UnsupportedTlsa { .. })
        ));
        assert!(matches!(
            Tlsa::compute(3, 1, 3, &der),
            Err(PkiError::UnsupportedTlsa { .. })
        ));
        assert!(matches!(
            Tlsa::compute(3, 1, 1, b"junk"),
            Err(PkiError::BadCertificate(_))
        ));
    }

    #[test]
    fn usability_for_smtp() {
        let rec = |u, s, m, len| Tlsa {
            usage: u,
            selector: s,
            matching: m,
            data: vec![0xab; len],
        };
        assert_eq!(rec(3, 1, 1, 32).usability(), Usability::Usable);
        assert_eq!(rec(2, 0, 1, 32).usability(), Usability::Usable);
        assert_eq!(rec(3, 1, 2, 64).usability(), Usability::Usable);
        // Full data is usable when it is the structure its selector names.
        let der = known_cert();
        for (u, s) in [(3, 1), (3, 0), (2, 1), (2, 0)] {
            assert_eq!(Tlsa::compute(u, s, 0, &der).unwrap().usability(), Usability::Usable);
        }
        let unusable = |t: Tlsa, needle: &str| match t.usability() {
            Usability::Unusable(why) => assert!(why.contains(needle), "{why}"),
            Usability::Usable => panic!("{t} should be unusable"),
        };
        unusable(rec(0, 0, 1, 32), "RFC 7672 §3.1.3");
        unusable(rec(1, 1, 1, 32), "RFC 7672 §3.1.3");
        unusable(rec(4, 1, 1, 32), "unknown certificate usage");
        unusable(rec(255, 1, 1, 32), "unknown certificate usage");
        unusable(rec(3, 2, 1, 32), "unknown selector");
        unusable(rec(3, 1, 3, 32), "unknown matching type");
        unusable(rec(3, 1, 1, 31), "digest length");
        unusable(rec(3, 1, 2, 32), "digest length");
        unusable(rec(3, 1, 0, 0), "empty");
        unusable(rec(3, 1, 0, 91), "SubjectPublicKeyInfo");
        unusable(rec(2, 0, 0, 91), "X.509 certificate");
    }

    /// TLSA-U-11 (RFC 6698 §4.1): full data that is not the selected structure is malformed,
    /// also when it is well-formed DER of something else, the other selector's structure, or
    /// the right structure with bytes after it.
    #[test]
    fn undecodable_full_data_is_unusable() {
        let der = known_cert();
        let spki = Tlsa::compute(3, 1, 0, &der).unwrap().data;
        let with = |u, s, data: Vec<u8>| Tlsa {
            usage: u,
            selector: s,
            matching: 0,
            data,
        };
        // DER SEQUENCE { INTEGER 0 }: valid DER, neither a certificate nor an SPKI.
        let other_der = vec![0x30, 0x03, 0x02, 0x01, 0x00];
        let mut trailing = spki.clone();
        trailing.push(0);
        let mut cert_trailing = der.clone();
        cert_trailing.extend_from_slice(&[0, 0]);
        for t in [
            with(3, 1, other_der.clone()),
            with(2, 0, other_der),
            with(3, 1, der.clone()),
            with(2, 0, spki.clone()),
            with(2, 1, trailing),
            with(3, 0, cert_trailing),
            with(3, 1, spki[..spki.len() - 1].to_vec()),
        ] {
            match t.usability() {
                Usability::Unusable(why) => assert!(why.contains("RFC 6698 §4.1"), "{why}"),
                Usability::Usable => panic!("{t} should be unusable"),
            }
        }
        assert_eq!(with(2, 1, spki).usability(), Usability::Usable);
        assert_eq!(with(2, 0, der).usability(), Usability::Usable);
    }

    #[test]
    fn presentation_parses_back() {
        let t = Tlsa::parse("3 1 1 0a0B").unwrap();
        assert_eq!(
            t,
            Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0x0a, 0x0b]
            }
        );
        assert_eq!(t.presentation(), "3 1 1 0A0B");
        assert_eq!(t.to_string(), "3 1 1 0A0B");
        // Zone-file style: parentheses, line breaks, split hex; RFC 7218 mnemonics.
        let t2 = Tlsa::parse("DANE-EE SPKI SHA2-256 (\n 0A\n 0B )").unwrap();
        assert_eq!(t2, t);
        assert_eq!(Tlsa::parse("255 255 255 00").unwrap().usage, 255);
        for bad in ["", "3 1", "3 1 1", "3 1 1 0", "3 1 1 zz", "3 1 256 00", "x 1 1 00"] {
            assert!(
                matches!(Tlsa::parse(bad), Err(PkiError::BadTlsa { .. })),
                "{bad:?} should not parse"
            );
        }
    }
}
