//! The accept loop of one endpoint: one session task per connection, all ended on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::config::{EndpointConfig, server_tls_config};
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
        (Some(chain), true) => match server_tls_config(chain) {
            Ok(c) => TlsSetup::Ready(c),
            Err(e) => {
                log.record_error(e.to_string());
                TlsSetup::Broken
            }
        },
        _ => TlsSetup::None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    // SMTP is lockstep: Nagle's algorithm would hold each short reply back for the
                    // peer's delayed ACK (~40 ms per round trip, RFC 896 / RFC 1122 §4.2.3.2).
                    let _ = tcp.set_nodelay(true);
                    let guard = log.begin();
                    let (config, tls, stop) = (config.clone(), tls.clone(), stop_rx.clone());
                    sessions.spawn(async move {
                        let transcript = Session::run(tcp, config, tls, stop, guard.connection()).await;
                        guard.finish(transcript);
                    });
                }
                Err(e) => {
                    // Accept errors (e.g. out of file descriptors) are transient; back off instead of spinning.
                    log.record_error(format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished sessions so the set does not grow with the number of connections.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    // Receivers may all be gone already; that is fine.
    let _ = stop_tx.send(true);
    while sessions.join_next().await.is_some() {}
}
