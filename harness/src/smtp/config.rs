//! Endpoint configuration: host name, behaviour, certificate chain and resource limits.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::behaviour::Behaviour;
use super::error::SmtpError;
use super::script::{Script, Sessions};

/// A certificate chain an endpoint presents in its TLS handshake.
pub struct TlsChain {
    /// The scenario's name for this chain (recorded in transcripts instead of raw bytes).
    pub label: String,
    /// Leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// PKCS#8 private key of the leaf (Ed25519 or P-256).
    pub key: PrivateKeyDer<'static>,
    /// Hex SHA-256 of each certificate's SubjectPublicKeyInfo, in `certs` order (computed by the caller).
    pub spki_sha256: Vec<String>,
}

impl Clone for TlsChain {
    fn clone(&self) -> Self {
        TlsChain {
            label: self.label.clone(),
            certs: self.certs.clone(),
            key: self.key.clone_key(),
            spki_sha256: self.spki_sha256.clone(),
        }
    }
}

impl std::fmt::Debug for TlsChain {
    // The key is deliberately not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsChain")
            .field("label", &self.label)
            .field("certs", &self.certs.len())
            .field("spki_sha256", &self.spki_sha256)
            .finish_non_exhaustive()
    }
}

/// Resource limits of one endpoint connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line accepted, without its CRLF. RFC 5321 §4.5.3.1.4 requires 512 octets including CRLF;
    /// we are generous (1000, the text-line limit of §4.5.3.1.6) because real clients sometimes exceed 512.
    pub max_line: usize,
    /// Largest message accepted (after dot-unstuffing, CRLF line endings), advertised with SIZE (RFC 1870).
    pub max_message: usize,
    /// How long the endpoint waits for the next client bytes (or for a write to drain) before it gives up.
    /// RFC 5321 §4.5.3.2.7 suggests 5 minutes for a real server; a simulation wants much less.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 1000,
            max_message: 10 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything one endpoint needs to serve connections.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Host name used in the greeting and the EHLO reply, e.g. `mx1.example.test`.
    pub name: String,
    pub behaviour: Behaviour,
    /// Without a chain, STARTTLS is never offered.
    pub chain: Option<TlsChain>,
    pub limits: Limits,
    /// Scripted replies and drops (nothing by default), for every connection `sessions` does
    /// not name.
    pub script: Script,
    /// Scripts of single connections, by ordinal (none by default).
    pub sessions: Sessions,
    /// Chains served instead of `chain` to a ClientHello whose SNI names the server (RFC 6066
    /// §3): lowercase host names without the trailing dot. `chain` stays the default.
    pub sni_chains: Vec<(String, TlsChain)>,
}

impl EndpointConfig {
    /// A normal endpoint with default limits.
    pub fn new(name: impl Into<String>, chain: Option<TlsChain>) -> Self {
        EndpointConfig {
            name: name.into(),
            behaviour: Behaviour::Normal,
            chain,
            limits: Limits::default(),
            script: Script::default(),
            sessions: Sessions::default(),
            sni_chains: Vec::new(),
        }
    }

    /// The chain presented to a ClientHello with this SNI (or none).
    pub(crate) fn chain_for(&self, sni: Option<&str>) -> Option<&TlsChain> {
        sni.and_then(|name| {
            self.sni_chains
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.trim_end_matches('.')))
                .map(|(_, c)| c)
        })
        .or(self.chain.as_ref())
    }

    /// Whether the EHLO reply advertises STARTTLS.
    pub(crate) fn offers_starttls(&self) -> bool {
        self.behaviour.offers_starttls() && self.chain.is_some()
    }
}

/// Builds the rustls server configuration for a chain with every TLS version. `serve` calls
/// [`tls_config_for`] once; `world` may call this up front to report a bad chain as an error
/// before any connection is made.
pub fn server_tls_config(chain: &TlsChain) -> Result<Arc<rustls::ServerConfig>, SmtpError> {
    tls_config_for(chain, Behaviour::Normal)
}

/// The rustls server configuration of an endpoint: its default chain, the chains it picks by
/// SNI, and the behaviour's TLS versions.
pub(crate) fn endpoint_tls_config(config: &EndpointConfig) -> Result<Option<Arc<rustls::ServerConfig>>, SmtpError> {
    let Some(chain) = &config.chain else {
        return Ok(None);
    };
    // `tls-alert` refuses every handshake whatever the name, so SNI chains do not matter.
    if config.sni_chains.is_empty() || config.behaviour.refuses_handshake() {
        return tls_config_for(chain, config.behaviour).map(Some);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = |c: &TlsChain| -> Result<Arc<rustls::sign::CertifiedKey>, SmtpError> {
        // The same checks as a single-chain endpoint (empty chain, key not the leaf's).
        tls_config_for(c, config.behaviour)?;
        let key = provider
            .key_provider
            .load_private_key(c.key.clone_key())
            .map_err(|e| SmtpError::BadChain {
                label: c.label.clone(),
                reason: e.to_string(),
            })?;
        Ok(Arc::new(rustls::sign::CertifiedKey::new(c.certs.clone(), key)))
    };
    let mut by_name = Vec::new();
    for (name, c) in &config.sni_chains {
        by_name.push((name.clone(), certified(c)?));
    }
    let resolver = BySni {
        default: certified(chain)?,
        by_name,
    };
    let bad = |e: rustls::Error| SmtpError::BadChain {
        label: chain.label.clone(),
        reason: e.to_string(),
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&config.behaviour.tls_versions())
        .map_err(bad)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    Ok(Some(Arc::new(server)))
}

/// Picks the chain by the ClientHello's server name; the default for none or another name.
#[derive(Debug)]
struct BySni {
    default: Arc<rustls::sign::CertifiedKey>,
    by_name: Vec<(String, Arc<rustls::sign::CertifiedKey>)>,
}

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|sni| self.by_name.iter().find(|(n, _)| n.eq_ignore_ascii_case(sni)))
            .map(|(_, k)| k);
        Some(chosen.unwrap_or(&self.default).clone())
    }
}

/// The rustls server configuration for a chain, shaped by the behaviour: its TLS versions,
/// and for `tls-alert` a certificate resolver that finds nothing, so that rustls answers the
/// ClientHello with a fatal alert (`access_denied`, RFC 8446 §6.2).
pub(crate) fn tls_config_for(chain: &TlsChain, behaviour: Behaviour) -> Result<Arc<rustls::ServerConfig>, SmtpError> {
    if chain.certs.is_empty() {
        return Err(SmtpError::EmptyChain {
            label: chain.label.clone(),
        });
    }
    let bad = |e: rustls::Error| SmtpError::BadChain {
        label: chain.label.clone(),
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&behaviour.tls_versions())
        .map_err(bad)?
        .with_no_client_auth();
    let mut config = if behaviour.refuses_handshake() {
        // Still load the chain, so that a bad one is reported like for any other behaviour.
        builder
            .clone()
            .with_single_cert(chain.certs.clone(), chain.key.clone_key())
            .map_err(bad)?;
        builder.with_cert_resolver(Arc::new(NoCertificate))
    } else {
        builder
            .with_single_cert(chain.certs.clone(), chain.key.clone_key())
            .map_err(bad)?
    };
    // Every handshake is a full one, so every transcript records the chain that was really presented and a client
    // never skips certificate checks by resuming a session from an earlier attempt.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A certificate resolver with nothing to offer (the `tls-alert` behaviour).
#[derive(Debug)]
struct NoCertificate;

impl rustls::server::ResolvesServerCert for NoCertificate {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_generous_but_bounded() {
        let l = Limits::default();
        assert!(l.max_line >= 510, "RFC 5321 §4.5.3.1.4 minimum");
        assert!(l.max_message > 0 && l.max_message <= 64 * 1024 * 1024);
        assert!(l.idle_timeout > Duration::ZERO);
    }

    #[test]
    fn empty_or_mismatched_chain_is_an_error() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ring generates Ed25519 keys");
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ring generates Ed25519 keys");
        let cert = rcgen::CertificateParams::new(vec!["mx.example.test".to_string()])
            .expect("valid name")
            .self_signed(&key)
            .expect("self-signing works");
        let mut chain = TlsChain {
            label: "ee".into(),
            certs: vec![],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            spki_sha256: vec![],
        };
        assert!(matches!(server_tls_config(&chain), Err(SmtpError::EmptyChain { .. })));
        chain.certs.push(cert.der().clone());
        assert!(server_tls_config(&chain).is_ok());
        chain.key = PrivateKeyDer::Pkcs8(other.serialize_der().into());
        assert!(matches!(server_tls_config(&chain), Err(SmtpError::BadChain { .. })));
        assert!(!format!("{chain:?}").contains("Pkcs8"), "the key must not be printed");
    }
}
