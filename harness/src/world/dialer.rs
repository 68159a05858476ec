//! The world's address map: the only way the reference sender reaches a network peer.
//!
//! Zones publish documentation addresses (192.0.2.0/24, 2001:db8::/32). In process,
//! each of those address:port pairs maps to a loopback listener. An address that is
//! not in the map is refused here, so the sender can never dial outside its world.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

#[derive(Debug, Clone, Default)]
pub struct Dialer {
    map: BTreeMap<SocketAddr, SocketAddr>,
}

impl Dialer {
    pub fn new(map: BTreeMap<SocketAddr, SocketAddr>) -> Dialer {
        Dialer { map }
    }

    /// The loopback listener that stands for a world address (`danesim serve` prints it, so
    /// that tools outside the harness can reach the endpoint).
    pub fn route(&self, addr: SocketAddr) -> Option<SocketAddr> {
        self.map.get(&canonical(addr)).copied()
    }

    /// Connect to a world address. An address without an endpoint behaves like a host
    /// that is down (connection refused), which is what a sender would see.
    pub async fn dial(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let Some(local) = self.map.get(&canonical(addr)) else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("connection refused: no server listens at {addr} in this world"),
            ));
        };
        match tokio::time::timeout(timeout, TcpStream::connect(local)).await {
            Ok(Ok(s)) => {
                // SMTP is lockstep: without this, Nagle's algorithm and delayed ACKs add ~40 ms
                // to each small write that follows another (RFC 1122 §4.2.3.2).
                s.set_nodelay(true)?;
                Ok(s)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out"),
            )),
        }
    }
}

/// An IPv4-mapped address (`[::ffff:192.0.2.10]:25`) is the IPv4 address a dual-stack
/// socket would dial: it reaches the same endpoint, and nothing the map does not hold.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(crate::address::normalise(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_addresses_are_refused_without_dialling() {
        let d = Dialer::new(BTreeMap::new());
        let e = d
            .dial("203.0.113.1:25".parse().unwrap(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn mapped_addresses_reach_their_loopback_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut m = BTreeMap::new();
        m.insert("192.0.2.10:25".parse().unwrap(), l.local_addr().unwrap());
        let d = Dialer::new(m);
        let (c, a) = tokio::join!(
            d.dial("192.0.2.10:25".parse().unwrap(), Duration::from_secs(1)),
            l.accept()
        );
        assert!(c.is_ok() && a.is_ok());
        // The IPv4-mapped form is the same world address; a mapped outside address is
        // refused like the address itself, never dialled.
        let (c, a) = tokio::join!(
            d.dial("[::ffff:192.0.2.10]:25".parse().unwrap(), Duration::from_secs(1)),
            l.accept()
        );
        assert!(c.is_ok() && a.is_ok());
        for outside in ["[::ffff:127.0.0.1]:25", "[::ffff:8.8.8.8]:25", "8.8.8.8:25"] {
            let e = d
                .dial(outside.parse().unwrap(), Duration::from_secs(1))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{outside}");
        }
    }
}
