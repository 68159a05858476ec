//! The accept loop shared by the endpoint and the attacker relay: one place for what every
//! connection gets (no Nagle delay, a stop signal) and for how the server ends (stop
//! accepting, tell every connection to stop, wait for all of them).

use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Accept on `listener` until `shutdown` completes. `on_accept` runs synchronously for each
/// connection (so logs can count it at once) and returns the task that serves it; the task is
/// given a receiver that turns true when the server stops. Returns once every task has ended.
pub(crate) async fn accept_until<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut on_accept: F,
    mut on_error: impl FnMut(std::io::Error),
) where
    F: FnMut(TcpStream, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    // SMTP is lockstep: Nagle's algorithm would hold each short write back for the
                    // peer's delayed ACK (~40 ms per round trip, RFC 896 / RFC 1122 §4.2.3.2).
                    let _ = tcp.set_nodelay(true);
                    tasks.spawn(on_accept(tcp, stop_rx.clone()));
                }
                Err(e) => {
                    // Accept errors (e.g. out of file descriptors) are transient; back off instead of spinning.
                    on_error(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished tasks so the set does not grow with the number of connections.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    // Receivers may all be gone already; that is fine.
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}
