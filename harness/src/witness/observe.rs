//! The impartial witness: what the endpoints, the attacker relays and the DNS server
//! recorded. Verdicts and snapshots are made from this, never from the sender's word alone.

use crate::dns::QueryEntry;
use crate::smtp::Transcript;
use crate::world::World;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Observations {
    pub endpoints: Vec<EndpointObservation>,
    /// Every query the authoritative server saw, in arrival order (not snapshotted as is:
    /// validators may fetch keys in varying order; see `record`).
    #[serde(skip)]
    pub queries: Vec<QueryEntry>,
    /// The next-hop domain's routes in the world as it stood during the attempt
    /// ([`super::route`]): what the checks and a real sender's report judge commitment by.
    #[serde(skip)]
    pub routes: super::Routes,
    /// Addresses whose routes disagree about a TLS commitment: the witness says so instead
    /// of judging them by route.
    #[serde(skip)]
    pub route_disputes: Vec<String>,
    /// What the validating resolver (unbound, namespace mode) logged during the attempt,
    /// without times and pids; empty in process. Evidence for deviations whose cause is the
    /// resolver (`deviation`), not snapshotted.
    #[serde(skip)]
    pub resolver_log: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointObservation {
    pub address: String,
    /// The port it listens on; snapshotted only when it is not SMTP's 25.
    #[serde(skip_serializing_if = "is_smtp_port")]
    pub port: u16,
    pub host: String,
    pub behaviour: String,
    pub connections: Vec<Transcript>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attacker: Vec<String>,
    /// Times a client began TLS with an intercepting attacker instead of this endpoint
    /// (in the attacker's events already; counted here for the witness's host codes).
    #[serde(skip)]
    pub attacker_handshakes: u32,
}

fn is_smtp_port(p: &u16) -> bool {
    *p == 25
}

/// How long to wait for endpoints to finish connections the sender has already left.
const SETTLE: Duration = Duration::from_secs(5);

pub async fn observe(world: &World) -> Observations {
    let mut endpoints = Vec::new();
    for e in &world.endpoints {
        e.transcripts.settle(SETTLE).await;
        if let Some(a) = &e.attacker {
            a.settle(SETTLE).await;
        }
        endpoints.push(EndpointObservation {
            address: e.decl.address.to_string(),
            port: e.decl.port,
            host: e.decl.host.clone(),
            behaviour: e.decl.label(),
            connections: e.transcripts.transcripts(),
            attacker: e.attacker.as_ref().map(|a| a.events()).unwrap_or_default(),
            attacker_handshakes: e.attacker.as_ref().map(|a| a.client_handshakes()).unwrap_or(0),
        });
    }
    let routes = super::Routes::of_world(world);
    Observations {
        endpoints,
        queries: world.queries.entries(),
        route_disputes: routes.disputes(),
        routes,
        resolver_log: Vec::new(),
    }
}
