//! The world's DNS handler without sockets: one request message in, the response bytes out.
//!
//! `serve` runs the same [`ZoneSwitch`] behind hickory's UDP and TCP listeners; this path
//! skips only the sockets, so the fuzz target (`harness/fuzz`, `dns_request`) and tests reach
//! every stage a hostile peer reaches: request decoding, routing, DNAME synthesis, the
//! hickory workarounds, the scenario's faults and the query log.

use std::net::{Ipv4Addr, SocketAddr};

use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler};

use super::handler::Capture;
use super::switch::ZoneSwitch;

/// Where a socketless request claims to come from (documentation range, RFC 5737).
const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 250)), 53000);
/// The UDP payload size a client without EDNS gets (RFC 1035 §4.2.1); with EDNS the
/// response is cut to the client's advertised size (RFC 6891 §7), as hickory's listener does.
const UDP_PLAIN: u16 = 512;

impl ZoneSwitch {
    /// The response the server would send to `bytes` over UDP (`tcp = false`) or TCP, or
    /// `None` when it would send nothing: the bytes are not a request (hickory's listener
    /// drops those too), or a scripted fault drops the answer.
    pub async fn answer_bytes(&self, bytes: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let protocol = if tcp { Protocol::Tcp } else { Protocol::Udp };
        let request = Request::from_bytes(bytes.to_vec(), PEER, protocol).ok()?;
        let max = match (tcp, request.edns.as_ref()) {
            (true, _) => u16::MAX,
            (false, Some(edns)) => edns.max_payload(),
            (false, None) => UDP_PLAIN,
        };
        let out = Capture::limited(max);
        self.handle_request::<_, TokioTime>(&request, out.clone()).await;
        out.take_bytes()
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::dns::{QueryLog, SignedWorld, fixture};

    fn switch() -> (ZoneSwitch, QueryLog) {
        let world = SignedWorld::build(&fixture::sample_spec()).expect("the sample world builds");
        let log = QueryLog::default();
        (ZoneSwitch::new(&world, log.clone()), log)
    }

    #[tokio::test]
    async fn a_query_is_answered_and_logged_without_sockets() {
        let (switch, log) = switch();
        let mut q = Message::query();
        q.metadata.id = 4242;
        q.add_query(Query::query(
            Name::from_ascii("mx1.example.test.").unwrap(),
            RecordType::A,
        ));
        let bytes = switch
            .answer_bytes(&q.to_vec().unwrap(), false)
            .await
            .expect("an answer");
        let r = Message::from_vec(&bytes).expect("the answer decodes");
        assert_eq!(r.metadata.id, 4242);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(!r.answers.is_empty());
        assert_eq!(log.entries().len(), 1);
    }

    #[tokio::test]
    async fn garbage_gets_no_answer_and_no_panic() {
        let (switch, _) = switch();
        for junk in [&b""[..], b"\x00", &[0xff; 12], &[0u8; 600]] {
            let _ = switch.answer_bytes(junk, false).await;
            let _ = switch.answer_bytes(junk, true).await;
        }
        // A header that claims 65535 questions and carries none.
        let header = [0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0];
        assert!(switch.answer_bytes(&header, false).await.is_none());
    }

    /// The input `ci/fuzz` found (dns_request, crash-07be1b91...): the properties the fuzz
    /// target asserts, on the sample world, over both transports.
    #[tokio::test]
    async fn the_fuzzers_crash_input_is_answered_well() {
        // The fuzz target's world: signed zones and a DNAME.
        let text = include_str!("../../../scenarios/dns-names/dname-mail-hosts.toml");
        let scenario = crate::scenario::load_str(std::path::Path::new("seed.toml"), text).expect("loads");
        let prepared = crate::world::build::prepare(&scenario, &crate::pki::KeyStore::embedded()).expect("builds");
        let switch = ZoneSwitch::new(&prepared.dns, QueryLog::default());
        // The fuzz input's first octet picks the transport; the request is the rest: a DNAME
        // query for `test.` followed by a compression pointer to offset 0, whose octets read
        // as binary labels (`test.\\008.\\000.`).
        let request = [
            1u8, 8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 116, 101, 115, 116, 192, 0, 0, 39, 0, 1,
        ];
        for tcp in [true, false] {
            let Some(bytes) = switch.answer_bytes(&request, tcp).await else {
                continue;
            };
            let response = Message::from_vec(&bytes).expect("the handler's answer decodes");
            let query = Message::from_vec(&request).expect("a request the handler answered decodes");
            assert_eq!(response.metadata.id, query.metadata.id);
            assert_eq!(response.metadata.message_type, MessageType::Response);
            // A name outside the world: answered as the catalog answers one, not SERVFAIL.
            assert_eq!(response.metadata.response_code, ResponseCode::Refused, "{response:?}");
            assert_eq!(response.queries, query.queries);
        }
    }
}
