//! The `exchange-online` profile: the reference sender's decisions, reported the way
//! Exchange Online documents its outbound DANE (docs/CONFORMANCE.md, "Exchange Online's
//! documented outbound codes").
//!
//! The decisions themselves are RFC 7672's, which Microsoft's documentation follows:
//! usage 0/1 records are unusable (§3.1.3), TLS stays mandatory when every record is
//! unusable (§2.2), and mail is held only when DNSSEC fails or when every MX host has TLSA
//! and none authenticates (§2.2.1: a host without TLSA still takes the message). What
//! differs is the report: a deferral is a 4.7.321-4.7.325 code while Exchange retries (at
//! 15 and 15 minutes, then hourly), and the same code as 5.7.32x in the NDR once the retry
//! window of 24 hours has passed. The status reads like a message-trace line, with the
//! reason, LastAttemptedServerName and LastAttemptedIP.

use std::time::Duration;

use crate::sender::{Failure, SenderReport};
use crate::vocab::ResultCode;

/// Exchange Online's retries: 15 minutes, 15 minutes, then hourly.
pub const RETRY: [Duration; 3] = [
    Duration::from_secs(15 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
];

/// After this long in the queue, a deferral becomes a non-delivery report.
pub const RETRY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The enhanced status code and text for a category (the last digit after 4.7.32 / 5.7.32).
fn code(f: Failure) -> (u8, &'static str) {
    match f {
        Failure::StarttlsNotSupported => (1, "starttls-not-supported"),
        Failure::CertificateExpired => (2, "certificate-expired"),
        Failure::TlsaInvalid => (3, "tlsa-invalid: The domain failed DANE validation"),
        Failure::DnssecInvalid => (4, "dnssec-invalid"),
        Failure::CertificateHostMismatch => (5, "certificate-host-mismatch"),
    }
}

/// Rewrites a reference report as Exchange Online would word it, `queued` after the
/// message was first tried.
pub fn rewrite(report: &mut SenderReport, queued: Duration) {
    if report.result != ResultCode::Defer {
        return;
    }
    // The last host Exchange tried is what the message trace names.
    let Some(last) = report
        .hosts
        .iter()
        .rev()
        .find(|h| h.failure.is_some() || h.address.is_some())
    else {
        return;
    };
    let Some(failure) = last.failure else {
        // Not a DANE or TLS failure (a refused connection, a 4xx reply): the plain status stays.
        return;
    };
    let (n, text) = code(failure);
    let trace = format!(
        "[LastAttemptedServerName={}; LastAttemptedIP={}]",
        last.host.trim_end_matches('.'),
        last.address.as_deref().unwrap_or("none")
    );
    if queued >= RETRY_WINDOW {
        report.result = ResultCode::Bounce;
        report.status = format!("550 5.7.32{n} {text} {trace}");
        report.trace.push(crate::sender::TraceStep {
            step: report.trace.len() as u32 + 1,
            text: format!("exchange-online: still failing after the 24 h retry window: non-delivery report 5.7.32{n}"),
            rfc: None,
            facts: Vec::new(),
        });
    } else {
        report.status = format!("450 4.7.32{n} {text} {trace}");
        report.trace.push(crate::sender::TraceStep {
            step: report.trace.len() as u32 + 1,
            text: format!("exchange-online: deferred as 4.7.32{n}; the message is retried"),
            rfc: None,
            facts: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::HostReport;
    use crate::vocab::HostCode;

    fn deferred(failure: Option<Failure>) -> SenderReport {
        SenderReport {
            result: ResultCode::Defer,
            via: None,
            status: "4.7.5 mail.contoso.test: ...".into(),
            hosts: vec![HostReport {
                host: "mail.contoso.test".into(),
                preference: 0,
                code: HostCode::SkipTls,
                address: Some("192.0.2.10".into()),
                reason: "DANE authentication failed".into(),
                status: None,
                failure,
            }],
            notes: Vec::new(),
            reports_notes: true,
            trace: Vec::new(),
        }
    }

    #[test]
    fn deferrals_read_like_a_message_trace_and_bounce_after_the_window() {
        let mut r = deferred(Some(Failure::TlsaInvalid));
        rewrite(&mut r, Duration::from_secs(15 * 60));
        assert_eq!(
            r.status,
            "450 4.7.323 tlsa-invalid: The domain failed DANE validation \
             [LastAttemptedServerName=mail.contoso.test; LastAttemptedIP=192.0.2.10]"
        );
        assert_eq!(r.result, ResultCode::Defer);
        let mut r = deferred(Some(Failure::DnssecInvalid));
        rewrite(&mut r, RETRY_WINDOW);
        assert_eq!(r.result, ResultCode::Bounce);
        assert!(r.status.starts_with("550 5.7.324 dnssec-invalid"), "{}", r.status);
        let mut r = deferred(None);
        rewrite(&mut r, Duration::ZERO);
        assert_eq!(
            r.status, "4.7.5 mail.contoso.test: ...",
            "other deferrals keep their status"
        );
    }
}
