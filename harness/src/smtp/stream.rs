//! The endpoint's connection before and after STARTTLS, and how TLS failures are classified for the transcript.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A connection in cleartext or after STARTTLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Placeholder while the TCP stream is handed to the TLS acceptor: reads see EOF, writes fail.
    Detached,
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Stream::Detached => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }

    /// On TLS this sends close_notify first (Exim logs a TLS error when a server closes without it).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Detached => Poll::Ready(Ok(())),
        }
    }
}

/// What a failed TLS read or handshake tells about the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TlsFailure {
    /// The client sent this alert (rustls `AlertDescription` name, e.g. "AccessDenied").
    Alert(String),
    /// TCP closed without any alert.
    ClosedWithoutAlert,
    /// Anything else (garbage, protocol violation, I/O error), described.
    Other(String),
}

pub(crate) fn classify(error: &io::Error) -> TlsFailure {
    if let Some(rustls::Error::AlertReceived(alert)) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return TlsFailure::Alert(format!("{alert:?}"));
    }
    match error.kind() {
        // rustls reports a TCP close without close_notify as UnexpectedEof, both mid-handshake and after it.
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            TlsFailure::ClosedWithoutAlert
        }
        _ => TlsFailure::Other(error.to_string()),
    }
}

/// "TLSv1.3" rather than rustls' `TLSv1_3`.
pub(crate) fn version_name(version: Option<rustls::ProtocolVersion>) -> String {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(other) => format!("{other:?}"),
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_alerts_and_eof() {
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::AccessDenied),
        );
        assert_eq!(classify(&alert), TlsFailure::Alert("AccessDenied".into()));
        assert_eq!(
            classify(&io::ErrorKind::UnexpectedEof.into()),
            TlsFailure::ClosedWithoutAlert
        );
        assert!(matches!(
            classify(&io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError)),
            TlsFailure::Other(_)
        ));
        assert_eq!(version_name(Some(rustls::ProtocolVersion::TLSv1_3)), "TLSv1.3");
        assert_eq!(version_name(None), "unknown");
    }
}
