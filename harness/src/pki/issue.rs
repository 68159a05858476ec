//! Certificate issuing: a world's certificate specs, built in dependency order from fixed keys.
//!
//! Everything that enters a certificate is fixed by the spec (names, dates, a serial number
//! derived from the name, keys from the [`KeyStore`]), so Ed25519 certificates are
//! byte-identical on every run; ECDSA signatures are randomised, so P-256 certificates keep only
//! their SPKI (and hence `3 1 x` / `2 1 x` data) stable.

use std::collections::BTreeMap;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{KeyRef, KeyStore, PkiError, spki_sha256};

/// What one certificate should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// The scenario's name for the certificate; unique within a world.
    pub name: String,
    pub key: KeyRef,
    /// The issuing certificate's name; `None` = self-signed.
    pub issuer: Option<String>,
    pub ca: bool,
    /// pathLenConstraint (RFC 5280 §4.2.1.9); CA only.
    pub path_len: Option<u8>,
    /// The subject CN. Name checks use it only when there is no DNS SAN (RFC 7672 §3.2.3).
    pub common_name: Option<String>,
    /// DNS names; `*.example.test` is allowed.
    pub sans: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Permitted dNSName subtrees (RFC 5280 §4.2.1.10); CA only.
    pub permitted_dns: Vec<String>,
    /// The serial number's octets (big-endian, 1 to 20, not all zero: RFC 5280 §4.1.2.2);
    /// `None` derives one from the name.
    pub serial: Option<Vec<u8>>,
}

impl CertSpec {
    /// A self-signed end-entity spec with no names; set the other fields with struct update
    /// syntax.
    pub fn new(
        name: impl Into<String>,
        key: KeyRef,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> CertSpec {
        CertSpec {
            name: name.into(),
            key,
            issuer: None,
            ca: false,
            path_len: None,
            common_name: None,
            sans: Vec::new(),
            not_before,
            not_after,
            permitted_dns: Vec::new(),
            serial: None,
        }
    }
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub name: String,
    pub der: Vec<u8>,
    /// The private key, PKCS#8 DER (for the endpoint that presents this certificate).
    pub key_pkcs8: Vec<u8>,
    pub issuer: Option<String>,
    /// Lowercase hex SHA-256 of the SPKI.
    pub spki_sha256: String,
    pub ca: bool,
}

/// All certificates of one world.
#[derive(Debug, Clone)]
pub struct Pki {
    /// In declaration order, so listings are stable.
    certs: Vec<IssuedCert>,
    index: BTreeMap<String, usize>,
}

impl Pki {
    /// Issues every spec. Specs may be declared in any order; issuers are built first.
    pub fn issue(specs: &[CertSpec], keys: &KeyStore) -> Result<Pki, PkiError> {
        let mut index = BTreeMap::new();
        for (i, s) in specs.iter().enumerate() {
            if index.insert(s.name.clone(), i).is_some() {
                return Err(PkiError::DuplicateName(s.name.clone()));
            }
        }
        for s in specs {
            check_spec(s)?;
            if let Some(issuer) = &s.issuer {
                let Some(&j) = index.get(issuer) else {
                    return Err(PkiError::UnknownIssuer {
                        cert: s.name.clone(),
                        issuer: issuer.clone(),
                    });
                };
                if !specs[j].ca {
                    return Err(PkiError::IssuerNotCa {
                        cert: s.name.clone(),
                        issuer: issuer.clone(),
                    });
                }
            }
        }
        let order = issue_order(specs, &index)?;

        // Issuers' parameters and keys, kept to sign what they issue.
        let mut signers: BTreeMap<&str, (CertificateParams, KeyPair)> = BTreeMap::new();
        let mut issued: Vec<Option<IssuedCert>> = vec![None; specs.len()];
        for i in order {
            let s = &specs[i];
            let key = keys.key_pair(&s.key)?;
            let params = params_for(s)?;
            let rcgen_err = |source| PkiError::Rcgen {
                cert: s.name.clone(),
                source,
            };
            let cert = match &s.issuer {
                None => params.self_signed(&key).map_err(rcgen_err)?,
                Some(issuer) => {
                    let (iparams, ikey) = signers
                        .get(issuer.as_str())
                        .expect("issue_order puts every issuer before what it issues");
                    params
                        .signed_by(&key, &Issuer::from_params(iparams, ikey))
                        .map_err(rcgen_err)?
                }
            };
            let der = cert.der().to_vec();
            let spki_sha256 = spki_sha256(&der)?;
            issued[i] = Some(IssuedCert {
                name: s.name.clone(),
                key_pkcs8: key.serialize_der(),
                der,
                issuer: s.issuer.clone(),
                spki_sha256,
                ca: s.ca,
            });
            if s.ca {
                signers.insert(s.name.as_str(), (params, key));
            }
        }
        let certs = issued
            .into_iter()
            .map(|c| c.expect("issue_order visits every spec exactly once"))
            .collect();
        Ok(Pki { certs, index })
    }

    pub fn get(&self, name: &str) -> Option<&IssuedCert> {
        self.index.get(name).map(|&i| &self.certs[i])
    }

    /// The chain as a server would send it: the named certificate, its issuers, and the
    /// self-signed root last.
    pub fn chain(&self, leaf: &str) -> Result<Vec<&IssuedCert>, PkiError> {
        let mut out = Vec::new();
        let mut next = Some(leaf);
        while let Some(name) = next {
            let cert = self.get(name).ok_or_else(|| PkiError::UnknownCert(name.to_string()))?;
            out.push(cert);
            // Terminates: issue() refused cycles.
            next = cert.issuer.as_deref();
        }
        Ok(out)
    }

    /// Certificate names in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.certs.iter().map(|c| c.name.as_str())
    }
}

/// The part of a [`CertSpec`] a problem is about, so that a caller that knows where each
/// field was written (the scenario loader) can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecField {
    Name,
    /// The SAN at this index.
    San(usize),
    /// The permitted subtree at this index.
    PermittedDns(usize),
    PathLen,
}

impl CertSpec {
    /// The rules a spec keeps on its own, whatever the other specs: the field at fault and why.
    pub fn check(&self) -> Result<(), (SpecField, String)> {
        if self.name.is_empty() {
            return Err((SpecField::Name, "empty certificate name".into()));
        }
        if let Some(i) = self.sans.iter().position(|n| n.is_empty()) {
            return Err((SpecField::San(i), "empty DNS name in `sans`".into()));
        }
        if let Some(i) = self.sans.iter().position(|n| !n.is_ascii()) {
            // A dNSName is an IA5String (RFC 5280 §4.2.1.6); IDNs go in as A-labels.
            return Err((
                SpecField::San(i),
                format!("SAN {:?} is not an ASCII (IA5) DNS name", self.sans[i]),
            ));
        }
        if let Some(i) = self.permitted_dns.iter().position(|n| n.is_empty()) {
            return Err((SpecField::PermittedDns(i), "empty DNS name in `permitted_dns`".into()));
        }
        if !self.ca && self.path_len.is_some() {
            return Err((
                SpecField::PathLen,
                "path_len applies to CA certificates only (RFC 5280 §4.2.1.9)".into(),
            ));
        }
        if !self.ca && !self.permitted_dns.is_empty() {
            return Err((
                SpecField::PermittedDns(0),
                "permitted_dns applies to CA certificates only (RFC 5280 §4.2.1.10)".into(),
            ));
        }
        Ok(())
    }
}

fn check_spec(s: &CertSpec) -> Result<(), PkiError> {
    s.check().map_err(|(_, reason)| PkiError::InvalidSpec {
        cert: s.name.clone(),
        reason,
    })?;
    if s.issuer.as_deref() == Some(s.name.as_str()) {
        // A certificate naming itself would loop in chain(); self-signed is `issuer = None`.
        return Err(PkiError::Cycle {
            names: vec![s.name.clone(), s.name.clone()],
        });
    }
    Ok(())
}

/// Spec indices ordered so that every issuer comes before what it issues; ties keep
/// declaration order.
fn issue_order(specs: &[CertSpec], index: &BTreeMap<String, usize>) -> Result<Vec<usize>, PkiError> {
    let mut done = vec![false; specs.len()];
    let mut order = Vec::with_capacity(specs.len());
    for start in 0..specs.len() {
        // Walk up the issuer links to the first issued (or self-signed) ancestor.
        let mut path: Vec<usize> = Vec::new();
        let mut cur = Some(start);
        while let Some(i) = cur {
            if done[i] {
                break;
            }
            if let Some(pos) = path.iter().position(|&p| p == i) {
                let mut names: Vec<String> = path[pos..].iter().map(|&p| specs[p].name.clone()).collect();
                names.push(specs[i].name.clone());
                return Err(PkiError::Cycle { names });
            }
            path.push(i);
            cur = specs[i].issuer.as_ref().map(|n| {
                *index
                    .get(n)
                    .expect("Pki::issue checked every issuer name before ordering")
            });
        }
        for &i in path.iter().rev() {
            done[i] = true;
            order.push(i);
        }
    }
    Ok(order)
}

/// A positive 16-byte serial derived from the name, so re-issuing gives the same serial.
fn serial_for(name: &str) -> SerialNumber {
    let h = Sha256::new()
        .chain_update(b"danesim serial v1\0")
        .chain_update(name.as_bytes())
        .finalize();
    let mut s = h[..16].to_vec();
    // Positive (top bit clear) and a nonzero top byte, so the DER length is always 16.
    s[0] = (s[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&s)
}

/// A declared serial as a positive DER INTEGER: a 00 octet in front when the first has its
/// top bit set (X.690 §8.3.2), leading zero octets dropped.
fn declared_serial(octets: &[u8]) -> SerialNumber {
    let start = octets
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(octets.len().saturating_sub(1));
    let mut s = octets[start..].to_vec();
    if s.first().is_some_and(|b| b & 0x80 != 0) {
        s.insert(0, 0);
    }
    SerialNumber::from_slice(&s)
}

fn params_for(s: &CertSpec) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(match &s.serial {
        Some(octets) => declared_serial(octets),
        None => serial_for(&s.name),
    });
    // DER times carry whole seconds; drop anything finer so the spec is what is encoded.
    params.not_before = s.not_before.replace_nanosecond(0).unwrap_or(s.not_before);
    params.not_after = s.not_after.replace_nanosecond(0).unwrap_or(s.not_after);

    // O and OU make every subject distinct (path building matches issuer to subject names)
    // without putting the spec name where name checks would look at it (only SAN and CN).
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "danesim test PKI");
    dn.push(DnType::OrganizationalUnitName, s.name.as_str());
    if let Some(cn) = &s.common_name {
        dn.push(DnType::CommonName, cn.as_str());
    }
    params.distinguished_name = dn;

    params.subject_alt_names = s
        .sans
        .iter()
        .map(|n| {
            n.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| PkiError::InvalidSpec {
                    cert: s.name.clone(),
                    reason: format!("SAN {n:?} is not an ASCII (IA5) DNS name"),
                })
        })
        .collect::<Result<_, _>>()?;

    if s.ca {
        params.is_ca = IsCa::Ca(match s.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        if !s.permitted_dns.is_empty() {
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: s
                    .permitted_dns
                    .iter()
                    .map(|d| GeneralSubtree::DnsName(d.clone()))
                    .collect(),
                excluded_subtrees: Vec::new(),
            });
        }
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    }
    params.use_authority_key_identifier_extension = s.issuer.is_some();
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::spki_der;
    use rcgen::PublicKeyData;

    fn key(s: &str) -> KeyRef {
        KeyRef::parse(s).unwrap()
    }

    fn spec(name: &str, k: &str) -> CertSpec {
        CertSpec::new(
            name,
            key(k),
            rcgen::date_time_ymd(2025, 1, 1),
            rcgen::date_time_ymd(2035, 1, 1),
        )
    }

    fn ca(name: &str, k: &str, issuer: Option<&str>) -> CertSpec {
        CertSpec {
            ca: true,
            issuer: issuer.map(str::to_string),
            common_name: Some(format!("{name} CA")),
            ..spec(name, k)
        }
    }

    fn leaf(name: &str, k: &str, issuer: &str, san: &str) -> CertSpec {
        CertSpec {
            issuer: Some(issuer.into()),
            sans: vec![san.into()],
            ..spec(name, k)
        }
    }

    fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    #[test]
    fn ca_intermediate_leaf_in_any_order() {
        for alg in ["ed25519", "p256"] {
            let (r, i, l) = match alg {
                "ed25519" => ("ed25519:root", "ed25519:inter", "ed25519:leaf"),
                _ => ("p256:1", "p256:2", "p256:3"),
            };
            // Leaf first, root last: issue() must sort.
            let specs = [
                leaf("leaf", l, "inter", "mx1.example.test"),
                ca("inter", i, Some("root")),
                ca("root", r, None),
            ];
            let pki = Pki::issue(&specs, &KeyStore::embedded()).unwrap();
            assert_eq!(pki.names().collect::<Vec<_>>(), ["leaf", "inter", "root"]);
            let chain = pki.chain("leaf").unwrap();
            assert_eq!(
                chain.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                ["leaf", "inter", "root"]
            );
            let (leaf_c, inter_c, root_c) = (parse(&chain[0].der), parse(&chain[1].der), parse(&chain[2].der));
            // Issuer names link up, signatures verify.
            assert_eq!(leaf_c.issuer(), inter_c.subject());
            assert_eq!(inter_c.issuer(), root_c.subject());
            assert_eq!(root_c.issuer(), root_c.subject());
            leaf_c.verify_signature(Some(inter_c.public_key())).unwrap();
            inter_c.verify_signature(Some(root_c.public_key())).unwrap();
            root_c.verify_signature(None).unwrap();
            assert!(root_c.is_ca() && inter_c.is_ca() && !leaf_c.is_ca());
            assert!(chain[1].ca && !chain[0].ca);
            // The stored key is the one certified.
            let kp = KeyPair::try_from(chain[0].key_pkcs8.as_slice()).unwrap();
            assert_eq!(
                Sha256::digest(kp.subject_public_key_info()).to_vec(),
                hex::decode(&chain[0].spki_sha256).unwrap()
            );
            assert_eq!(
                hex::decode(&chain[0].spki_sha256).unwrap(),
                Sha256::digest(spki_der(&chain[0].der).unwrap()).to_vec()
            );
            // SAN and serial.
            let san = leaf_c.subject_alternative_name().unwrap().unwrap();
            assert_eq!(
                format!("{:?}", san.value.general_names),
                r#"[DNSName("mx1.example.test")]"#
            );
            assert_eq!(leaf_c.raw_serial(), serial_for("leaf").to_bytes());
        }
    }

    #[test]
    fn a_declared_serial_is_the_certificates_and_stays_positive() {
        for (declared, der) in [
            (vec![0x10, 0x01], vec![0x10, 0x01]),
            (vec![0x00, 0x00, 0x2a], vec![0x2a]),
            (vec![0x80, 0x01], vec![0x00, 0x80, 0x01]),
        ] {
            let s = CertSpec {
                serial: Some(declared),
                ..spec("s", "ed25519:s")
            };
            let pki = Pki::issue(&[s], &KeyStore::embedded()).unwrap();
            let (_, c) = x509_parser::parse_x509_certificate(&pki.get("s").unwrap().der).unwrap();
            assert_eq!(c.raw_serial(), der.as_slice());
        }
    }

    #[test]
    fn ed25519_certificates_are_byte_identical_across_runs() {
        let specs = [
            ca("root", "ed25519:root", None),
            ca("inter", "ed25519:inter", Some("root")),
            leaf("leaf", "ed25519:leaf", "inter", "*.example.test"),
        ];
        let a = Pki::issue(&specs, &KeyStore::embedded()).unwrap();
        let b = Pki::issue(&specs, &KeyStore::embedded()).unwrap();
        for name in ["root", "inter", "leaf"] {
            assert_eq!(a.get(name).unwrap(), b.get(name).unwrap());
        }
        // P-256: certificates differ (random ECDSA nonces), the SPKI does not.
        let p = [spec("p", "p256:2")];
        let a = Pki::issue(&p, &KeyStore::embedded()).unwrap();
        let b = Pki::issue(&p, &KeyStore::embedded()).unwrap();
        assert_eq!(a.get("p").unwrap().spki_sha256, b.get("p").unwrap().spki_sha256);
    }

    #[test]
    fn constraints_and_dates_are_encoded() {
        let specs = [CertSpec {
            path_len: Some(0),
            permitted_dns: vec!["example.test".into()],
            not_before: rcgen::date_time_ymd(2024, 2, 3),
            not_after: rcgen::date_time_ymd(2024, 5, 6),
            ..ca("nc", "ed25519:nc", None)
        }];
        let pki = Pki::issue(&specs, &KeyStore::embedded()).unwrap();
        let c = parse(&pki.get("nc").unwrap().der);
        let bc = c.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let nc = c.name_constraints().unwrap().unwrap().value;
        assert_eq!(
            format!("{:?}", nc.permitted_subtrees.as_ref().unwrap()[0].base),
            r#"DNSName("example.test")"#
        );
        assert_eq!(
            c.validity().not_before.timestamp(),
            rcgen::date_time_ymd(2024, 2, 3).unix_timestamp()
        );
        assert_eq!(
            c.validity().not_after.timestamp(),
            rcgen::date_time_ymd(2024, 5, 6).unix_timestamp()
        );
    }

    #[test]
    fn bad_specs_are_errors() {
        let ks = KeyStore::embedded();
        let err = |specs: &[CertSpec]| Pki::issue(specs, &ks).unwrap_err();

        assert!(matches!(
            err(&[leaf("l", "ed25519:l", "nobody", "a.test")]),
            PkiError::UnknownIssuer { cert, issuer } if cert == "l" && issuer == "nobody"
        ));
        assert!(matches!(
            err(&[spec("ee", "ed25519:ee"), leaf("l", "ed25519:l", "ee", "a.test")]),
            PkiError::IssuerNotCa { cert, issuer } if cert == "l" && issuer == "ee"
        ));
        assert!(matches!(
            err(&[ca("a", "ed25519:a", Some("b")), ca("b", "ed25519:b", Some("a"))]),
            PkiError::Cycle { names } if names == ["a", "b", "a"]
        ));
        assert!(matches!(
            err(&[ca("a", "ed25519:a", Some("a"))]),
            PkiError::Cycle { .. }
        ));
        assert!(matches!(
            err(&[spec("x", "ed25519:x"), spec("x", "ed25519:y")]),
            PkiError::DuplicateName(n) if n == "x"
        ));
        let bad_key = CertSpec {
            key: KeyRef {
                alg: crate::pki::KeyAlg::P256,
                name: "9".into(),
            },
            ..spec("k", "p256:1")
        };
        assert!(matches!(err(&[bad_key]), PkiError::BadKey { .. }));
        let leaf_with_path_len = CertSpec {
            path_len: Some(1),
            ..spec("p", "ed25519:p")
        };
        assert!(matches!(err(&[leaf_with_path_len]), PkiError::InvalidSpec { .. }));
        let leaf_with_nc = CertSpec {
            permitted_dns: vec!["example.test".into()],
            ..spec("p", "ed25519:p")
        };
        assert!(matches!(err(&[leaf_with_nc]), PkiError::InvalidSpec { .. }));
        let non_ascii_san = CertSpec {
            sans: vec!["mx1.bücher.test".into()],
            ..spec("n", "ed25519:n")
        };
        assert!(matches!(err(&[non_ascii_san]), PkiError::InvalidSpec { .. }));
        let empty_san = CertSpec {
            sans: vec![String::new()],
            ..spec("n", "ed25519:n")
        };
        assert!(matches!(err(&[empty_san]), PkiError::InvalidSpec { .. }));
        let pki = Pki::issue(&[spec("only", "ed25519:o")], &ks).unwrap();
        assert!(matches!(pki.chain("missing"), Err(PkiError::UnknownCert(_))));
        assert!(pki.get("missing").is_none());
    }
}
