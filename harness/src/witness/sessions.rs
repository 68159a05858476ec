//! Scripted connections that never came: a `[[endpoint.session]]` for connection N of an
//! endpoint that saw fewer than N connections tested nothing, so the run cannot pass on it
//! (DESIGN.md: no invariant may hold vacuously). Judged over the whole run, every attempt
//! of a timeline together, since a later attempt may be the one that opens connection N.

use super::observe::Observations;
use crate::outcome::verdict::{Verdict, Violation};
use crate::scenario::Scenario;

/// The scripted connections the endpoints never received, one violation each.
pub fn unreached(s: &Scenario, whole_run: &Observations) -> Vec<Violation> {
    let mut out = Vec::new();
    for e in &s.endpoints {
        let seen = whole_run
            .endpoints
            .iter()
            .filter(|o| o.address == e.address.to_string() && o.port == e.port)
            .map(|o| o.connections.len())
            .sum::<usize>();
        for &n in e.sessions.0.keys() {
            if n as usize > seen {
                out.push(Violation {
                    invariant: format!("SESSION({} connection {n})", e.host),
                    rfc: "RFC 5321 §4.5.4.1".into(),
                    detail: format!(
                        "the scenario scripts connection {n} to {} ({}), which never came: the endpoint saw {seen} \
                         connection(s), so that script tested nothing",
                        e.host, e.address
                    ),
                    deviation: None,
                });
            }
        }
    }
    out
}

/// `verdict` with the unreached scripts added; they are never excused.
pub fn with_unreached(verdict: Verdict, s: &Scenario, whole_run: &Observations) -> Verdict {
    let missing = unreached(s, whole_run);
    if missing.is_empty() {
        return verdict;
    }
    let mut all = match verdict {
        Verdict::Pass => Vec::new(),
        Verdict::Violation(v) | Verdict::Deviation(v) => v,
    };
    all.extend(missing);
    Verdict::Violation(all)
}
