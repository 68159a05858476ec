//! Postfix's maillog, read back into an [`Attempt`]. Postfix reports outcomes only in its
//! log, never in an exit code: `status=sent|deferred|bounced` per recipient, and one
//! "<Verified|Trusted|Untrusted|Anonymous> TLS connection established to host[addr]:port"
//! line per TLS session (with `smtp_tls_loglevel = 1`).

use crate::sender::external::{Attempt, Terminal, TlsClaim};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One line of the log, without time stamp and host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// "postfix/smtp", "postfix/qmgr", ...
    pub process: String,
    pub pid: u32,
    pub text: String,
}

/// `Nov 23 12:00:00 host postfix/smtp[123]: text` → (`postfix/smtp`, `text`).
pub fn parse_line(line: &str) -> Option<LogLine> {
    let (head, text) = line.split_once("]: ")?;
    let tag = head.rsplit(' ').next()?;
    let (process, pid) = tag.split_once('[')?;
    Some(LogLine {
        process: process.to_string(),
        pid: pid.parse().ok()?,
        text: text.to_string(),
    })
}

/// The queue id Postfix's pickup gave a message submitted from `from` (`QID: uid=0 from=<...>`).
pub fn queue_id(lines: &[LogLine], from: &str) -> Option<String> {
    let want = format!(" from=<{from}>");
    lines.iter().find_map(|l| {
        if !l.process.ends_with("/pickup") {
            return None;
        }
        let (qid, rest) = l.text.split_once(": ")?;
        (rest.starts_with("uid=") && rest.contains(&want)).then(|| qid.to_string())
    })
}

/// The first terminal status line for `qid` (`QID: to=<...>, ..., status=...`).
pub fn terminal_index(lines: &[LogLine], qid: &str) -> Option<usize> {
    let prefix = format!("{qid}: to=<");
    lines
        .iter()
        .position(|l| l.text.starts_with(&prefix) && l.text.contains(", status="))
}

/// Builds the attempt from the lines up to and including the terminal status of `qid`.
pub fn attempt(lines: &[LogLine], qid: &str) -> Option<Attempt> {
    let end = terminal_index(lines, qid)?;
    let status = &lines[end].text;
    let field = |name: &str| -> Option<String> {
        let key = format!("{name}=");
        status
            .split(", ")
            .find_map(|f| f.strip_prefix(&key))
            .map(|v| v.split(' ').next().unwrap_or(v).to_string())
    };
    let word = field("status")?;
    let text = status
        .split_once(&format!("status={word}"))
        .map(|(_, rest)| rest.trim().trim_start_matches('(').trim_end_matches(')').to_string())
        .unwrap_or_default();
    let terminal = match word.as_str() {
        "sent" => Terminal::Sent,
        "bounced" | "expired" => Terminal::Bounced,
        _ => Terminal::Deferred,
    };
    let relay = field("relay").and_then(|r| host_addr(&r));

    // The delivery's own lines: those of this queue id, and the unnumbered ones ("Verified TLS
    // connection ...") of the processes that handled it. Another message's lines (a bounce of
    // an earlier scenario being discarded) are not this attempt's.
    let prefix = format!("{qid}: ");
    let pids: std::collections::BTreeSet<u32> = lines[..=end]
        .iter()
        .filter(|l| l.text.starts_with(&prefix))
        .map(|l| l.pid)
        .collect();
    let ours = |l: &LogLine| {
        l.text.starts_with(&prefix) || (pids.contains(&l.pid) && !l.text.split(": ").next().is_some_and(is_queue_id))
    };
    let mut tls = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    let mut log = Vec::new();
    for l in lines[..=end].iter().filter(|l| ours(l)) {
        let delivery_agent = ["/smtp", "/error", "/discard", "/lmtp"]
            .iter()
            .any(|p| l.process.ends_with(p));
        if !delivery_agent {
            continue;
        }
        let text = normalize(&l.text, qid);
        for (prefix, claim) in [
            ("Verified TLS connection established to ", TlsClaim::Verified),
            ("Trusted TLS connection established to ", TlsClaim::Trusted),
            ("Untrusted TLS connection established to ", TlsClaim::Untrusted),
            ("Anonymous TLS connection established to ", TlsClaim::Untrusted),
        ] {
            if let Some(rest) = l.text.strip_prefix(prefix)
                && let Some((_, addr)) = host_addr(rest.split(": ").next().unwrap_or(rest))
            {
                let e = tls.entry(addr).or_insert(claim);
                *e = (*e).min(claim);
            }
        }
        if let Some(addr) = bracketed_addr(&l.text) {
            reasons.insert(addr, text.clone());
        }
        log.push(format!("{}: {text}", l.process));
    }
    Some(Attempt {
        terminal,
        dsn: field("dsn"),
        text,
        relay,
        tls,
        reasons,
        log,
    })
}

/// Postfix's short queue ids: upper-case hexadecimal (e.g. `4B1C2C1`).
fn is_queue_id(s: &str) -> bool {
    (6..=16).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
}

/// `mx1.example.test[192.0.2.10]:25` → (`mx1.example.test`, 192.0.2.10).
fn host_addr(s: &str) -> Option<(String, IpAddr)> {
    let (host, rest) = s.split_once('[')?;
    let addr = rest.split(']').next()?.parse().ok()?;
    Some((host.to_string(), addr))
}

fn bracketed_addr(s: &str) -> Option<IpAddr> {
    s.split('[').skip(1).find_map(|p| p.split(']').next()?.parse().ok())
}

/// Removes what differs between runs: the queue id and the delay figures.
fn normalize(text: &str, qid: &str) -> String {
    let t = text.replace(qid, "QUEUEID");
    t.split(", ")
        .filter(|f| !(f.starts_with("delay=") || f.starts_with("delays=") || f.starts_with("conn_use=")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<LogLine> {
        text.lines().filter_map(parse_line).collect()
    }

    const SENT: &str = "\
Nov 23 12:00:00 client postfix/pickup[7]: 4B1C2C1: uid=0 from=<sender@client.test>
Nov 23 12:00:00 client postfix/cleanup[8]: 4B1C2C1: message-id=<1@client.test>
Nov 23 12:00:00 client postfix/qmgr[9]: 4B1C2C1: from=<sender@client.test>, size=300, nrcpt=1 (queue active)
Nov 23 12:00:00 client postfix/smtp[10]: Verified TLS connection established to mx1.example.test[192.0.2.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 23 12:00:00 client postfix/smtp[10]: 4B1C2C1: to=<user@example.test>, relay=mx1.example.test[192.0.2.10]:25, delay=0.1, delays=0.01/0/0.05/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 23 12:00:00 client postfix/qmgr[9]: 4B1C2C1: removed
";

    #[test]
    fn a_verified_delivery() {
        let l = lines(SENT);
        let qid = queue_id(&l, "sender@client.test").unwrap();
        assert_eq!(qid, "4B1C2C1");
        let a = attempt(&l, &qid).unwrap();
        assert_eq!(a.terminal, Terminal::Sent);
        assert_eq!(a.dsn.as_deref(), Some("2.0.0"));
        assert_eq!(a.text, "250 2.0.0 Ok");
        let addr: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(a.relay, Some(("mx1.example.test".into(), addr)));
        assert_eq!(a.tls.get(&addr), Some(&TlsClaim::Verified));
        assert_eq!(
            a.log[1],
            "postfix/smtp: QUEUEID: to=<user@example.test>, relay=mx1.example.test[192.0.2.10]:25, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
        );
        assert_eq!(
            a.log.len(),
            2,
            "pickup, cleanup and qmgr lines are not the delivery's: {:?}",
            a.log
        );
    }

    #[test]
    fn a_deferral_without_relay() {
        let l = lines(
            "Nov 23 12:00:00 client postfix/pickup[7]: AB12: uid=0 from=<s@client.test>\n\
             Nov 23 12:00:00 client postfix/smtp[10]: AB12: to=<u@example.test>, relay=none, delay=0.02, delays=0/0/0.02/0, dsn=4.7.5, status=deferred (Server certificate not verified)\n",
        );
        let a = attempt(&l, &queue_id(&l, "s@client.test").unwrap()).unwrap();
        assert_eq!(a.terminal, Terminal::Deferred);
        assert_eq!(a.status_line(), "4.7.5 Server certificate not verified");
        assert_eq!(a.relay, None);
        assert!(a.tls.is_empty());
    }

    #[test]
    fn another_messages_lines_are_left_out() {
        let text = format!(
            "{SENT}Nov 23 12:00:00 client postfix/discard[11]: 77AA: to=<sender@client.test>, relay=none, status=sent (client.test)\n"
        );
        let mut l = lines(&text);
        // The discard of an earlier bounce lands between our TLS line and our status line.
        let discard = l.pop().unwrap();
        l.insert(4, discard);
        let a = attempt(&l, "4B1C2C1").unwrap();
        assert!(a.log.iter().all(|x| !x.contains("discard")), "{:?}", a.log);
        assert_eq!(a.log.len(), 2);
    }

    #[test]
    fn no_status_yet_means_no_attempt() {
        let l = lines(&SENT.lines().take(4).collect::<Vec<_>>().join("\n"));
        assert!(attempt(&l, "4B1C2C1").is_none());
        assert!(parse_line("garbage").is_none());
    }
}
