//! Certificate chains from PEM files, in the order a server presents them: the leaf first,
//! then its issuers (RFC 8446 §4.4.2, RFC 5246 §7.4.2). That is how `fullchain.pem` files,
//! Postfix's `smtpd_tls_chain_files` and openssl's `s_client -showcerts` lay them out.
//!
//! Other PEM blocks (a private key kept in the same file, parameters) are skipped, so a
//! combined key-and-chain file works as it is.

use std::path::{Path, PathBuf};

use x509_parser::pem::Pem;

use super::InspectError;

/// The certificates of one PEM file, leaf first.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The file as the user named it (shown in reports).
    pub path: PathBuf,
    /// DER of each certificate, in file order.
    pub certs: Vec<Vec<u8>>,
}

impl Chain {
    /// The leaf: the first certificate in the file.
    pub fn leaf(&self) -> &[u8] {
        self.certs.first().expect("read_chain never returns an empty chain")
    }

    /// A short description of the certificate at `index` for reports: its subject.
    pub fn describe(&self, index: usize) -> String {
        self.certs
            .get(index)
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_else(|| "(unparseable)".into())
    }
}

/// Reads every `CERTIFICATE` block of a PEM file. Fails with a message naming the file when
/// it cannot be read, holds no certificate, or a certificate block does not parse.
pub fn read_chain(path: &Path) -> Result<Chain, InspectError> {
    let bytes = std::fs::read(path).map_err(|source| InspectError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let fail = |message: String| InspectError::Certificate {
        path: path.to_path_buf(),
        message,
    };
    let mut certs = Vec::new();
    let mut others = Vec::new();
    for (n, block) in Pem::iter_from_buffer(&bytes).enumerate() {
        let block = block.map_err(|e| fail(format!("PEM block {} is broken: {e}", n + 1)))?;
        if block.label != "CERTIFICATE" {
            others.push(block.label);
            continue;
        }
        x509_parser::parse_x509_certificate(&block.contents).map_err(|e| {
            fail(format!(
                "certificate {} (PEM block {}) does not parse as X.509: {e}",
                certs.len(),
                n + 1
            ))
        })?;
        certs.push(block.contents);
    }
    if certs.is_empty() {
        let hint = if x509_parser::parse_x509_certificate(&bytes).is_ok() {
            format!(
                "this is a DER certificate, not PEM; convert it with `openssl x509 -inform DER -in {0} -out {0}.pem`",
                path.display()
            )
        } else if !others.is_empty() {
            format!(
                "found only {} block(s); give the certificate file (leaf first, then its issuers)",
                others.join(", ")
            )
        } else {
            "expected `-----BEGIN CERTIFICATE-----` blocks (leaf first, then its issuers)".into()
        };
        return Err(fail(format!("no PEM certificate found: {hint}")));
    }
    Ok(Chain {
        path: path.to_path_buf(),
        certs,
    })
}

/// The leaf's presented identifiers in certificate order (RFC 7672 §3.2.3): its DNS-IDs if
/// the SAN has any, otherwise its CN-IDs; lowercase, without a trailing dot.
pub fn leaf_names(chain: &Chain) -> Vec<String> {
    crate::dane::presented_identifiers(chain.leaf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("danesim-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    #[test]
    fn errors_name_the_file_and_the_way_out() {
        let e = read_chain(Path::new("/nonexistent/cert.pem")).unwrap_err();
        assert!(e.to_string().starts_with("cannot read /nonexistent/cert.pem: "), "{e}");

        let p = temp("empty.pem", b"hello\n");
        let e = read_chain(&p).unwrap_err().to_string();
        assert!(e.contains("empty.pem: no PEM certificate found"), "{e}");

        let p = temp(
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let e = read_chain(&p).unwrap_err().to_string();
        assert!(e.contains("found only PRIVATE KEY block(s)"), "{e}");

        let p = temp(
            "junk.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = read_chain(&p).unwrap_err().to_string();
        assert!(e.contains("certificate 0 (PEM block 1) does not parse as X.509"), "{e}");

        let p = temp(
            "b64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let e = read_chain(&p).unwrap_err().to_string();
        assert!(e.contains("PEM block 1 is broken"), "{e}");
    }
}
