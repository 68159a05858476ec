//! Exim's main log, read back into an [`Attempt`]. Markers (Exim spec, "Log files"):
//! `<=` arrival, `=>` delivery, `==` deferral, `**` bounce. A delivery line carries
//! `H=host [DS] [addr]:port`, `X=<cipher>` when STARTTLS was used and `CV=dane|yes|no`
//! (log_selector +tls_certificate_verified): `dane` means authenticated by TLSA.

use crate::sender::external::{Attempt, Terminal, TlsClaim};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One line without its time stamp and pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The Exim message id, when the line is about a message.
    pub id: Option<String>,
    pub text: String,
}

/// `2026-11-23 12:56:02.240 [16799] 1xVTaU-0004Mx-0l <= ...` → (id, `<= ...`).
pub fn parse_line(line: &str) -> Option<LogLine> {
    let mut parts = line.splitn(4, ' ');
    let (_date, _time, pid) = (parts.next()?, parts.next()?, parts.next()?);
    if !(pid.starts_with('[') && pid.ends_with(']')) {
        return None;
    }
    let rest = parts.next()?;
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    if is_message_id(first) {
        Some(LogLine {
            id: Some(first.to_string()),
            text: after.to_string(),
        })
    } else {
        Some(LogLine {
            id: None,
            text: rest.to_string(),
        })
    }
}

/// Exim 4.96 ids look like `1xVTaU-0004Mx-0l` (6-6-2 base-62 parts; older: 6-6-2 as well).
fn is_message_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 6
        && parts[1].len() >= 6
        && parts[2].len() == 2
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The id Exim gave the message submitted from `from` to `to` (`<= from ... for to`).
pub fn message_id(lines: &[LogLine], from: &str, to: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let rest = l.text.strip_prefix("<= ")?;
        (rest.starts_with(&format!("{from} ")) && rest.ends_with(&format!("for {to}")))
            .then(|| l.id.clone())
            .flatten()
    })
}

/// Builds the attempt from the lines of message `id`, up to its first terminal line for `to`.
pub fn attempt(lines: &[LogLine], id: &str, to: &str) -> Option<Attempt> {
    let ours: Vec<&LogLine> = lines.iter().filter(|l| l.id.as_deref() == Some(id)).collect();
    let end = ours.iter().position(|l| {
        ["=> ", "== ", "** "]
            .iter()
            .any(|m| l.text.starts_with(&format!("{m}{to}")))
    })?;
    // A deferral past the retry rules' cutoff is followed, in the same delivery, by the
    // bounce of the address ("** to: retry timeout exceeded"): that is the outcome.
    let end = match ours[end].text.starts_with("== ") {
        true => ours[end + 1..]
            .iter()
            .position(|l| l.text.starts_with(&format!("** {to}")))
            .map_or(end, |later| end + 1 + later),
        false => end,
    };
    let line = &ours[end].text;
    let terminal = match &line[..2] {
        "=>" => Terminal::Sent,
        "**" => Terminal::Bounced,
        _ => Terminal::Deferred,
    };
    let relay = host_field(line);
    let mut tls = BTreeMap::new();
    if let (Terminal::Sent, Some((_, addr))) = (&terminal, &relay)
        && line.contains(" X=")
    {
        let claim = match field(line, "CV") {
            Some("dane") => TlsClaim::Verified,
            Some("yes") => TlsClaim::Trusted,
            _ => TlsClaim::Untrusted,
        };
        tls.insert(*addr, claim);
    }
    let text = match terminal {
        Terminal::Sent => field_quoted(line, "C").unwrap_or_else(|| "delivered".into()),
        _ => line
            .split_once(": ")
            .map(|(_, r)| strip_times(r).trim().to_string())
            .unwrap_or_else(|| strip_times(line)),
    };
    let dsn = match terminal {
        Terminal::Sent => Some("2.0.0".to_string()),
        _ => None,
    };
    let mut reasons = BTreeMap::new();
    let mut log = Vec::new();
    for l in &ours[..=end] {
        if l.text.starts_with("<= ") || l.text.contains("lost privilege") {
            continue;
        }
        let norm = strip_times(&l.text);
        if let Some((_, addr)) = host_field(&l.text) {
            reasons.insert(addr, norm.clone());
        }
        log.push(norm);
    }
    Some(Attempt {
        terminal,
        dsn,
        text,
        relay,
        tls,
        reasons,
        log,
    })
}

/// `H=mx1.example.test DS [192.0.2.10]:25` → (`mx1.example.test`, 192.0.2.10).
fn host_field(line: &str) -> Option<(String, IpAddr)> {
    let at = line.find("H=")?;
    let rest = &line[at + 2..];
    let host = rest.split(' ').next()?.to_string();
    let open = rest.find('[')?;
    let addr = rest[open + 1..].split(']').next()?.parse().ok()?;
    Some((host, addr))
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=");
    let at = line.find(&key)?;
    line[at + key.len()..].split(' ').next()
}

fn field_quoted(line: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = line.find(&key)?;
    Some(line[at + key.len()..].split('"').next()?.to_string())
}

/// Drops what differs between runs: queue and delivery times, sizes.
fn strip_times(text: &str) -> String {
    text.split(' ')
        .filter(|t| !(t.starts_with("QT=") || t.starts_with("DT=") || t.starts_with("S=")))
        .map(|t| t.trim_end_matches(':'))
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(t: &str) -> Vec<LogLine> {
        t.lines().filter_map(parse_line).collect()
    }

    #[test]
    fn a_dane_verified_delivery() {
        let l = lines(
            "2026-11-23 12:56:02.240 [16799] 1xVTaU-0004Mx-0l <= sender@client.test U=root P=local S=302 for user@example.test\n\
             2026-11-23 12:56:02.389 [16800] 1xVTaU-0004Mx-0l => user@example.test P=<sender@client.test> R=dnslookup T=remote_smtp S=316 H=mx1.example.test DS [192.0.2.10]:25 X=TLS1.3:AES_256_GCM:256 CV=dane DN=\"CN=mx1\" C=\"250 2.0.0 queued as 1\" QT=0.149s DT=0.095s\n\
             2026-11-23 12:56:02.389 [16800] 1xVTaU-0004Mx-0l Completed\n",
        );
        let id = message_id(&l, "sender@client.test", "user@example.test").unwrap();
        let a = attempt(&l, &id, "user@example.test").unwrap();
        let addr: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(a.terminal, Terminal::Sent);
        assert_eq!(a.relay, Some(("mx1.example.test".into(), addr)));
        assert_eq!(a.tls.get(&addr), Some(&TlsClaim::Verified));
        assert_eq!(a.text, "250 2.0.0 queued as 1");
        assert!(!a.log[0].contains("QT=") && !a.log[0].contains("S=316"), "{:?}", a.log);
    }

    /// Exim on the world clock: a retry past the retry rules' cutoff defers the host, then
    /// bounces the address in the same run; the attempt is the bounce.
    #[test]
    fn a_deferral_past_the_cutoff_is_a_bounce() {
        let l = lines(
            "2026-06-05 01:15:04.071 [424] 1wTq4W-00006d-00 DANE attempt failed; TLS connection to mail.example.test [192.0.2.10]: (certificate verification failed): Verification failed. The certificate differs.\n\
             2026-06-05 01:15:04.075 [423] 1wTq4W-00006d-00 == user@example.test R=dnslookup T=remote_smtp defer (-37) H=mail.example.test DS [192.0.2.10]:25 DT=0.040s: TLS session: (certificate verification failed): Verification failed. The certificate differs.\n\
             2026-06-05 01:15:04.079 [423] 1wTq4W-00006d-00 ** user@example.test: retry timeout exceeded\n",
        );
        let a = attempt(&l, "1wTq4W-00006d-00", "user@example.test").unwrap();
        assert_eq!(a.terminal, Terminal::Bounced);
        assert_eq!(a.text, "retry timeout exceeded");
        let addr: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(a.reasons[&addr].contains("The certificate differs"), "{:?}", a.reasons);
        assert_eq!(a.log.len(), 3);
        // Without the bounce line, the same run is a deferral.
        let deferred = attempt(&l[..2], "1wTq4W-00006d-00", "user@example.test").unwrap();
        assert_eq!(deferred.terminal, Terminal::Deferred);
    }

    #[test]
    fn a_deferral_after_a_dane_failure() {
        let l = lines(
            "2026-11-23 12:56:02.240 [1] 1xVTaU-0004N6-1I <= sender@client.test U=root P=local S=302 for user@example.test\n\
             2026-11-23 12:56:02.423 [2] 1xVTaU-0004N6-1I DANE attempt failed; TLS connection to mx1.example.test [192.0.2.10]: (certificate verification failed): Verification failed. The certificate differs.\n\
             2026-11-23 12:56:02.425 [3] 1xVTaU-0004N6-1I == user@example.test R=dnslookup T=remote_smtp defer (-37) H=mx1.example.test DS [192.0.2.10]:25 DT=0.009s: TLS session: (certificate verification failed): Verification failed. The certificate differs.\n",
        );
        let a = attempt(&l, "1xVTaU-0004N6-1I", "user@example.test").unwrap();
        assert_eq!(a.terminal, Terminal::Deferred);
        assert!(a.tls.is_empty());
        assert!(a.text.starts_with("TLS session"), "{}", a.text);
        assert_eq!(a.log.len(), 2);
    }

    #[test]
    fn unrelated_lines_are_not_an_attempt() {
        assert!(parse_line("not a log line").is_none());
        let l = lines(
            "2026-11-23 12:56:02.240 [1] 1xVTaU-0004N6-1I <= sender@client.test U=root P=local S=302 for user@example.test\n",
        );
        assert!(attempt(&l, "1xVTaU-0004N6-1I", "user@example.test").is_none());
    }
}
