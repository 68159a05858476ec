use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use super::error::DnsError;
use super::log::QueryLog;
use super::switch::ZoneSwitch;
use super::world::SignedWorld;

/// Idle limit of one TCP connection; resolvers reconnect when they need to.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Serve every zone of `world` on the given sockets until `shutdown` resolves.
///
/// The caller binds (tests bind 127.0.0.1:0). Every query is recorded in `log`.
pub async fn serve(
    world: Arc<SignedWorld>,
    udp: UdpSocket,
    tcp: TcpListener,
    log: QueryLog,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DnsError> {
    serve_switch(ZoneSwitch::new(&world, log), udp, tcp, shutdown).await
}

/// Like [`serve`], with zones the caller can replace while serving ([`ZoneSwitch::publish`]).
pub async fn serve_switch(
    switch: ZoneSwitch,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DnsError> {
    let mut server = Server::new(switch);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    shutdown.await;
    server
        .shutdown_gracefully()
        .await
        .map_err(|e| DnsError::Server(e.to_string()))
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    use tokio::net::UdpSocket;

    use crate::dns::fixture;

    /// A plain query (no EDNS, CD=1) is answered without RRSIGs and logged as such.
    #[tokio::test]
    async fn plain_query_is_answered_and_logged() {
        let served = fixture::serve_sample().await;
        let mut query = Message::query();
        query.metadata.checking_disabled = true;
        query.add_query(Query::query(
            Name::from_ascii("MX1.Example.TEST.").unwrap(),
            RecordType::A,
        ));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(&query.to_vec().unwrap(), served.addr).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("the server answers")
            .unwrap();
        let response = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(response.metadata.id, query.metadata.id);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert_eq!(response.answers.len(), 1, "no RRSIG without DO: {response:?}");

        let log = served.log.entries();
        assert_eq!(log.len(), 1, "{log:?}");
        let entry = &log[0];
        assert_eq!(entry.qname, "mx1.example.test.");
        assert_eq!(entry.qtype, "A");
        assert!(!entry.dnssec_ok);
        assert!(entry.checking_disabled);
        assert!(!entry.tcp);
        assert_eq!(entry.rcode, "NOERROR");
        assert_eq!(entry.answers, 1);
        served.stop().await.unwrap();
    }
}
