//! `danesim serve --namespace SCENARIO`: the world on its own addresses, as real MTAs see
//! it. Inside the private namespace the harness made (root only), the endpoints answer on
//! their world addresses at port 25, the authoritative server on its glue address at port
//! 53, and a real validating unbound is the namespace's resolver (`resolv.conf` is
//! bind-mounted): tools entered into the namespace with `nsenter` look up MX and TLSA
//! records and connect as they would on the Internet (RFC 7672 §2.2 from a real client).
//!
//! The first lines are machine-readable: `namespace PID` (the process to `nsenter`),
//! `resolver ADDR`, `smtp HOST ADDR`, `anchor FILE`, then `ready`.

use super::TeachError;
use super::serve::{Served, watch, write_anchor};
use crate::pki::KeyStore;
use crate::scenario::Scenario;
use crate::world::lab::Lab;
use crate::world::unbound::RESOLVER;
use std::future::Future;
use std::path::Path;

/// Serves `s` in the namespace this process is PID 1 of, until `shutdown` resolves.
/// `host_pid` is this process as the host sees it (the target for `nsenter`).
pub async fn serve_namespace(
    s: &Scenario,
    keys: &KeyStore,
    host_pid: u32,
    workdir: &Path,
    shutdown: impl Future<Output = &'static str>,
) -> Result<Served, TeachError> {
    let mut lab = Lab::open(workdir, std::slice::from_ref(s), keys).await?;
    let world = match lab.start_world(s, keys).await {
        Ok(w) => w,
        Err(e) => {
            lab.close().await;
            return Err(e.into());
        }
    };
    let anchors = workdir.join("serve").join("delv.anchors");
    if let Err(e) = write_anchor(&world, &workdir.join("serve"), &anchors) {
        world.stop().await;
        lab.close().await;
        return Err(e);
    }
    announce(s, host_pid, &anchors, workdir);
    let (signal, served) = watch(&world, shutdown).await;
    world.stop().await;
    // unbound is stopped and waited for; whatever else is left dies with the PID namespace
    // when this process (its PID 1) exits.
    lab.close().await;
    crate::outln!(
        "# {signal}: stopped the world of {} and its resolver after {} DNS queries and {} SMTP connections",
        s.id,
        served.queries,
        served.connections
    );
    Ok(served)
}

fn announce(s: &Scenario, host_pid: u32, anchors: &Path, workdir: &Path) {
    crate::outln!("namespace {host_pid}");
    crate::outln!("resolver {RESOLVER}");
    for e in &s.endpoints {
        crate::outln!("smtp {} {}", e.host.trim_end_matches('.'), e.shown_address());
    }
    crate::outln!("anchor {}", anchors.display());
    crate::outln!("ready");
    let domain = s.message.domain.trim_end_matches('.');
    let enter = format!("nsenter --target {host_pid} --net --mount --");
    crate::outln!("# danesim serve --namespace: {} ({})", s.id, s.title);
    crate::outln!("# The world runs on its own addresses in a private namespace, behind a validating unbound");
    crate::outln!(
        "# ({RESOLVER}, the namespace's resolv.conf), until Ctrl-C (SIGINT) or SIGTERM. Enter it with nsenter:"
    );
    crate::outln!("#   {enter} dig +dnssec MX {domain}          (the ad flag: unbound validated it)");
    crate::outln!("#   {enter} delv -a {} +root=test. MX {domain}", anchors.display());
    for e in &s.endpoints {
        let host = e.host.trim_end_matches('.');
        crate::outln!("#   {enter} dig +dnssec TLSA _25._tcp.{host}");
    }
    crate::outln!(
        "#   {enter} swaks --from {} --to {} --tls          (MX lookup and port 25, as a real client)",
        s.message.from,
        s.message.to
    );
    let pf = format!("MAIL_CONFIG={}", workdir.join("serve").join("postfix").display());
    crate::outln!("#   {enter} env {pf} posttls-finger -c -l dane {domain}   (Postfix's own DANE check)");
    if s.timeline.is_some() {
        crate::outln!(
            "# This scenario is a timeline: serve shows its world before any step; `danesim explain` plays it."
        );
    }
}
