//! Standard output that a closed pipe cannot crash.
//!
//! Rust ignores SIGPIPE, so writing to a pipe whose reader is gone (`danesim list | head -1`)
//! fails with EPIPE, and `println!` panics on it (exit 101). Everything danesim prints on
//! stdout goes through [`outln!`] or [`out!`] instead: a failed write is recorded here
//! (stdout is one per process, so its state is too), later writes are skipped, and the CLI
//! decides at the end ([`status`]) what the failure means for the exit code. Long-running
//! commands (`serve`) poll [`closed`] and stop when nobody can read them any more.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error, kept for [`status`].
static FIRST: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes `args` to stdout unless an earlier write failed; a failure is recorded, not raised.
pub fn write(args: fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        let mut first = FIRST.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }
}

/// True once a write to stdout failed: nothing more will be printed.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// The first write error, if any. `BrokenPipe` means the reader went away (`| head`).
pub fn status() -> Result<(), io::ErrorKind> {
    match FIRST.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        None => Ok(()),
        Some(e) => Err(e.kind()),
    }
}

/// The first write error as text, for the CLI's message.
pub fn failure() -> Option<String> {
    FIRST
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|e| e.to_string())
}

/// `print!` that never panics (see the module documentation).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` that never panics (see the module documentation).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes `args` to stderr; a failure is ignored (there is nowhere left to report it), never a
/// panic as `eprintln!` would on a closed stderr (`danesim run x 2>&-`).
pub fn write_err(args: fmt::Arguments) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.flush());
}

/// `eprintln!` that never panics (see [`write_err`]).
#[macro_export]
macro_rules! errln {
    () => {
        $crate::output::write_err(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
