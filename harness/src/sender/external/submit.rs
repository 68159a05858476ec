//! Submission over SMTP to the sender's own listener inside the namespace (a profile's
//! `submit = "smtp://127.0.0.1:2525"`), for an MTA that takes mail only that way. danesim
//! is the mail client here (RFC 5321 §3: EHLO, MAIL, RCPT, DATA, QUIT, in cleartext, as a
//! local client submits to a relay on the loopback), with the reference sender's SMTP client;
//! the MTA's delivery after that is what the scenario judges.

use crate::sender::reference::smtp_client::{Reply, SmtpClient};
use std::net::SocketAddr;
use std::time::Duration;

/// Parses `smtp://HOST:PORT`; the host must be a loopback address: the listener is the
/// MTA's own, inside the namespace, and danesim dials nothing else.
pub fn parse(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| format!("`submit = \"{url}\"`: write smtp://127.0.0.1:PORT (the MTA's own listener)"))?;
    let addr: SocketAddr = rest.parse().map_err(|_| {
        format!("`submit = \"{url}\"`: an address and a port, e.g. smtp://127.0.0.1:2525 or smtp://[::1]:2525")
    })?;
    if !addr.ip().is_loopback() || addr.port() == 0 {
        return Err(format!(
            "`submit = \"{url}\"`: the MTA's listener is on the loopback inside the namespace (127.0.0.0/8 or ::1), with a port"
        ));
    }
    Ok(addr)
}

/// Submits the message; `Err` says which step the listener refused or what failed.
pub async fn smtp(
    addr: SocketAddr,
    helo: &str,
    from: &str,
    to: &str,
    message: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    // A just (re)started MTA may answer its start command before its listener is up: a
    // refused connection is retried until the timeout (polled, not a guessed sleep).
    let started = std::time::Instant::now();
    let stream = loop {
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => break s,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused && started.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}")),
            Err(_) => return Err(format!("no connection to {addr} within {} s", timeout.as_secs())),
        }
    };
    let (mut client, greeting) = SmtpClient::start(stream, timeout)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let refused = |step: &str, reply: &Reply| format!("{addr} refused {step}: {} {}", reply.code, reply.text());
    if !greeting.is_positive() {
        return Err(refused("the session", &greeting));
    }
    let ehlo = client.ehlo(helo).await.map_err(|e| e.to_string())?;
    if ehlo.reply.code != 250 {
        let helo_reply = client
            .command(&format!("HELO {helo}"))
            .await
            .map_err(|e| e.to_string())?;
        if !helo_reply.is_positive() {
            return Err(refused("HELO", &helo_reply));
        }
    }
    for (step, line) in [
        ("MAIL FROM", format!("MAIL FROM:<{from}>")),
        ("RCPT TO", format!("RCPT TO:<{to}>")),
    ] {
        let reply = client.command(&line).await.map_err(|e| e.to_string())?;
        if !reply.is_positive() {
            return Err(refused(step, &reply));
        }
    }
    let reply = client.data(message).await.map_err(|e| e.to_string())?;
    if !reply.is_positive() {
        return Err(refused("the message", &reply));
    }
    // The message is the MTA's now; a QUIT that goes wrong changes nothing.
    let _ = client.quit().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_listener() {
        assert_eq!(parse("smtp://127.0.0.1:2525").unwrap().port(), 2525);
        assert!(parse("smtp://[::1]:25").is_ok());
        for bad in [
            "smtp://192.0.2.10:25",
            "smtp://127.0.0.1",
            "127.0.0.1:25",
            "smtp://127.0.0.1:0",
            "smtp://mx:25",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    /// No listener at all: refused until the timeout, then an error that says so.
    #[tokio::test]
    async fn a_listener_that_never_comes_is_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let e = smtp(addr, "h", "s@x", "u@x", b"x\n", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("Connection refused") || e.contains("no connection"), "{e}");
    }

    /// A listener that takes the message, and one that refuses the recipient.
    #[tokio::test]
    async fn submits_and_names_a_refusal() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        async fn server(rcpt: &'static str) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let task = tokio::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                let mut seen = Vec::new();
                w.write_all(b"220 mta\r\n").await.unwrap();
                let mut data = false;
                while let Ok(Some(l)) = lines.next_line().await {
                    seen.push(l.clone());
                    let reply: &str = match () {
                        _ if data && l == "." => {
                            data = false;
                            "250 queued\r\n"
                        }
                        _ if data => continue,
                        _ if l.starts_with("EHLO") => "250 mta\r\n",
                        _ if l.starts_with("RCPT") => rcpt,
                        _ if l == "DATA" => {
                            data = true;
                            "354 go\r\n"
                        }
                        _ if l == "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => "250 ok\r\n",
                    };
                    w.write_all(reply.as_bytes()).await.unwrap();
                }
                seen
            });
            (addr, task)
        }
        let (addr, task) = server("250 ok\r\n").await;
        smtp(
            addr,
            "client.test",
            "s@client.test",
            "u@example.test",
            b"Subject: x\n\n.hi\n",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let seen = task.await.unwrap();
        assert!(seen.contains(&"MAIL FROM:<s@client.test>".to_string()), "{seen:?}");
        assert!(seen.contains(&"..hi".to_string()), "dot-stuffed: {seen:?}");
        let (addr, _task) = server("550 5.1.1 no such user\r\n").await;
        let e = smtp(
            addr,
            "client.test",
            "s@client.test",
            "u@example.test",
            b"x\n",
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.contains("refused RCPT TO: 550 5.1.1 no such user"), "{e}");
    }
}
