//! One timeline × one sender: attempts in order, with the timeline's steps applied between
//! them when their event happens (DESIGN.md "Timeline": events, not sleeps).
//!
//! An attempt retries the message the previous attempt left queued, or submits a new one.
//! Every attempt is judged on its own, against the world as it stood during that attempt
//! and the connections and queries it caused: the witness invariants (NOCLEAR,
//! DANE-MATCH) hold at every attempt, not only at the end.

use std::time::{Duration, Instant};

use crate::outcome::verdict::{Verdict, Violation, judge_retried};
use crate::outcome::{AttemptRecord, Outcome};
use crate::pki::KeyStore;
use crate::scenario::timeline::{Lint, TimelineClock};
use crate::scenario::{Scenario, Timeline, When};
use crate::sender::SenderReport;
use crate::vocab::ResultCode;
use crate::witness::{Observations, observe};
use crate::world::World;

/// Where the witnesses' records stood before an attempt.
pub(crate) struct Marks {
    connections: Vec<usize>,
    attacker: Vec<usize>,
    queries: usize,
}

impl Marks {
    pub(crate) async fn of(world: &World) -> Marks {
        let obs = observe(world).await;
        Marks {
            connections: obs.endpoints.iter().map(|e| e.connections.len()).collect(),
            attacker: obs.endpoints.iter().map(|e| e.attacker.len()).collect(),
            queries: obs.queries.len(),
        }
    }

    /// What the witnesses recorded after these marks.
    pub(crate) fn since(&self, mut obs: Observations) -> Observations {
        for (i, e) in obs.endpoints.iter_mut().enumerate() {
            let c = self.connections.get(i).copied().unwrap_or(0);
            e.connections.drain(..c.min(e.connections.len()));
            let a = self.attacker.get(i).copied().unwrap_or(0);
            e.attacker.drain(..a.min(e.attacker.len()));
        }
        obs.queries.drain(..self.queries.min(obs.queries.len()));
        obs
    }
}

/// The scenario as attempt `n` of message `m` sees it: the message carries its number, so
/// each message has its own body hash (ONCE and REPORT count per message), and the
/// expectation is the timeline's for this attempt (the file's `[expect]` for the last).
pub(crate) fn attempt_scenario(s: &Scenario, t: &Timeline, n: u32, message: u32) -> Scenario {
    let mut a = s.clone();
    a.message
        .body
        .extend_from_slice(format!("Timeline message {message}.\r\n").as_bytes());
    let expected = t.expect[(n - 1) as usize].clone();
    if n < t.attempts {
        // An earlier attempt is judged on its result and via, plus its `[[timeline.check]]`.
        match t.checks.get((n - 1) as usize).cloned().flatten() {
            Some(check) => a.expect = check,
            None => {
                a.expect.via = None;
                a.expect.hosts.clear();
                a.expect.invariants.clear();
                a.expect.notes.clear();
                a.expect.status = None;
                a.expect.host_status.clear();
                a.expect.presented.clear();
            }
        }
    }
    a.expect.results = expected;
    if let Some(Some(via)) = t.via.get((n - 1) as usize) {
        a.expect.via = Some(via.clone());
    }
    a
}

/// One attempt's record, its verdict prefixed for the combined verdict.
pub(crate) struct Judged {
    pub record: AttemptRecord,
    pub report: SenderReport,
    pub obs: Observations,
}

/// Judges attempt `n` and turns it into its record. `earlier` is what the witnesses saw
/// during the earlier attempts of the same message (ONCE counts every copy of it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge_attempt(
    a: &Scenario,
    world: &World,
    sender: &str,
    n: u32,
    message: u32,
    at: Duration,
    elapsed: Duration,
    report: SenderReport,
    obs: Observations,
    earlier: &[&Observations],
) -> Judged {
    let verdict = judge_retried(a, world, sender, &report, &obs, earlier);
    let record = AttemptRecord {
        attempt: n,
        message,
        at: Some(offset(at)),
        elapsed: elapsed.as_millis() as u64,
        expected: a.expect.results.clone(),
        result: report.result,
        via: report.via.clone(),
        status: report.status.clone(),
        hosts: report.hosts.iter().map(|h| format!("{}: {}", h.host, h.code)).collect(),
        verdict,
        lint: Vec::new(),
        then: Vec::new(),
        report: report.clone(),
        observations: obs.clone(),
    };
    Judged { record, report, obs }
}

/// "T+0s", "T+15m", "T+1h30m", "T+2d": the duration in the form a file's `retry` reads
/// ([`crate::duration::format`]).
pub fn offset(d: Duration) -> String {
    format!("T+{}", crate::duration::format(d))
}

/// The steps `event` triggers, with a line each for the outcome.
pub(crate) fn describe(step: &crate::scenario::timeline::Step) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &step.renew {
        parts.push(format!("{} now serves {}", r.address, r.chain.join(" > ")));
    }
    for e in &step.edits {
        use crate::scenario::timeline::EditKind;
        parts.push(match &e.kind {
            EditKind::Add(r) => format!("add `{}`", r.template),
            EditKind::Replace(r) => format!("replace with `{}`", r.template),
            EditKind::RemoveRrset { owner, rtype } => format!("remove {owner} {rtype}"),
            EditKind::RemoveRecord(l) => format!("remove `{l}`"),
        });
    }
    if step.clear_faults {
        parts.push("clear faults".into());
    }
    for f in &step.faults {
        parts.push(format!("fault {}", f.describe()));
    }
    if step.flush {
        parts.push("flush the resolver cache".into());
    }
    if step.expire {
        parts.push("let cached TTLs run out".into());
    }
    let what = parts.join("; ");
    match &step.note {
        Some(n) => format!("{}: {what} ({n})", step.when),
        None => format!("{}: {what}", step.when),
    }
}

/// The combined verdict: every attempt's violations, each saying which attempt it is from.
pub(crate) fn combined(records: &[AttemptRecord]) -> Verdict {
    let mut violations = Vec::new();
    let mut all_deviations = true;
    for r in records {
        if let Verdict::Violation(vs) | Verdict::Deviation(vs) = &r.verdict {
            all_deviations &= matches!(r.verdict, Verdict::Deviation(_));
            violations.extend(vs.iter().map(|v| Violation {
                detail: format!("attempt {}: {}", r.attempt, v.detail),
                ..v.clone()
            }));
        }
    }
    match (violations.is_empty(), all_deviations) {
        (true, _) => Verdict::Pass,
        (false, true) => Verdict::Deviation(violations),
        (false, false) => Verdict::Violation(violations),
    }
}

/// What the driver of one sender does for a timeline.
#[async_trait::async_trait]
pub(crate) trait Driver: Send {
    /// Attempt `n`: submit `a.message` (new) or retry the queued one; the report, and the
    /// observations of this attempt alone.
    async fn attempt(
        &mut self,
        a: &Scenario,
        world: &World,
        retry: bool,
        at: Duration,
        queued_for: Duration,
    ) -> Result<(SenderReport, Observations), crate::world::LabError>;
    /// Empty the sender's (or its resolver's) DNS cache.
    async fn flush(&mut self, world: &World) -> Result<(), crate::world::LabError>;
    /// Where attempt `n` falls on the sender's retry schedule (`expire` steps may move it
    /// later: [`TimelineClock`]).
    fn scheduled(&self, t: &Timeline, n: u32) -> Duration;
}

/// Runs the timeline with `driver` in `world`. The world must be running; it is left
/// running for the caller to stop.
pub(crate) async fn play(
    s: &Scenario,
    t: &Timeline,
    sender: &str,
    keys: &KeyStore,
    world: &mut World,
    driver: &mut dyn Driver,
) -> Result<Outcome, crate::world::LabError> {
    let mut current = s.clone();
    let started = Instant::now();
    let mut cached_ttl = 0;
    let mut clock = TimelineClock::default();
    apply(
        &mut current,
        t,
        When::Start,
        keys,
        world,
        driver,
        (&mut cached_ttl, &mut clock, Duration::ZERO),
        &mut Vec::new(),
    )
    .await?;
    let mut records: Vec<AttemptRecord> = Vec::new();
    let mut last = None;
    let mut pending: Option<(u32, Duration)> = None;
    let mut next_message = 1;
    let mut delivered_before = false;
    for n in 1..=t.attempts {
        let now = clock.attempt(driver.scheduled(t, n));
        let (message, first_try, retry) = match pending.take() {
            Some((m, first)) => (m, first, true),
            None => {
                next_message += 1;
                (next_message - 1, now, false)
            }
        };
        let a = attempt_scenario(&current, t, n, message);
        let lint = lints(t, world, &a.message.domain);
        let (report, obs) = driver.attempt(&a, world, retry, now, now - first_try).await?;
        // A deferred message is retried as the same message: its earlier attempts' copies
        // count for ONCE (records hold each attempt's observations, in order).
        let earlier: Vec<&Observations> = records
            .iter()
            .filter(|r| r.message == message)
            .map(|r| &r.observations)
            .collect();
        let Judged {
            mut record,
            report,
            obs,
        } = judge_attempt(
            &a,
            world,
            sender,
            n,
            message,
            now,
            started.elapsed(),
            report,
            obs,
            &earlier,
        );
        record.lint = lint;
        if report.result == ResultCode::Defer {
            pending = Some((message, first_try));
        }
        let delivered = matches!(report.result, ResultCode::Auth | ResultCode::Tls | ResultCode::Opp);
        if n < t.attempts {
            let mut events = vec![When::AfterAttempt(n)];
            if delivered && !delivered_before {
                events.push(When::AfterDelivery);
            }
            for event in events {
                apply(
                    &mut current,
                    t,
                    event,
                    keys,
                    world,
                    driver,
                    (&mut cached_ttl, &mut clock, now),
                    &mut record.then,
                )
                .await?;
            }
        }
        delivered_before |= delivered;
        records.push(record);
        last = Some((a, report, obs));
    }
    // No step follows the last attempt, so its scenario is the final one.
    let (final_scenario, report, obs) = last.expect("a timeline has at least one attempt");
    // Over the whole run: a scripted connection may come at any attempt.
    let verdict = crate::witness::sessions::with_unreached(combined(&records), s, &observe(world).await);
    let mut outcome = Outcome::new(&final_scenario, sender, report, obs, verdict);
    // The outcome is the scenario's, not the edited copy's: its id and expectation.
    outcome.expected = s.expect.results.clone();
    outcome.attempts = records;
    Ok(outcome)
}

/// The timeline's lints on the world as it stands: "[ok] ..." / "[warn] ..." lines.
fn lints(t: &Timeline, world: &World, domain: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in &t.lints {
        match l {
            Lint::ExoInbound => {
                let mx = world.published.mx(domain).unwrap_or_default();
                for f in crate::inspect::exo_inbound::mx_prerequisites(&mx) {
                    out.push(format!("exo-inbound [{}] {}", if f.ok { "ok" } else { "warn" }, f.text));
                }
            }
        }
    }
    out
}

/// Applies the steps of `event`, in order, and records what they did. `cached_ttl` is the
/// longest TTL among the RRsets changed since the caches were last emptied: how long a
/// cache may still hold a stale copy; `last` is when the attempt before the event was.
#[allow(clippy::too_many_arguments)]
async fn apply(
    current: &mut Scenario,
    t: &Timeline,
    event: When,
    keys: &KeyStore,
    world: &mut World,
    driver: &mut dyn Driver,
    (cached_ttl, clock, last): (&mut u32, &mut TimelineClock, Duration),
    then: &mut Vec<String>,
) -> Result<(), crate::world::LabError> {
    for step in t.steps_at(event) {
        *cached_ttl = (*cached_ttl).max(step.apply(current));
        world.republish(current, keys)?;
        if step.flush {
            driver.flush(world).await?;
            *cached_ttl = 0;
        }
        if step.expire {
            // A cache may hold the old RRsets for their TTL (RFC 4035 §5.3.3): the world
            // clock moves past it, for every sender and resolver alike; nothing sleeps.
            clock.expire(last, *cached_ttl);
            *cached_ttl = 0;
        }
        then.push(describe(step));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::HostReport;
    use crate::sender::reference::smtp_client::SmtpClient;
    use crate::vocab::HostCode;
    use std::net::SocketAddr;
    use std::path::Path;

    /// A sender that delivers every attempt's message over plain SMTP and then says what
    /// the test tells it to, right or wrong: so that the endpoint really holds the copies.
    struct Scripted {
        says: Vec<ResultCode>,
        attempt: usize,
    }

    #[async_trait::async_trait]
    impl Driver for Scripted {
        async fn attempt(
            &mut self,
            a: &Scenario,
            world: &World,
            _retry: bool,
            _at: Duration,
            _queued_for: Duration,
        ) -> Result<(SenderReport, Observations), crate::world::LabError> {
            let marks = Marks::of(world).await;
            let addr: SocketAddr = "192.0.2.10:25".parse().expect("a socket address");
            let tcp = world
                .dialer
                .dial(addr, Duration::from_secs(5))
                .await
                .expect("mx1 answers");
            let (mut c, _) = SmtpClient::start(tcp, Duration::from_secs(5)).await.expect("greeting");
            c.ehlo("client.test").await.expect("EHLO");
            c.command(&format!("MAIL FROM:<{}>", a.message.from))
                .await
                .expect("MAIL");
            c.command(&format!("RCPT TO:<{}>", a.message.to)).await.expect("RCPT");
            assert_eq!(c.data(&a.message.body).await.expect("DATA").code, 250);
            c.quit().await.expect("QUIT");
            let result = self.says[self.attempt];
            self.attempt += 1;
            let report = SenderReport {
                result,
                via: result.delivered().then(|| "mx1.example.test.".to_string()),
                status: "scripted".into(),
                hosts: vec![HostReport {
                    host: "mx1.example.test.".into(),
                    preference: 10,
                    code: if result.delivered() {
                        HostCode::Opp
                    } else {
                        HostCode::TempFail
                    },
                    address: Some("192.0.2.10".into()),
                    status: None,
                    reason: String::new(),
                    failure: None,
                }],
                notes: Vec::new(),
                reports_notes: false,
                trace: Vec::new(),
            };
            Ok((report, marks.since(observe(world).await)))
        }

        async fn flush(&mut self, _world: &World) -> Result<(), crate::world::LabError> {
            Ok(())
        }

        fn scheduled(&self, t: &Timeline, n: u32) -> Duration {
            t.offset(n)
        }
    }

    /// Plays a two-attempt timeline whose sender says `says`; the combined violations.
    async fn play_saying(says: [ResultCode; 2]) -> Vec<(String, String)> {
        let source = format!(
            r#"
id = "retried"
title = "a retried message"
teaches = "ONCE counts over the attempts of one message"

[[zone]]
origin = "example.test."
records = ["@ MX 10 mx1", "mx1 A 192.0.2.10"]

[[endpoint]]
address = "192.0.2.10"
host = "mx1.example.test"
behaviour = "no-starttls"

[timeline]
attempts = 2
expect = ["{}", "OPP"]

[expect]
result = "OPP"
invariants = ["ONCE"]
"#,
            says[0]
        );
        let s = crate::scenario::load_str(Path::new("retried.toml"), &source).unwrap_or_else(|e| panic!("{e}"));
        let keys = KeyStore::embedded();
        let mut world = World::start(&s, &keys).await.expect("the world starts");
        let mut driver = Scripted {
            says: says.to_vec(),
            attempt: 0,
        };
        let t = s.timeline.clone().expect("a timeline");
        let outcome = play(&s, &t, "scripted", &keys, &mut world, &mut driver).await;
        world.stop().await;
        match outcome.expect("the timeline plays").verdict {
            Verdict::Pass => Vec::new(),
            Verdict::Violation(v) | Verdict::Deviation(v) => v.into_iter().map(|v| (v.invariant, v.detail)).collect(),
        }
    }

    #[tokio::test]
    async fn once_counts_every_attempt_of_a_retried_message() {
        // Attempt 1 delivers but says DEFER, so attempt 2 retries the same message and
        // delivers it again: two copies of message 1.
        let v = play_saying([ResultCode::Defer, ResultCode::Opp]).await;
        assert_eq!(
            v,
            vec![
                (
                    "REPORT".to_string(),
                    "attempt 1: the sender reported DEFER but endpoints accepted the message 1 time(s)".to_string()
                ),
                (
                    "ONCE".to_string(),
                    "attempt 2: the message was accepted 2 time(s) (and 0 other message(s)) over this and 1 \
                     earlier attempt(s) of it"
                        .to_string()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_new_message_is_not_a_copy_of_the_last() {
        // Attempt 1 delivered, so attempt 2 submits message 2: one copy each.
        assert_eq!(play_saying([ResultCode::Opp, ResultCode::Opp]).await, Vec::new());
    }

    #[test]
    fn offsets_read_like_durations() {
        assert_eq!(offset(Duration::ZERO), "T+0s");
        assert_eq!(offset(Duration::from_secs(900)), "T+15m");
        assert_eq!(offset(Duration::from_secs(5400)), "T+1h30m");
        assert_eq!(offset(Duration::from_secs(86400 + 61)), "T+1d1m1s");
        // What follows `T+` is what `retry` reads (issue 14: `1h30m` was printed, not read).
        let printed = offset(Duration::from_secs(5400));
        let back = crate::duration::parse(printed.trim_start_matches("T+"), &crate::duration::RETRY);
        assert_eq!(back, Ok(Duration::from_secs(5400)));
    }
}
