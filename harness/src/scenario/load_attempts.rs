//! Loading `[[timeline.check]]`: what an attempt before the last must show besides its result
//! and via (issue 15). Each check is an `[expect]` without `result` and `via`, which come from
//! the timeline's `expect` and `via` for that attempt, and is loaded and checked as `[expect]`
//! is: the same codes, invariants, status patterns and presented-certificate targets.

use toml::Spanned;

use super::error::ScenarioError;
use super::file::{OneOrMany, RawCert, RawExpect, RawTimeline};
use super::load::Loader;
use super::model::Scenario;

impl Loader<'_> {
    /// Fill `s.timeline.checks` (one entry per attempt) from the raw checks.
    pub(super) fn attempt_checks(
        &self,
        raw: Option<&Spanned<RawTimeline>>,
        certs: &[RawCert],
        s: &mut Scenario,
    ) -> Result<(), ScenarioError> {
        let (Some(raw), Some(t)) = (raw, s.timeline.as_ref()) else {
            return Ok(());
        };
        let attempts = t.attempts as usize;
        let mut checks = vec![None; attempts];
        let mut first_at: Vec<Option<usize>> = vec![None; attempts];
        for c in &raw.get_ref().check {
            let check = c.get_ref();
            let n = *check.attempt.get_ref() as usize;
            let at = check.attempt.span();
            if n == 0 || n > attempts {
                return Err(self.err(
                    at,
                    format!("attempt {n}: the timeline has attempts 1 to {attempts}"),
                    "here",
                    None,
                ));
            }
            if n == attempts {
                return Err(self.err(
                    at,
                    format!("attempt {n} is the last: its expectation is `[expect]`"),
                    "here",
                    Some("state these keys in [expect]; checks are for the attempts before the last".into()),
                ));
            }
            if let Some(line) = first_at[n - 1] {
                return Err(self.err(
                    at,
                    format!("attempt {n} is checked twice (first at line {line})"),
                    "here",
                    Some("merge the two checks".into()),
                ));
            }
            first_at[n - 1] = Some(self.line_of(c.span().start));
            // A check that states nothing would pass without looking at anything.
            if check.hosts.is_empty()
                && check.invariants.is_empty()
                && check.notes.is_empty()
                && check.status.is_none()
                && check.host_status.is_empty()
                && check.presented.is_empty()
            {
                return Err(self.err(
                    c.span(),
                    format!("the check of attempt {n} states nothing"),
                    "this check",
                    Some("give hosts, invariants, notes, status, host_status or presented".into()),
                ));
            }
            let results = t.expect[n - 1].iter().map(|r| r.as_str().to_string()).collect();
            // As `[expect]`, with the timeline's result for this attempt (located at the check).
            let expect = RawExpect {
                result: Spanned::new(c.span(), OneOrMany::Many(results)),
                via: None,
                hosts: check.hosts.clone(),
                invariants: check.invariants.clone(),
                notes: check.notes.clone(),
                status: check.status.clone(),
                host_status: check.host_status.clone(),
                presented: check.presented.clone(),
            };
            let mut e = self.expectation(&expect, certs)?;
            self.invariant_targets(&expect.invariants, s)?;
            self.presented_targets(&expect, s)?;
            e.via = t.via.get(n - 1).cloned().flatten();
            checks[n - 1] = Some(e);
        }
        if let Some(t) = s.timeline.as_mut() {
            t.checks = checks;
        }
        Ok(())
    }
}
