//! How many connections a log is still waiting for, so observers can wait until a
//! record is complete before judging it (endpoint sessions and attacker relays alike).

use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Default)]
pub(crate) struct Activity(watch::Sender<usize>);

impl Activity {
    /// One more connection under way.
    pub(crate) fn begin(&self) {
        self.0.send_modify(|n| *n += 1);
    }

    /// One connection ended (called from drop guards, so it never goes below zero).
    pub(crate) fn end(&self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Wait until no connection is under way (true), or `timeout` passes (false).
    pub(crate) async fn settle(&self, timeout: Duration) -> bool {
        let mut rx = self.0.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_only_when_every_begin_has_ended() {
        let a = Activity::default();
        assert!(a.settle(Duration::from_millis(5)).await);
        a.begin();
        a.begin();
        a.end();
        assert!(!a.settle(Duration::from_millis(20)).await);
        a.end();
        a.end(); // an extra end (a guard dropped twice over) cannot underflow
        assert!(a.settle(Duration::from_millis(5)).await);
    }
}
