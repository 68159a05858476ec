//! An endpoint's configuration as it stands now, replaceable while the endpoint runs.
//!
//! A timeline step renews a server's certificate between two delivery attempts (RFC 7671 §8:
//! key rollover is a sequence of publish and switch steps). The endpoint keeps serving; each
//! accepted connection takes the configuration current at accept time, so a connection
//! never changes certificate halfway, and the transcript's chain label says which one a
//! client saw.

use std::sync::{Arc, RwLock};

use super::config::{EndpointConfig, TlsChain, endpoint_tls_config};
use super::error::SmtpError;
use super::session::TlsSetup;

/// A shared, replaceable endpoint configuration; clones refer to the same endpoint.
#[derive(Clone)]
pub struct EndpointHandle(Arc<RwLock<Arc<Current>>>);

pub(crate) struct Current {
    pub(crate) config: Arc<EndpointConfig>,
    pub(crate) tls: TlsSetup,
    /// Why rustls refused the chain, when `tls` is `Broken`.
    pub(crate) error: Option<String>,
}

impl Current {
    fn new(config: Arc<EndpointConfig>) -> Current {
        let (tls, error) = match (&config.chain, config.offers_starttls()) {
            (Some(_), true) => match endpoint_tls_config(&config) {
                Ok(Some(c)) => (TlsSetup::Ready(c), None),
                Ok(None) => (TlsSetup::None, None),
                Err(e) => (TlsSetup::Broken, Some(e.to_string())),
            },
            _ => (TlsSetup::None, None),
        };
        Current { config, tls, error }
    }
}

impl From<Arc<EndpointConfig>> for EndpointHandle {
    fn from(config: Arc<EndpointConfig>) -> Self {
        EndpointHandle(Arc::new(RwLock::new(Arc::new(Current::new(config)))))
    }
}

impl From<EndpointConfig> for EndpointHandle {
    fn from(config: EndpointConfig) -> Self {
        Arc::new(config).into()
    }
}

impl std::fmt::Debug for EndpointHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EndpointHandle").field(&self.config().name).finish()
    }
}

impl EndpointHandle {
    /// The configuration new connections get.
    pub fn config(&self) -> Arc<EndpointConfig> {
        self.current().config.clone()
    }

    /// Serve `chain` as the default chain from the next accepted connection on (SNI chains
    /// stay). A chain rustls refuses is an error and changes nothing.
    pub fn replace_chain(&self, chain: TlsChain) -> Result<(), SmtpError> {
        let mut config = (*self.config()).clone();
        config.chain = Some(chain);
        let next = Current::new(Arc::new(config));
        if let Some(e) = &next.error {
            let label = next.config.chain.as_ref().map(|c| c.label.clone()).unwrap_or_default();
            return Err(SmtpError::BadChain {
                label,
                reason: e.clone(),
            });
        }
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(())
    }

    pub(crate) fn current(&self) -> Arc<Current> {
        // A writer only swaps an Arc, so a poisoned lock still holds a whole value.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
