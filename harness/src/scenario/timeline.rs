//! Timelines: several delivery attempts, with the world changed between them by steps that
//! events trigger (DESIGN.md "Timeline": events, never wall-clock guesses).
//!
//! The seeds' story is the hybrid Exchange outage: a certificate renewed with a new key
//! while the TLSA record still pins the old one (RFC 7672 §3.2 fails, the sender defers),
//! then the TLSA fixed and caches flushed or expired, then delivery again. RFC 7671 §8 is
//! the rollover procedure that avoids it. A step edits the checked [`Scenario`] (records,
//! faults, an endpoint's chain); the world re-signs and republishes from the edited
//! scenario, so every step goes through the same checks as the file itself.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use super::model::{RecordDecl, Scenario};
use crate::dns::FaultSpec;
use crate::vocab::ResultCode;

#[derive(Debug, Clone)]
pub struct Timeline {
    /// Delivery attempts, 1-based in reports.
    pub attempts: u32,
    /// Simulated waits before retry 1, 2, ...; the last one repeats: the world clock's
    /// schedule for every sender (real senders are made to retry at these times).
    pub retry: Vec<Duration>,
    /// Whether the file gave `retry`. Without one, a sender with a schedule of its own
    /// (Exchange Online's) follows it instead of the default; with one, the scenario's
    /// expectations may depend on the times, and every sender keeps to them.
    pub retry_given: bool,
    /// Per attempt, the results that pass.
    pub expect: Vec<Vec<ResultCode>>,
    /// Per attempt, the host that must take the message (empty: not checked).
    pub via: Vec<Option<String>>,
    /// Per attempt before the last, what else it must show (`[[timeline.check]]`: hosts,
    /// invariants, notes, status codes, presented certificates); the last has `[expect]`.
    pub checks: Vec<Option<super::model::Expectation>>,
    /// Lints run on the published world before every attempt.
    pub lints: Vec<Lint>,
    pub steps: Vec<Step>,
}

/// A check of the published world that is advice, not a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lint {
    /// Exchange Online's prerequisites for inbound DANE (Enable-SmtpDaneInbound): one MX,
    /// preference 0 or 10, no secondary MX.
    ExoInbound,
}

/// How far past a TTL an `expire` step moves the world clock, and how much more than the
/// schedule's gap a real sender's clock moves between attempts: unbound counts TTLs in whole
/// seconds and keeps an entry through the second it expires in, so one more second, and one
/// for the second to which libfaketime restarts each process's count (the reference
/// sender's cache needs neither).
pub const EXPIRE_MARGIN: Duration = Duration::from_secs(2);

/// The one world clock of a timeline, as offsets from the scenario's `clock`: attempt `n`
/// happens at its place on the retry schedule, later by whatever `expire` steps have added.
/// Nothing sleeps: the reference sender reads it, and the real senders and unbound read it
/// through libfaketime (`world::clock`), so certificates, RRSIG windows and every cache's
/// TTLs move together (RFC 4035 §5.3.3).
#[derive(Debug, Clone, Default)]
pub struct TimelineClock {
    /// What `expire` steps have added to the schedule so far.
    shift: Duration,
    /// The earliest the next attempt may come (an `expire` step's "until").
    not_before: Duration,
}

impl TimelineClock {
    /// The time of attempt `n`, given its place on the sender's schedule.
    pub fn attempt(&mut self, scheduled: Duration) -> Duration {
        let at = (scheduled + self.shift).max(self.not_before);
        self.shift = at - scheduled;
        at
    }

    /// An `expire` step after the attempt at `last`: whatever a cache fetched then (or
    /// before) for `ttl` seconds is gone by the next attempt.
    pub fn expire(&mut self, last: Duration, ttl: u32) {
        self.not_before = self
            .not_before
            .max(last + Duration::from_secs(ttl.into()) + EXPIRE_MARGIN);
    }
}

impl Timeline {
    /// The simulated time of attempt `n` (1-based) after the first one.
    pub fn offset(&self, n: u32) -> Duration {
        offset_on(&self.retry, n)
    }

    /// Every order the runner may apply the steps in: the events come in a fixed order
    /// (start, after attempt 1, 2, ...), except `after delivery`, which follows whichever
    /// attempt delivers first, or never comes.
    pub fn step_orders(&self) -> Vec<Vec<&Step>> {
        let deliveries: Vec<Option<u32>> = if self.steps.iter().any(|s| s.when == When::AfterDelivery) {
            std::iter::once(None).chain((1..self.attempts).map(Some)).collect()
        } else {
            vec![None]
        };
        deliveries
            .into_iter()
            .map(|delivered| {
                let mut events = vec![When::Start];
                for n in 1..self.attempts {
                    events.push(When::AfterAttempt(n));
                    if delivered == Some(n) {
                        events.push(When::AfterDelivery);
                    }
                }
                events.into_iter().flat_map(|e| self.steps_at(e)).collect()
            })
            .collect()
    }

    /// The steps an event triggers, in declaration order.
    pub fn steps_at(&self, event: When) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.when == event)
    }
}

/// The time of attempt `n` (1-based) after the first on a retry schedule whose last wait
/// repeats.
pub fn offset_on(schedule: &[Duration], n: u32) -> Duration {
    (1..n as usize)
        .map(|i| {
            schedule
                .get(i - 1)
                .or(schedule.last())
                .copied()
                .unwrap_or(Duration::ZERO)
        })
        .sum()
}

/// What triggers a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before the first attempt (after the world is up).
    Start,
    /// Right after attempt N ended.
    AfterAttempt(u32),
    /// After the first attempt that delivered.
    AfterDelivery,
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            When::Start => f.write_str("start"),
            When::AfterAttempt(n) => write!(f, "after attempt {n}"),
            When::AfterDelivery => f.write_str("after delivery"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub when: When,
    pub note: Option<String>,
    pub renew: Option<Renew>,
    pub edits: Vec<ZoneEdit>,
    pub faults: Vec<FaultSpec>,
    pub clear_faults: bool,
    pub flush: bool,
    pub expire: bool,
    /// Where the step sits in the file.
    pub span: Range<usize>,
}

/// A new chain for the endpoint at `address`, leaf first.
#[derive(Debug, Clone)]
pub struct Renew {
    pub address: IpAddr,
    pub chain: Vec<String>,
}

/// One edit of one zone's records.
#[derive(Debug, Clone)]
pub struct ZoneEdit {
    /// Index into `Scenario::zones`.
    pub zone: usize,
    pub kind: EditKind,
}

#[derive(Debug, Clone)]
pub enum EditKind {
    Add(RecordDecl),
    /// Every record of this owner (relative, lowercase) and type.
    RemoveRrset {
        owner: String,
        rtype: String,
    },
    /// Records whose text is this line (whitespace-normalized).
    RemoveRecord(String),
    /// Replace the RRset of the line's owner and type: the first line of a group removes
    /// the RRset, each line is then added.
    Replace(RecordDecl),
}

impl EditKind {
    /// Whether this removal takes out the record written as `template`; additions remove
    /// nothing.
    pub fn removes(&self, template: &str) -> bool {
        match self {
            EditKind::RemoveRrset { owner, rtype } => {
                record_key(template).is_some_and(|(o, t)| &o == owner && &t == rtype)
            }
            EditKind::RemoveRecord(line) => normalize(template) == *line,
            EditKind::Add(_) | EditKind::Replace(_) => false,
        }
    }
}

impl Step {
    /// Applies the record and fault edits to `s`; returns the longest TTL among the RRsets
    /// it changed (what a cache may still hold), for `expire`.
    pub fn apply(&self, s: &mut Scenario) -> u32 {
        self.apply_noting(s).map_or(0, |(ttl, _)| ttl)
    }

    /// [`Step::apply`], with the record that has the longest TTL (for the loader's errors).
    pub fn apply_noting(&self, s: &mut Scenario) -> Option<(u32, RecordDecl)> {
        let mut longest: Option<(u32, RecordDecl)> = None;
        let mut replaced: Vec<(usize, String, String)> = Vec::new();
        for e in &self.edits {
            let zone = &mut s.zones[e.zone];
            let default_ttl = zone.ttl;
            let mut touch = |records: &[RecordDecl]| {
                for r in records {
                    let ttl = record_ttl(&r.template).unwrap_or(default_ttl);
                    if longest.as_ref().is_none_or(|(l, _)| ttl > *l) {
                        longest = Some((ttl, r.clone()));
                    }
                }
            };
            // Takes the records `gone` says out of the zone, noting their TTLs.
            let mut remove = |gone: &dyn Fn(&RecordDecl) -> bool| {
                let (removed, kept): (Vec<_>, Vec<_>) = zone.records.drain(..).partition(|r| gone(r));
                zone.records = kept;
                removed
            };
            match &e.kind {
                EditKind::Add(r) => {
                    touch(std::slice::from_ref(r));
                    zone.records.push(r.clone());
                }
                EditKind::RemoveRrset { .. } | EditKind::RemoveRecord(_) => {
                    let removed = remove(&|r| e.kind.removes(&r.template));
                    touch(&removed);
                }
                EditKind::Replace(r) => {
                    if let Some((owner, rtype)) = record_key(&r.template) {
                        let key = (e.zone, owner.clone(), rtype.clone());
                        if !replaced.contains(&key) {
                            let rrset = EditKind::RemoveRrset { owner, rtype };
                            let removed = remove(&|x| rrset.removes(&x.template));
                            touch(&removed);
                            replaced.push(key);
                        }
                    }
                    touch(std::slice::from_ref(r));
                    zone.records.push(r.clone());
                }
            }
        }
        if self.clear_faults {
            s.faults.clear();
        }
        s.faults.extend(self.faults.iter().cloned());
        if let Some(r) = &self.renew
            && let Some(e) = s.endpoints.iter_mut().find(|e| e.address == r.address)
        {
            e.chain = r.chain.clone();
        }
        longest
    }
}

/// Whitespace collapsed, owner and type compared case-insensitively by lowercasing all but
/// the data: enough to name a record the way the file wrote it.
pub fn normalize(line: &str) -> String {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// The owner (relative, lowercase) and type of a record line: `owner [ttl] [IN] TYPE data`.
pub fn record_key(line: &str) -> Option<(String, String)> {
    let mut tokens = line.split_whitespace();
    let owner = tokens.next()?.to_ascii_lowercase();
    for t in tokens {
        if t.eq_ignore_ascii_case("IN") || record_ttl_token(t).is_some() {
            continue;
        }
        return Some((owner, t.to_ascii_uppercase()));
    }
    None
}

/// The explicit TTL of a record line, if it has one.
pub fn record_ttl(line: &str) -> Option<u32> {
    let mut tokens = line.split_whitespace();
    tokens.next()?;
    for t in tokens {
        if t.eq_ignore_ascii_case("IN") {
            continue;
        }
        return record_ttl_token(t);
    }
    None
}

/// A TTL token: seconds, or RFC 1035 extensions like `1h` as BIND writes them.
fn record_ttl_token(t: &str) -> Option<u32> {
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit())?);
    let n: u32 = num.parse().ok()?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 604800,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ttls_and_offsets() {
        assert_eq!(
            record_key("_25._tcp.Mail  TLSA 3 1 1 {cert:x}"),
            Some(("_25._tcp.mail".into(), "TLSA".into()))
        );
        assert_eq!(record_key("@ 60 IN MX 10 mx1"), Some(("@".into(), "MX".into())));
        assert_eq!(record_key("@ 1h MX 10 mx1"), Some(("@".into(), "MX".into())));
        assert_eq!(record_ttl("@ 1h MX 10 mx1"), Some(3600));
        assert_eq!(record_ttl("@ MX 10 mx1"), None);
        assert_eq!(normalize("@   MX  10 MX1"), "@ mx 10 mx1");
        let rrset = EditKind::RemoveRrset {
            owner: "@".into(),
            rtype: "MX".into(),
        };
        assert!(rrset.removes("@ 60 MX 30 legacy") && !rrset.removes("mx1 A 192.0.2.10"));
        let one = EditKind::RemoveRecord(normalize("@ MX 30 legacy"));
        assert!(one.removes("@  mx  30 legacy") && !one.removes("@ MX 20 legacy"));
        let t = Timeline {
            attempts: 4,
            retry: vec![Duration::from_secs(900), Duration::from_secs(3600)],
            retry_given: true,
            expect: Vec::new(),
            via: Vec::new(),
            checks: Vec::new(),
            lints: Vec::new(),
            steps: Vec::new(),
        };
        assert_eq!(t.offset(1), Duration::ZERO);
        assert_eq!(t.offset(2), Duration::from_secs(900));
        assert_eq!(t.offset(4), Duration::from_secs(900 + 3600 + 3600));
    }

    fn step(when: When) -> Step {
        Step {
            when,
            note: None,
            renew: None,
            edits: Vec::new(),
            faults: Vec::new(),
            clear_faults: false,
            flush: false,
            expire: false,
            span: 0..0,
        }
    }

    /// The orders the loader's expire bound plays are the runner's: events in time order,
    /// a step declared later but triggered earlier first, and `after delivery` wherever the
    /// first delivery may come, or nowhere (issue 14: a step after attempt 3 was counted
    /// against an expire after attempt 2).
    #[test]
    fn step_orders_follow_the_events() {
        let declared = [
            When::AfterAttempt(3),
            When::AfterAttempt(2),
            When::AfterDelivery,
            When::Start,
        ];
        let t = Timeline {
            attempts: 4,
            retry: Vec::new(),
            retry_given: true,
            expect: Vec::new(),
            via: Vec::new(),
            checks: Vec::new(),
            lints: Vec::new(),
            steps: declared.into_iter().map(step).collect(),
        };
        let orders: Vec<Vec<String>> = t
            .step_orders()
            .iter()
            .map(|o| o.iter().map(|s| s.when.to_string()).collect())
            .collect();
        let d = "after delivery";
        let (s, a2, a3) = ("start", "after attempt 2", "after attempt 3");
        assert_eq!(
            orders,
            [
                vec![s, a2, a3],
                vec![s, d, a2, a3],
                vec![s, a2, d, a3],
                vec![s, a2, a3, d],
            ]
        );
        // Without an `after delivery` step there is one order.
        let mut t = t;
        t.steps.retain(|s| s.when != When::AfterDelivery);
        assert_eq!(t.step_orders().len(), 1);
    }
}
