//! hickory's tokio runtime with the world clock as its time.
//!
//! hickory-net judges RRSIG validity (RFC 4035 §5.3.1: inception ≤ now ≤ expiration) at
//! `Time::current_time()`, which by default reads the host's clock. The reference sender
//! must judge at the world clock instead (DESIGN.md "One world clock"): otherwise a host
//! clock outside the fixed signing window (2025-01-01 .. 2035-01-01) makes every answer
//! bogus, and the expired-RRSIG scenarios would pass or fail by the host's date.
//!
//! `current_time()` is a static function, so the time travels with the task that validates:
//! [`at`] runs a lookup with the world time in a task-local. hickory validates in the
//! future the caller polls (`DnssecDnsHandle::send`), so the value is in scope there.
//! Outside any scope the time is 0, before every signature's inception: nothing validates
//! (fail closed, RFC 7672 §2.1.3) rather than the host's date leaking in unnoticed.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use hickory_resolver::net::runtime::{RuntimeProvider, Time, TokioHandle, TokioRuntimeProvider, TokioTime};
use tokio::net::UdpSocket;

tokio::task_local! {
    /// The world time of the lookup being validated, in seconds since the Unix epoch.
    static NOW: u64;
}

/// Runs `f` (a lookup) with `now` as the time its DNSSEC validation sees.
pub async fn at<F: Future>(now: u64, f: F) -> F::Output {
    NOW.scope(now, f).await
}

/// Tokio's runtime provider, except for its clock.
#[derive(Clone, Default)]
pub struct WorldRuntime(TokioRuntimeProvider);

/// Tokio's timers (timeouts are real durations), the world's time of day.
#[derive(Clone, Copy, Debug)]
pub struct WorldTime;

#[async_trait::async_trait]
impl Time for WorldTime {
    async fn delay_for(duration: Duration) {
        TokioTime::delay_for(duration).await
    }

    async fn timeout<F: 'static + Future + Send>(duration: Duration, future: F) -> Result<F::Output, io::Error> {
        TokioTime::timeout(duration, future).await
    }

    fn current_time() -> u64 {
        NOW.try_with(|now| *now).unwrap_or(0)
    }
}

impl RuntimeProvider for WorldRuntime {
    type Handle = TokioHandle;
    type Timer = WorldTime;
    type Udp = UdpSocket;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_time_is_the_scopes_and_zero_outside() {
        assert_eq!(WorldTime::current_time(), 0);
        let inside = at(1_780_272_000, async { WorldTime::current_time() }).await;
        assert_eq!(inside, 1_780_272_000);
        assert_eq!(WorldTime::current_time(), 0);
    }
}
