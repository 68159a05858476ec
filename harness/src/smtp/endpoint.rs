//! The accept loop of one endpoint: one session task per connection, all ended on shutdown.

use std::future::Future;

use tokio::net::TcpListener;

use super::acceptor::accept_until;
use super::handle::EndpointHandle;
use super::session::Session;
use super::transcript::TranscriptLog;

/// Serves SMTP on `listener` until `shutdown` completes, recording one transcript per connection in `log`.
///
/// On shutdown it stops accepting, tells every open session to answer 421 and close, and returns once they have
/// all finished. A chain that rustls refuses is recorded in [`TranscriptLog::errors`]; STARTTLS is then still
/// advertised (the scenario asked for it) but answered with 454. Each connection takes the configuration the
/// [`EndpointHandle`] holds when it is accepted.
pub async fn serve(
    listener: TcpListener,
    config: impl Into<EndpointHandle>,
    log: TranscriptLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let handle: EndpointHandle = config.into();
    if let Some(e) = &handle.current().error {
        log.record_error(e.clone());
    }
    let errors = log.clone();
    accept_until(
        listener,
        shutdown,
        |tcp, stop| {
            let guard = log.begin();
            let now = handle.current();
            let (config, tls) = (now.config.clone(), now.tls.clone());
            async move {
                let transcript = Session::run(tcp, config, tls, stop, guard.connection()).await;
                guard.finish(transcript);
            }
        },
        |e| errors.record_error(format!("accept failed: {e}")),
    )
    .await;
}
