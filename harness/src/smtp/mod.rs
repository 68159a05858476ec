//! The SMTP layer of the simulated world: mock receiving endpoints and the on-path attacker.
//!
//! This module owns the receiving side of every delivery attempt:
//! - an ESMTP state machine (RFC 5321) with STARTTLS (RFC 3207) over tokio-rustls, run per connection by
//!   [`serve`], whose scripted [`Behaviour`] decides what it offers;
//! - the [`Transcript`] each connection leaves behind (the impartial witness: EHLO, STARTTLS, TLS version, SNI,
//!   presented chain, the client's alert, MAIL/RCPT/DATA and the accepted message's hash);
//! - [`serve_attacker`], an on-path attacker in front of an endpoint that plays one [`Attack`]: it strips
//!   STARTTLS, forges a reply, or intercepts TLS with its own certificate (RFC 7672 §1.3).
//!
//! It knows nothing of DNS or of the scenario file: `world` hands it listeners, chains and behaviours.

mod acceptor;
mod activity;
mod attack;
mod attacker;
mod behaviour;
mod command;
mod config;
mod endpoint;
mod error;
mod handle;
mod line;
mod message;
mod script;
mod session;
mod stream;
mod transcript;

pub use attack::{Attack, InjectAt};
pub use attacker::{AttackerLog, serve_attacker};
pub use behaviour::Behaviour;
pub use command::{Command, Param, ParseError, parse as parse_command, render as render_command};
pub use config::{EndpointConfig, Limits, TlsChain, server_tls_config};
pub use endpoint::serve;
pub use error::SmtpError;
pub use handle::EndpointHandle;
pub use message::{body_len, body_sha256, normalize_body};
pub use script::{Reply, Script, Sessions, Stage};
pub use transcript::{MailFrom, TlsInfo, Transcript, TranscriptLog, TranscriptsSince};

#[cfg(test)]
mod tests;
