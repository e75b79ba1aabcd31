//! Writing a command's report to stdout, as command-line tools do when a pipe closes early.
//!
//! `println!` panics when a write fails, and Rust ignores SIGPIPE, so `check ... | head -n 1`
//! used to end in "failed printing to stdout: Broken pipe". Here a reader that went away
//! (`EPIPE`) ends the report quietly: nothing more is written, nothing is said about it, and
//! the command exits with the code its verdict gives. Any other failure to write (a full
//! disk, a closed descriptor) is returned for the command to report as an error.

use std::io::{self, BufWriter, ErrorKind, Write};

/// Writes a report with `write` through a locked, buffered stdout and flushes it. A reader
/// that closed the pipe counts as success; any other write error comes back as one line to
/// print after `error: `.
pub fn report(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    report_to(&mut out, write)
}

/// [`report`] to any writer: the part its unit tests drive.
pub fn report_to<W: Write>(
    out: &mut W,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), String> {
    match write(out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write the report to stdout: {e}")),
    }
}

/// `value` as pretty JSON and a closing newline. serde_json hands an I/O error back as it
/// was, so a closed pipe keeps its `BrokenPipe` kind on the way out.
pub fn json<T: serde::Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

/// One line on stderr, for `note!`: a diagnostic that cannot be written (stderr piped into
/// the same closed `head`) is dropped, where `eprintln!` would panic.
pub fn note(args: std::fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// A stdout stand-in for the commands' unit tests: it takes `room` bytes, then fails every
/// write (and, when asked, the flush) with `kind`, as a pipe whose reader left does.
#[cfg(test)]
pub(crate) struct Closing {
    pub taken: Vec<u8>,
    pub room: usize,
    pub kind: ErrorKind,
    pub fail_flush: bool,
}

#[cfg(test)]
impl Closing {
    pub fn new(room: usize, kind: ErrorKind) -> Closing {
        Closing {
            taken: Vec::new(),
            room,
            kind,
            fail_flush: false,
        }
    }
}

#[cfg(test)]
impl Write for Closing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.room - self.taken.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::from(self.kind));
        }
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.fail_flush {
            return Err(io::Error::from(self.kind));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn lines(out: &mut dyn Write) -> io::Result<()> {
        for i in 0..1000 {
            writeln!(out, "line {i}")?;
        }
        Ok(())
    }

    #[test]
    fn a_closed_pipe_ends_the_report_quietly() {
        let mut out = Closing::new(20, ErrorKind::BrokenPipe);
        assert_eq!(report_to(&mut out, lines), Ok(()));
        assert_eq!(out.taken, b"line 0\nline 1\nline 2");
    }

    #[test]
    fn a_pipe_closed_before_the_flush_ends_the_report_quietly() {
        let mut out = BufWriter::new(Closing::new(0, ErrorKind::BrokenPipe));
        assert_eq!(report_to(&mut out, |o| o.write_all(b"short")), Ok(()));
    }

    #[test]
    fn json_keeps_the_broken_pipe_kind() {
        let mut out = Closing::new(10, ErrorKind::BrokenPipe);
        let value = serde_json::json!({"objects": (0..100).collect::<Vec<_>>()});
        let err = json(&mut out, &value).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert_eq!(report_to(&mut out, |o| json(o, &value)), Ok(()));
    }

    #[test]
    fn any_other_write_error_is_reported() {
        let mut out = Closing::new(20, ErrorKind::StorageFull);
        let err = report_to(&mut out, lines).unwrap_err();
        assert!(
            err.starts_with("cannot write the report to stdout: "),
            "{err}"
        );
    }

    #[test]
    fn a_failed_flush_is_reported() {
        let mut out = Closing::new(usize::MAX, ErrorKind::PermissionDenied);
        out.fail_flush = true;
        let err = report_to(&mut out, lines).unwrap_err();
        assert!(
            err.starts_with("cannot write the report to stdout: "),
            "{err}"
        );
    }

    #[test]
    fn a_report_that_fits_is_written_whole() {
        let mut out = Vec::new();
        assert_eq!(report_to(&mut out, |o| json(o, &[1, 2])), Ok(()));
        assert_eq!(String::from_utf8(out).unwrap(), "[\n  1,\n  2\n]\n");
    }
}
