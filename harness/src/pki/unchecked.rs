//! A TLS client verifier that authenticates nothing on purpose, and remembers what it saw.
//!
//! Two clients in the world need one: the reference sender in "TLS" mode, when every TLSA
//! record is unusable (RFC 7672 §2.2: encryption is mandatory, the certificate is not
//! checked), and the on-path interceptor's leg to the real server (an attacker checks
//! nothing). It still checks that the server holds the leaf's key (the handshake
//! signatures), so a session is really encrypted to whoever presented the chain.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts any chain; records the last one presented (leaf first).
#[derive(Clone)]
pub struct UncheckedVerifier {
    algs: WebPkiSupportedAlgorithms,
    seen: Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>,
}

impl fmt::Debug for UncheckedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UncheckedVerifier").finish_non_exhaustive()
    }
}

impl Default for UncheckedVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl UncheckedVerifier {
    pub fn new() -> Self {
        UncheckedVerifier {
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            seen: Arc::default(),
        }
    }

    /// The chain the server presented in the last handshake (leaf first).
    pub fn presented_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ServerCertVerifier for UncheckedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}
