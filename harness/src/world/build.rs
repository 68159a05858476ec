//! Build and run one world. In process (the default) everything binds 127.0.0.1 on
//! ephemeral ports and the sender reaches endpoints only through the `Dialer`'s address
//! map. In a namespace the harness made (see `namespace`), endpoints bind the world's own
//! addresses on port 25 and the authoritative server binds the glue address on port 53,
//! so that unmodified MTAs and a real resolver can reach them.

use super::published::Published;
use super::{Dialer, WorldError};
use crate::dns::{self, QueryLog, SignedWorld, WorldDnsSpec, ZoneSpec};
use crate::pki::{KeyStore, Pki};
use crate::scenario::{AttackerDecl, EndpointDecl, Scenario};
use crate::smtp::{self, AttackerLog, EndpointConfig, Limits, TlsChain, TranscriptLog};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// RRSIG inception, fixed so signed data is byte-stable: 2025-01-01T00:00:00Z.
/// Validators judge signatures by their own clock, so the window spans the years the
/// harness is used in (RFC 4035 §5.3.1).
pub const SIGNATURE_INCEPTION: u32 = 1_735_689_600;
/// RRSIG expiration, fixed: 2035-01-01T00:00:00Z.
pub const SIGNATURE_EXPIRATION: u32 = 2_051_222_400;

pub struct World {
    pub scenario: String,
    /// The next-hop domain of the scenario's message (RFC 7672 §2.2.1): where the witness's routes start.
    pub next_hop: String,
    /// The sender's relay when the scenario routes around MX (`[route] relay`).
    pub relay: Option<crate::scenario::Relay>,
    pub pki: Pki,
    pub dns: Arc<SignedWorld>,
    pub dns_addr: SocketAddr,
    pub queries: QueryLog,
    pub endpoints: Vec<RunningEndpoint>,
    pub dialer: Dialer,
    /// Every record the world publishes, as the harness knows it.
    pub published: Published,
    placement: Placement,
    /// The authoritative server's zones, replaced by [`World::republish`].
    zones: dns::ZoneSwitch,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

pub struct RunningEndpoint {
    pub decl: EndpointDecl,
    /// The endpoint's live configuration (timeline steps replace its chain).
    pub handle: smtp::EndpointHandle,
    pub transcripts: TranscriptLog,
    pub attacker: Option<AttackerLog>,
    /// Loopback ports in use, for the redaction table.
    pub ports: Vec<u16>,
}

/// A world signed and issued but not yet bound to any socket.
pub struct Prepared {
    pub pki: Pki,
    pub dns: SignedWorld,
    pub published: Published,
}

/// Where a world's sockets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// 127.0.0.1, ephemeral ports, reached through the dialer (no privileges).
    Loopback,
    /// Inside a private network namespace: real addresses, port 25 and port 53.
    Namespace,
}

/// The authoritative server's address in namespace mode, and the glue address of every
/// zone's name server, so that a resolver following referrals comes back to it. Not
/// 127.0.0.1, which the resolver under the MTA uses.
pub const NAMESPACE_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Issue the certificates, compute the TLSA data and sign the zones. Pure: no sockets.
pub fn prepare(s: &Scenario, keys: &KeyStore) -> Result<Prepared, WorldError> {
    prepare_for(s, keys, Placement::Loopback)
}

/// As [`prepare`], with the name-server glue address of the placement.
pub fn prepare_for(s: &Scenario, keys: &KeyStore, placement: Placement) -> Result<Prepared, WorldError> {
    let pki = Pki::issue(&s.certs, keys).map_err(|source| WorldError::Pki {
        scenario: s.id.clone(),
        source,
    })?;
    let (dns, published) = sign(s, keys, placement, &pki)?;
    Ok(Prepared { pki, dns, published })
}

/// The signed zones of `s` with TLSA data computed from `pki`, and what they publish.
fn sign(
    s: &Scenario,
    keys: &KeyStore,
    placement: Placement,
    pki: &Pki,
) -> Result<(SignedWorld, Published), WorldError> {
    let der_of = |name: &str| pki.get(name).map(|c| c.der.clone());
    let mut zones = Vec::new();
    let mut published = Published::default();
    for z in &s.zones {
        // A zone is secure only when signed and reached through a matching, supported DS.
        published.add_zone(&z.origin, z.signed && z.ds == crate::dns::DsMode::Secure);
    }
    for z in &s.zones {
        let mut records = Vec::new();
        for r in &z.records {
            let line = r.render(der_of).map_err(|message| WorldError::Record {
                scenario: s.id.clone(),
                origin: z.origin.clone(),
                record: r.template.clone(),
                message,
            })?;
            published.add_line(&line, &z.origin);
            records.push(line);
        }
        zones.push(ZoneSpec {
            origin: z.origin.clone(),
            signed: z.signed,
            key_pkcs8: keys.ed25519_pkcs8(&format!("zone:{}", z.origin)),
            default_ttl: z.ttl,
            records,
            parsed: z.records.iter().map(|r| r.parsed.clone()).collect(),
            ds: z.ds,
            denial: z.denial,
            windows: z.signatures.clone(),
        });
    }
    let spec = WorldDnsSpec {
        zones,
        inception: SIGNATURE_INCEPTION,
        expiration: SIGNATURE_EXPIRATION,
        nameserver: match placement {
            Placement::Loopback => Ipv4Addr::LOCALHOST,
            Placement::Namespace => NAMESPACE_DNS,
        },
        faults: s.faults.clone(),
        rogue_key_pkcs8: keys.ed25519_pkcs8("rogue"),
    };
    let dns = SignedWorld::build(&spec).map_err(|source| WorldError::Dns {
        scenario: s.id.clone(),
        source,
    })?;
    Ok((dns, published))
}

impl World {
    pub async fn start(s: &Scenario, keys: &KeyStore) -> Result<World, WorldError> {
        World::start_in(s, keys, Placement::Loopback).await
    }

    pub async fn start_in(s: &Scenario, keys: &KeyStore, placement: Placement) -> Result<World, WorldError> {
        let Prepared { pki, dns, published } = prepare_for(s, keys, placement)?;
        let signed = Arc::new(dns);

        let (shutdown, rx) = watch::channel(false);
        let stop = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        };
        let mut tasks = Vec::new();

        let (udp, tcp) = match placement {
            Placement::Loopback => bind_dns_pair().await?,
            Placement::Namespace => {
                let at = SocketAddr::from((NAMESPACE_DNS, 53));
                let udp = UdpSocket::bind(at).await.map_err(|e| WorldError::BindAt(at, e))?;
                let tcp = TcpListener::bind(at).await.map_err(|e| WorldError::BindAt(at, e))?;
                (udp, tcp)
            }
        };
        let dns_addr = udp.local_addr().map_err(WorldError::Bind)?;
        let queries = QueryLog::default();
        let zones = dns::ZoneSwitch::new(&signed, queries.clone());
        {
            let (z, st) = (zones.clone(), stop());
            tasks.push(tokio::spawn(async move {
                // A serve error after binding ends the DNS task; lookups then time out and the
                // sender reports it, which is visible in the outcome.
                let _ = dns::serve_switch(z, udp, tcp, st).await;
            }));
        }

        let mut map = BTreeMap::new();
        let mut endpoints = Vec::new();
        for e in &s.endpoints {
            let chain = endpoint_chain(s, &pki, e)?;
            let mut sni_chains = Vec::new();
            for (name, names) in &e.sni_chains {
                if let Some(c) = chain_of(s, &pki, e, names)? {
                    sni_chains.push((name.clone(), c));
                }
            }
            let config = Arc::new(EndpointConfig {
                name: e.host.trim_end_matches('.').to_string(),
                behaviour: e.behaviour,
                chain,
                limits: Limits::default(),
                script: e.script.clone(),
                sessions: e.sessions.clone(),
                sni_chains,
            });
            let handle = smtp::EndpointHandle::from(config);
            let public = SocketAddr::new(e.address, e.port);
            let attack = match &e.attacker {
                None => None,
                Some(AttackerDecl::StripStarttls) => Some(smtp::Attack::StripStarttls),
                Some(AttackerDecl::Inject { at, reply }) => Some(smtp::Attack::Inject {
                    at: *at,
                    reply: reply.clone(),
                }),
                Some(AttackerDecl::Intercept { chain: names }) => {
                    let chain = chain_of(s, &pki, e, names)?.ok_or_else(|| WorldError::Endpoint {
                        scenario: s.id.clone(),
                        address: e.address.to_string(),
                        message: "the interceptor has no certificate".into(),
                    })?;
                    // A chain rustls refuses is a scenario error, reported before anything runs.
                    smtp::server_tls_config(&chain).map_err(|err| WorldError::Endpoint {
                        scenario: s.id.clone(),
                        address: e.address.to_string(),
                        message: format!("interceptor: {err}"),
                    })?;
                    Some(smtp::Attack::Intercept { chain })
                }
            };
            // In a namespace the endpoint itself answers on the world address, unless an
            // attacker relay sits there in front of it.
            let listener = match placement {
                Placement::Namespace if attack.is_none() => TcpListener::bind(public).await,
                _ => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await,
            }
            .map_err(|err| WorldError::BindAt(public, err))?;
            let local = listener.local_addr().map_err(WorldError::Bind)?;
            let transcripts = TranscriptLog::default();
            {
                let (l, st) = (transcripts.clone(), stop());
                tasks.push(tokio::spawn(smtp::serve(listener, handle.clone(), l, st)));
            }
            let mut ports = Vec::new();
            if local.port() != e.port {
                ports.push(local.port());
            }
            let (front, attacker) = if let Some(attack) = attack {
                let al = match placement {
                    Placement::Namespace => TcpListener::bind(public).await,
                    Placement::Loopback => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await,
                }
                .map_err(|err| WorldError::BindAt(public, err))?;
                let a_addr = al.local_addr().map_err(WorldError::Bind)?;
                if a_addr.port() != e.port {
                    ports.push(a_addr.port());
                }
                let log = AttackerLog::default();
                let (l, st) = (log.clone(), stop());
                tasks.push(tokio::spawn(smtp::serve_attacker(al, local, attack, l, st)));
                (a_addr, Some(log))
            } else {
                (local, None)
            };
            map.insert(public, front);
            endpoints.push(RunningEndpoint {
                decl: e.clone(),
                handle,
                transcripts,
                attacker,
                ports,
            });
        }

        Ok(World {
            scenario: s.id.clone(),
            next_hop: s.message.domain.clone(),
            relay: s.relay.clone(),
            pki,
            dns: signed,
            dns_addr,
            queries,
            endpoints,
            dialer: Dialer::new(map),
            published,
            placement,
            zones,
            shutdown,
            tasks,
        })
    }

    /// Re-signs and serves the zones and faults of `s` (the scenario as a timeline step
    /// left it) from the next query on, and takes over endpoint chains it changed.
    /// Steps never change the certificates, so the issued pki stays.
    pub fn republish(&mut self, s: &Scenario, keys: &KeyStore) -> Result<(), WorldError> {
        let (dns, published) = sign(s, keys, self.placement, &self.pki)?;
        for e in &s.endpoints {
            let changed = self
                .endpoints
                .iter()
                .find(|r| r.decl.address == e.address)
                .is_some_and(|r| r.decl.chain != e.chain);
            if changed {
                self.replace_chain(e.address, &e.chain)?;
                if let Some(r) = self.endpoints.iter_mut().find(|r| r.decl.address == e.address) {
                    r.decl.chain = e.chain.clone();
                }
            }
        }
        self.zones.publish(&dns);
        self.dns = Arc::new(dns);
        self.published = published;
        Ok(())
    }

    /// The chain a transcript's label names ("leaf > issuer > ..."), in DER, leaf first; empty
    /// when a name is not one of the world's certificates.
    pub fn chain_der(&self, label: &str) -> Vec<Vec<u8>> {
        self.chain_der_of(&label.split(" > ").collect::<Vec<_>>())
    }

    /// The chain of these certificates (leaf first) in DER; empty when one is not the world's.
    pub fn chain_der_of(&self, names: &[impl AsRef<str>]) -> Vec<Vec<u8>> {
        let certs: Vec<Vec<u8>> = names
            .iter()
            .filter_map(|n| self.pki.get(n.as_ref()))
            .map(|c| c.der.clone())
            .collect();
        if certs.len() == names.len() { certs } else { Vec::new() }
    }

    /// Serves the chain `names` (leaf first) at the endpoint on `address` from its next
    /// connection on: the timeline's certificate renewal (RFC 7671 §8).
    pub fn replace_chain(&self, address: std::net::IpAddr, names: &[String]) -> Result<(), WorldError> {
        let e = self
            .endpoints
            .iter()
            .find(|e| e.decl.address == address)
            .ok_or_else(|| WorldError::Endpoint {
                scenario: self.scenario.clone(),
                address: address.to_string(),
                message: "no endpoint at this address".into(),
            })?;
        let chain = chain_named(&self.scenario, &self.pki, &e.decl, names)?.ok_or_else(|| WorldError::Endpoint {
            scenario: self.scenario.clone(),
            address: address.to_string(),
            message: "an empty chain cannot replace a certificate".into(),
        })?;
        e.handle.replace_chain(chain).map_err(|err| WorldError::Endpoint {
            scenario: self.scenario.clone(),
            address: address.to_string(),
            message: err.to_string(),
        })
    }

    /// Loopback ports this world uses, so the redaction table can hide them.
    /// Only ephemeral ports: 25 and 53 in namespace mode are part of the world.
    pub fn ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = Some(self.dns_addr.port()).filter(|p| *p != 53).into_iter().collect();
        for e in &self.endpoints {
            v.extend(&e.ports);
        }
        v
    }

    /// Stop every task and wait for them, so nothing outlives the world.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// UDP and TCP on the same loopback port: resolvers use one address for both (RFC 7766 §5).
async fn bind_dns_pair() -> Result<(UdpSocket, TcpListener), WorldError> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(WorldError::Bind)?;
        let port = udp.local_addr().map_err(WorldError::Bind)?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(WorldError::Bind(last.expect("the loop ran at least once")))
}

fn endpoint_chain(s: &Scenario, pki: &Pki, e: &EndpointDecl) -> Result<Option<TlsChain>, WorldError> {
    chain_of(s, pki, e, &e.chain)
}

/// The served chain made of these certificates (leaf first); `None` for an empty list.
fn chain_of(s: &Scenario, pki: &Pki, e: &EndpointDecl, names: &[String]) -> Result<Option<TlsChain>, WorldError> {
    chain_named(&s.id, pki, e, names)
}

fn chain_named(scenario: &str, pki: &Pki, e: &EndpointDecl, names: &[String]) -> Result<Option<TlsChain>, WorldError> {
    let Some(leaf) = names.first() else {
        return Ok(None);
    };
    let mut certs = Vec::new();
    let mut spki = Vec::new();
    for name in names {
        let c = pki.get(name).ok_or_else(|| WorldError::Endpoint {
            scenario: scenario.to_string(),
            address: e.address.to_string(),
            message: format!("certificate `{name}` was not issued"),
        })?;
        certs.push(CertificateDer::from(c.der.clone()));
        spki.push(c.spki_sha256.clone());
    }
    let leaf_cert = pki.get(leaf).expect("the leaf was found in the loop above");
    Ok(Some(TlsChain {
        label: names.join(" > "),
        certs,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_cert.key_pkcs8.clone())),
        spki_sha256: spki,
    }))
}
