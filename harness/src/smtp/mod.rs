//! The SMTP layer of the simulated world: mock receiving endpoints and the on-path attacker.
//!
//! This module owns the receiving side of every delivery attempt:
//! - an ESMTP state machine (RFC 5321) with STARTTLS (RFC 3207) over tokio-rustls, run per connection by
//!   [`serve`], whose scripted [`Behaviour`] decides what it offers;
//! - the [`Transcript`] each connection leaves behind (the impartial witness: EHLO, STARTTLS, TLS version, SNI,
//!   presented chain, the client's alert, MAIL/RCPT/DATA and the accepted message's hash);
//! - [`serve_strip_starttls`], an on-path attacker that deletes STARTTLS (RFC 7672 §1.3 downgrade).
//!
//! It knows nothing of DNS or of the scenario file: `world` hands it listeners, chains and behaviours.

mod acceptor;
mod activity;
mod attacker;
mod behaviour;
mod command;
mod config;
mod endpoint;
mod error;
mod line;
mod message;
mod script;
mod session;
mod stream;
mod transcript;

pub use attacker::{AttackerLog, serve_strip_starttls};
pub use behaviour::Behaviour;
pub use command::{Command, Param, ParseError, parse as parse_command, render as render_command};
pub use config::{EndpointConfig, Limits, TlsChain, server_tls_config};
pub use endpoint::serve;
pub use error::SmtpError;
pub use message::{body_sha256, normalize_body};
pub use script::{Reply, Script, Stage};
pub use transcript::{MailFrom, TlsInfo, Transcript, TranscriptLog};

#[cfg(test)]
mod tests;
