//! The accept loop of one endpoint: one session task per connection, all ended on shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::acceptor::accept_until;
use super::config::{EndpointConfig, endpoint_tls_config};
use super::session::{Session, TlsSetup};
use super::transcript::TranscriptLog;

/// Serves SMTP on `listener` until `shutdown` completes, recording one transcript per connection in `log`.
///
/// On shutdown it stops accepting, tells every open session to answer 421 and close, and returns once they have
/// all finished. A chain that rustls refuses is recorded in [`TranscriptLog::errors`]; STARTTLS is then still
/// advertised (the scenario asked for it) but answered with 454.
pub async fn serve(
    listener: TcpListener,
    config: Arc<EndpointConfig>,
    log: TranscriptLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let tls = match (&config.chain, config.offers_starttls()) {
        (Some(_), true) => match endpoint_tls_config(&config) {
            Ok(Some(c)) => TlsSetup::Ready(c),
            Ok(None) => TlsSetup::None,
            Err(e) => {
                log.record_error(e.to_string());
                TlsSetup::Broken
            }
        },
        _ => TlsSetup::None,
    };
    let errors = log.clone();
    accept_until(
        listener,
        shutdown,
        |tcp, stop| {
            let guard = log.begin();
            let (config, tls) = (config.clone(), tls.clone());
            async move {
                let transcript = Session::run(tcp, config, tls, stop, guard.connection()).await;
                guard.finish(transcript);
            }
        },
        |e| errors.record_error(format!("accept failed: {e}")),
    )
    .await;
}
