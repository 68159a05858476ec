//! hickory's runtime with the world clock instead of the host's.
//!
//! hickory's DNSSEC handle judges RRSIG validity windows (RFC 4034 §3.1.5) by
//! `Time::current_time()`, which by default reads the host clock. The world has one clock
//! (DESIGN.md, "One world clock"): signatures, certificates and the sender's "now" all
//! follow the scenario, so an outcome never depends on the host's date. `current_time` is
//! an associated function without `self`, so the clock travels as a task-local value that
//! [`Validator`](super::lookup::Validator) sets around every lookup it runs; validation
//! runs in that task (hickory polls it inside the lookup's own future).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use hickory_resolver::net::runtime::{RuntimeProvider, Time, TokioRuntimeProvider};

tokio::task_local! {
    /// Seconds since the Unix epoch of the world clock, for the lookup being run.
    static WORLD_NOW: u64;
}

/// Runs `f` with the world clock at `now` (Unix seconds) for hickory's validation.
pub async fn with_clock<F: Future>(now: u64, f: F) -> F::Output {
    WORLD_NOW.scope(now, f).await
}

/// hickory's tokio runtime, but with [`WorldTime`] as its timer.
#[derive(Clone, Default)]
pub struct WorldRuntime(TokioRuntimeProvider);

impl RuntimeProvider for WorldRuntime {
    type Handle = <TokioRuntimeProvider as RuntimeProvider>::Handle;
    type Timer = WorldTime;
    type Udp = <TokioRuntimeProvider as RuntimeProvider>::Udp;
    type Tcp = <TokioRuntimeProvider as RuntimeProvider>::Tcp;

    fn create_handle(&self) -> Self::Handle {
        self.0.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        self.0.connect_tcp(server_addr, bind_addr, timeout)
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        self.0.bind_udp(local_addr, server_addr)
    }
}

/// tokio's delays and timeouts, and the world clock for "now".
#[derive(Clone, Copy, Debug)]
pub struct WorldTime;

#[async_trait::async_trait]
impl Time for WorldTime {
    async fn delay_for(duration: Duration) {
        tokio::time::sleep(duration).await
    }

    async fn timeout<F: 'static + Future + Send>(duration: Duration, future: F) -> Result<F::Output, io::Error> {
        tokio::time::timeout(duration, future)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "future timed out"))
    }

    /// The world clock inside a lookup. Outside one (hickory's background connection
    /// tasks stamp requests with it, and nothing there is validated) there is no world to
    /// ask; 0 would make any signature check fail closed, so nothing is judged by the host.
    fn current_time() -> u64 {
        WORLD_NOW.try_with(|now| *now).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_clock_is_the_worlds_inside_a_lookup_only() {
        assert_eq!(
            with_clock(1_780_272_000, async { WorldTime::current_time() }).await,
            1_780_272_000
        );
        assert_eq!(WorldTime::current_time(), 0);
    }
}
