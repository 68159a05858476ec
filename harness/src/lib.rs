//! # danesim: an offline simulation harness for DANE-protected SMTP (RFC 7672)
//!
//! A scenario file describes a small world: certificates, DNSSEC-signed zones under
//! `test.`, and SMTP endpoints with scripted behaviours. danesim builds that world in
//! process, lets a sender under test deliver one message into it, and judges the
//! outcome against the scenario's expectation and against invariants that the
//! receiving side can witness.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`scenario`] | the TOML format, discovery and reading within the input limits (regular files, 8 MiB, no directory cycles), loading with file:line:col errors (bounded excerpts, offsets mapped through TOML escapes), the checked model, timelines (attempts and the steps between them), endpoint scripts and per-connection sessions (`load_script`), status codes and presented certificates in `[expect]` (`load_expect`), endpoint ports and `[route] relay` (a route that skips MX) |
//! | [`address`] | the world-address rule: documentation ranges (RFC 5737, RFC 3849) unless a scenario opts in, never loopback, unspecified, multicast, broadcast or link-local, IPv4-mapped read as IPv4 |
//! | [`duration`] | the one duration syntax (humantime's: `400ms`, `1h30m`, `2d`) for files, profiles and the command line, each use with its bounds; the form reports print, which reads back |
//! | [`vocab`] | the outcome vocabulary: AUTH, TLS, OPP, DEFER, BOUNCE, SKIP-*, invariants |
//! | [`pki`] | fixed keys, certificate issuing (rcgen), TLSA computation and matching (a leaf) |
//! | [`dane`] | RFC 7672 §3 DANE-EE/DANE-TA checks, digest agility, name checks and the rustls verifier; the witness's chain match (a leaf over `pki`, used by the reference sender, `check`, `explain` and the witness) |
//! | [`dns`] | zone assembly (n log n, canonical byte keys, each line parsed once, on every core), DNSSEC signing with a fixed clock (each RRSIG made on first use), the authoritative server (zones replaceable while serving), the handler without sockets for fuzzing (`dns::wire`), the query log (bounded for `serve`) |
//! | [`smtp`] | the endpoint state machine, STARTTLS, behaviours, scripted replies and drops (per connection by ordinal: `Sessions`), the attacker relay (strip, inject, intercept), transcripts |
//! | [`world`] | builds and runs one world: binds loopback (or real addresses in a private namespace), wires dns + smtp + pki, the address map; what the world publishes and where its names route (the hosts invariants name, at load time and in verdicts); namespace mode, unbound, and the world clock the real programs run on (`world::clock`, libfaketime) |
//! | [`sender`] | senders under test: the reference RFC 7672 sender (by MX or a configured relay; its validating stub on the world clock, `sender::reference::world_time`), its decision trace and its exchange-online profile; real programs from sender profiles (`sender::external::profile`: templates, lifecycle, checks, outcome rules over output or a log, `log_source`), Postfix and Exim among them |
//! | [`witness`] | the impartial witness: observations of one attempt, commitment by route (MX RRset or a relay that skips MX, the port dialled, CNAME expansion, TLSA base domains at `_<port>._tcp`; never a greeting name), NOCLEAR, DANE-MATCH, REPORT and the explicit invariants over every message, PRESENTED (the leaf each handshake presented: serial, same or different key), SESSION (a scripted connection that never came fails the run), a real sender's report from what the endpoints saw |
//! | [`outcome`] | verdicts (the expectation plus the witness's checks), RFC 3463 status codes (STATUS, HOST-STATUS), documented deviations, the snapshot form, the redaction table, report lines |
//! | [`runner`] | one scenario × one sender, start to finish (in process, or a whole list in one namespace lab); timelines attempt by attempt |
//! | [`inspect`] | `danesim tlsa` and `danesim check`: TLSA lines for certificate files, an offline review of a real zone file against served chains (uses `pki` and `dane`) |
//! | [`output`] | stdout that a closed pipe (`danesim list \| head -1`) cannot crash: `outln!`, `out!`, the first write error for the exit code |
//! | [`teach`] | `danesim explain` (a scenario's decisions step by step, with RFC sections and fix hints) and `danesim serve` (a world kept up for dig, delv, swaks) |
//!
//! Layers stay apart: `dns` and `smtp` know nothing of each other, `pki` depends on
//! nothing here, `world` assembles them, and `witness` and `outcome` judge from what was recorded.
//! A DANE failure is outcome data; a Rust error means bad input or a harness fault.

#![forbid(unsafe_code)]

pub mod address;
pub mod dane;
pub mod dns;
pub mod duration;
pub mod inspect;
pub mod outcome;
pub mod output;
pub mod pki;
pub mod runner;
pub mod scenario;
pub mod sender;
pub mod smtp;
pub mod teach;
pub mod vocab;
pub mod witness;
pub mod world;
