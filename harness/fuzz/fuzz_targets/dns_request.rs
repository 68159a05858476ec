//! Fuzz the world's DNS request handler (the one `serve` and every run put behind UDP and
//! TCP) with arbitrary request bytes, over both transports.
//!
//! The world is a real scenario's (`scenarios/dns-names/dname-mail-hosts.toml`):
//! signed zones, a DNAME the handler synthesizes CNAMEs for, and TLSA RRsets.
//! Properties: nothing panics; an answer is a DNS response to the request (same ID, QR set)
//! that decodes, and a UDP answer fits 512 octets unless the request carried EDNS
//! (RFC 1035 §4.2.1, RFC 6891 §7).
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use danesim::dns::{QueryLog, ZoneSwitch};
use danesim::pki::KeyStore;
use danesim::scenario::load_str;
use danesim::world::build::prepare;
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

const SCENARIO: &str = include_str!("../../../scenarios/dns-names/dname-mail-hosts.toml");

struct Fixture {
    switch: ZoneSwitch,
    log: QueryLog,
    rt: tokio::runtime::Runtime,
}

static WORLD: LazyLock<Fixture> = LazyLock::new(|| {
    let scenario = load_str(Path::new("seed.toml"), SCENARIO).expect("the seed scenario loads");
    let prepared = prepare(&scenario, &KeyStore::embedded()).expect("the seed world builds");
    let log = QueryLog::default();
    Fixture {
        switch: ZoneSwitch::new(&prepared.dns, log.clone()),
        log,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime"),
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, request)) = data.split_first() else {
        return;
    };
    let tcp = flags & 1 == 1;
    let world = &*WORLD;
    let answer = world.rt.block_on(world.switch.answer_bytes(request, tcp));
    // The log is the witness's evidence; keep it from growing across executions.
    world.log.clear();
    let Some(bytes) = answer else {
        return;
    };
    let response = Message::from_vec(&bytes).expect("the handler's answer decodes");
    let query = Message::from_vec(request).expect("a request the handler answered decodes");
    assert_eq!(response.metadata.id, query.metadata.id);
    assert_eq!(response.metadata.message_type, MessageType::Response);
    if !tcp && query.edns.is_none() {
        assert!(bytes.len() <= 512, "a {}-octet UDP answer without EDNS", bytes.len());
    }
});
