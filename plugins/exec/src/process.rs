//! The plugin as a process: spawned without a shell in a process group of its
//! own, with a cleared environment; its stdout read line by line within a
//! length limit and two timeouts; its stderr drained to the log; the whole
//! group killed on every way out (see `docs/decisions/0026-exec-host.md`).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use liaison_plugin_api::Cancel;
use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant, Interval, MissedTickBehavior};

use crate::{ExecConfig, ALLOWED_ENV};

/// How often a waiting read looks at the cancellation flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// The longest stderr line logged; the rest of a longer one is dropped.
pub(crate) const MAX_STDERR_LINE: usize = 4096;

/// How long stdout may stay silent after the plugin exited before it counts
/// as ended: a child the plugin left running may hold the pipe open.
const AFTER_EXIT: Duration = Duration::from_millis(200);

/// How many of the last stderr lines a failure message quotes.
const STDERR_TAIL: usize = 5;

/// How long a finished plugin's stderr is waited for, to quote its end.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

/// Why reading stopped before the plugin's output ended.
#[derive(Debug)]
pub(crate) enum Stop {
    /// `timeout`: the whole run took too long.
    Timeout(Duration),
    /// `idle_timeout`: no line for too long.
    Idle(Duration),
    /// The read was cancelled.
    Cancelled,
    /// Reading the pipe failed.
    Io(io::Error),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Timeout(d) => write!(
                f,
                "killed (with its process group) after the timeout of {} for the whole run",
                crate::duration_text(*d)
            ),
            Stop::Idle(d) => write!(
                f,
                "killed (with its process group) after {} without a line (idle_timeout)",
                crate::duration_text(*d)
            ),
            Stop::Cancelled => f.write_str("the read was cancelled; the plugin was stopped"),
            Stop::Io(e) => write!(f, "reading its output failed: {e}"),
        }
    }
}

/// One step of the plugin's stdout.
pub(crate) enum Next<'a> {
    /// Line `n` (1-based), without its line break.
    Line(u64, &'a [u8]),
    /// Line `n` was longer than the maximum (its start is in the bytes).
    TooLong(u64),
    /// The plugin closed its stdout.
    Eof,
}

/// Where the plugin's stderr lines go.
#[derive(Clone)]
pub(crate) enum StderrSink {
    /// To the log at `warn`, naming the source.
    Log(Arc<str>),
    /// Kept for a report (at most `max` lines; the count goes on).
    Collect(Arc<Mutex<Collected>>, usize),
}

/// Stderr lines kept for a report.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The first lines.
    pub lines: Vec<String>,
    /// How many lines there were.
    pub total: u64,
}

/// How the plugin exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit status, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

impl Exit {
    fn of(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Exit {
            code: status.code(),
            signal: status.signal(),
        }
    }

    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(signal)) => {
                write!(f, "was killed by signal {signal}{}", signal_name(signal))
            }
            (None, None) => f.write_str("ended without an exit status"),
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// Why the plugin could not be started.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The working folder is missing or not a folder.
    WorkingDir(String),
    /// The program could not be run.
    Program(io::Error),
}

/// A running plugin. Dropping it kills its process group.
pub(crate) struct Plugin {
    child: Child,
    group: Group,
    stdout: LineReader<ChildStdout>,
    line: u64,
    deadline: Instant,
    timeout: Duration,
    idle: Duration,
    cancel: Cancel,
    tick: Interval,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr: Option<Aborting>,
    _stdin: Aborting,
    /// How the plugin exited, once seen while reading its stdout.
    exited: Option<ExitStatus>,
}

/// Kills the process group on drop (the task that read it was aborted, the
/// host dropped the stream, or the read is over).
struct Group(Option<Pid>);

impl Group {
    fn kill(&self) {
        if let Some(pid) = self.0 {
            // ESRCH (nothing left in the group) is the usual answer.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A task aborted on drop.
struct Aborting(JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Plugin {
    /// Starts `config`'s command with `start` (the start line) on its stdin,
    /// which is then closed. Must run on a tokio runtime.
    pub(crate) fn spawn(
        config: &ExecConfig,
        start: Vec<u8>,
        stderr: StderrSink,
        cancel: Cancel,
        skip_long_lines: bool,
    ) -> Result<Plugin, SpawnError> {
        let dir = &config.working_dir;
        if !dir.is_dir() {
            return Err(SpawnError::WorkingDir(format!(
                "the working folder {} is not a folder",
                quoted_path(dir)
            )));
        }
        let Some((program, args)) = config.command.split_first() else {
            return Err(SpawnError::Program(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the command is empty",
            )));
        };
        let mut command = Command::new(program);
        command.args(args).env_clear();
        for name in ALLOWED_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        for (name, value) in &config.env {
            command.env(name, value.expose());
        }
        command
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: the plugin and whatever it starts are killed together.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(SpawnError::Program)?;
        let group = Group(child.id().and_then(|id| Pid::from_raw(id as i32)));
        let (Some(mut stdin), Some(stdout), Some(stderr_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SpawnError::Program(io::Error::other(
                "the plugin's pipes were not set up",
            )));
        };
        let stdin_task = tokio::spawn(async move {
            let mut line = start;
            line.push(b'\n');
            // A plugin that exits without reading its stdin gets EPIPE here: its
            // exit status says what happened.
            let _ = stdin.write_all(&line).await;
            let _ = stdin.shutdown().await;
        });
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let stderr_task = tokio::spawn(drain_stderr(stderr_pipe, stderr, tail.clone()));
        let mut tick = tokio::time::interval(CANCEL_POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Plugin {
            child,
            group,
            stdout: LineReader::new(stdout, config.max_line_length, skip_long_lines),
            line: 0,
            deadline: Instant::now() + config.timeout,
            timeout: config.timeout,
            idle: config.idle_timeout,
            cancel,
            tick,
            tail,
            stderr: Some(Aborting(stderr_task)),
            _stdin: Aborting(stdin_task),
            exited: None,
        })
    }

    /// The number of the last line read.
    pub(crate) fn lines(&self) -> u64 {
        self.line
    }

    /// Whether the next line is already read in, so [`Plugin::next`] will
    /// not wait for the plugin.
    pub(crate) fn has_line(&self) -> bool {
        self.stdout.has_line()
    }

    /// The next line of stdout. `idle_timeout` counts from this call: time
    /// the host spends with the items before is not the plugin's idling.
    pub(crate) async fn next(&mut self) -> Result<Next<'_>, Stop> {
        let now = Instant::now();
        // A plugin that writes without pause never lets the timers' branches
        // run: look at the clock and the flag on every line.
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if now >= self.deadline {
            return Err(Stop::Timeout(self.timeout));
        }
        let idle_at = now + self.idle;
        // Once the plugin has exited, what it wrote is in the pipe already: a
        // pipe that stays silent is held open by something it left running.
        let mut drained_at = self.exited.map(|_| now + AFTER_EXIT);
        let read = loop {
            tokio::select! {
                biased;
                read = self.stdout.next() => break read,
                status = self.child.wait(), if self.exited.is_none() => {
                    self.exited = Some(status.map_err(Stop::Io)?);
                    drained_at = Some(Instant::now() + AFTER_EXIT);
                }
                () = sleep_until(drained_at.unwrap_or(idle_at)), if drained_at.is_some() => {
                    break Ok(self.stdout.finish());
                }
                () = sleep_until(self.deadline) => return Err(Stop::Timeout(self.timeout)),
                () = sleep_until(idle_at) => return Err(Stop::Idle(self.idle)),
                _ = self.tick.tick() => {
                    if self.cancel.is_cancelled() {
                        return Err(Stop::Cancelled);
                    }
                }
            }
        };
        match read.map_err(Stop::Io)? {
            Read::Eof => Ok(Next::Eof),
            Read::Line => {
                self.line += 1;
                Ok(Next::Line(self.line, self.stdout.line()))
            }
            Read::Long => {
                self.line += 1;
                Ok(Next::TooLong(self.line))
            }
        }
    }

    /// Waits for the plugin to exit (its stdout is closed), within the
    /// timeouts; then kills whatever it left running in its group.
    pub(crate) async fn wait(&mut self) -> Result<Exit, Stop> {
        if let Some(status) = self.exited {
            self.group.kill();
            return Ok(Exit::of(status));
        }
        let idle_at = Instant::now() + self.idle;
        let status = loop {
            tokio::select! {
                biased;
                status = self.child.wait() => break status.map_err(Stop::Io)?,
                () = sleep_until(self.deadline) => return Err(Stop::Timeout(self.timeout)),
                () = sleep_until(idle_at) => return Err(Stop::Idle(self.idle)),
                _ = self.tick.tick() => {
                    if self.cancel.is_cancelled() {
                        return Err(Stop::Cancelled);
                    }
                }
            }
        };
        self.group.kill();
        Ok(Exit::of(status))
    }

    /// Kills the plugin's process group and reaps the plugin.
    pub(crate) async fn kill(&mut self) {
        self.group.kill();
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    /// The last lines of stderr, once it is drained (briefly waited for).
    pub(crate) async fn stderr_tail(&mut self) -> Vec<String> {
        if let Some(mut task) = self.stderr.take() {
            let _ = tokio::time::timeout(STDERR_DRAIN, &mut task.0).await;
        }
        match self.tail.lock() {
            Ok(tail) => tail.iter().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Reads stderr line by line into `sink`, keeping the last lines in `tail`.
async fn drain_stderr(pipe: ChildStderr, sink: StderrSink, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = LineReader::new(pipe, MAX_STDERR_LINE, true);
    loop {
        let long = match reader.next().await {
            Ok(Read::Eof) | Err(_) => return,
            Ok(Read::Line) => false,
            Ok(Read::Long) => true,
        };
        let bytes = reader.line();
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        if long {
            text.push('…');
        }
        match &sink {
            StderrSink::Log(source) => {
                tracing::warn!(source = %source, "plugin stderr: {text}");
            }
            StderrSink::Collect(collected, max) => {
                if let Ok(mut c) = collected.lock() {
                    c.total += 1;
                    if c.lines.len() < *max {
                        c.lines.push(text.clone());
                    }
                }
            }
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    }
}

/// What [`LineReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A line, in [`LineReader::line`].
    Line,
    /// A line over the limit; its first `max` bytes are in [`LineReader::line`].
    Long,
    /// The end of the input.
    Eof,
}

/// Lines of at most `max` bytes from a pipe, never holding more than that
/// (plus the read buffer) whatever the input. Cancel-safe: a `next` dropped
/// at an await loses nothing, the next call goes on where it stopped.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    max: usize,
    /// Whether a long line is skipped to its end (and reading goes on) or
    /// reported at once (the read is failing anyway).
    skip_long: bool,
    /// Inside a long line, dropping bytes to its end.
    skipping: bool,
    /// The last call returned a line: the next one starts afresh.
    returned: bool,
}

/// The pipe read size: 64 KiB, a Linux pipe's whole buffer.
const READ_BUFFER: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize, skip_long: bool) -> Self {
        LineReader {
            inner: BufReader::with_capacity(READ_BUFFER, inner),
            buf: Vec::new(),
            max,
            skip_long,
            skipping: false,
            returned: false,
        }
    }

    /// Whether a whole line waits in the read buffer.
    pub(crate) fn has_line(&self) -> bool {
        memchr::memchr(b'\n', self.inner.buffer()).is_some()
    }

    /// The line the last [`LineReader::next`] found.
    pub(crate) fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Ends the input here, as if the pipe had closed: what was read of a
    /// last line without a line break is that line.
    pub(crate) fn finish(&mut self) -> Read {
        if self.returned {
            self.buf.clear();
            self.skipping = false;
            self.returned = false;
        }
        if self.skipping {
            self.returned = true;
            return Read::Long;
        }
        if self.buf.is_empty() {
            return Read::Eof;
        }
        self.returned = true;
        Read::Line
    }

    /// Reads the next line. A last line without a line break counts.
    pub(crate) async fn next(&mut self) -> io::Result<Read> {
        if self.returned {
            self.buf.clear();
            self.skipping = false;
            self.returned = false;
        }
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.skipping {
                    self.returned = true;
                    return Ok(Read::Long);
                }
                if self.buf.is_empty() {
                    return Ok(Read::Eof);
                }
                self.returned = true;
                return Ok(Read::Line);
            }
            let newline = memchr::memchr(b'\n', available);
            let chunk = newline.unwrap_or(available.len());
            if !self.skipping {
                let room = self.max.saturating_sub(self.buf.len());
                if chunk > room {
                    self.buf.extend_from_slice(&available[..room]);
                    if !self.skip_long {
                        self.inner.consume(room);
                        self.returned = true;
                        return Ok(Read::Long);
                    }
                    self.skipping = true;
                } else {
                    self.buf.extend_from_slice(&available[..chunk]);
                }
            }
            match newline {
                Some(at) => {
                    self.inner.consume(at + 1);
                    self.returned = true;
                    return Ok(if self.skipping {
                        Read::Long
                    } else {
                        Read::Line
                    });
                }
                None => {
                    let all = available.len();
                    self.inner.consume(all);
                }
            }
        }
    }
}

/// A path for a message, quoted.
pub(crate) fn quoted_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    async fn lines(input: &[u8], max: usize, skip: bool) -> Vec<(Read, Vec<u8>)> {
        let mut reader = LineReader::new(input, max, skip);
        let mut out = Vec::new();
        loop {
            let read = reader.next().await.unwrap();
            if read == Read::Eof {
                return out;
            }
            out.push((read, reader.line().to_vec()));
            if read == Read::Long && !skip {
                return out;
            }
        }
    }

    #[test]
    fn lines_are_cut_at_line_breaks_and_the_last_needs_none() {
        let got = runtime().block_on(lines(b"a\n\nbc\nd", 10, true));
        let want: Vec<(Read, Vec<u8>)> = vec![
            (Read::Line, b"a".to_vec()),
            (Read::Line, b"".to_vec()),
            (Read::Line, b"bc".to_vec()),
            (Read::Line, b"d".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_long_line_is_skipped_to_its_end_or_reported_at_once() {
        let input = b"12345\n1234567890123\nok\n";
        let got = runtime().block_on(lines(input, 5, true));
        assert_eq!(
            got,
            vec![
                (Read::Line, b"12345".to_vec()),
                (Read::Long, b"12345".to_vec()),
                (Read::Line, b"ok".to_vec()),
            ]
        );
        let got = runtime().block_on(lines(input, 5, false));
        assert_eq!(got[1].0, Read::Long);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_long_line_across_many_reads_holds_only_the_limit() {
        let mut input = vec![b'x'; 3 * READ_BUFFER + 17];
        input.extend_from_slice(b"\nnext\n");
        let got = runtime().block_on(async {
            let mut reader = LineReader::new(&input[..], 100, true);
            let first = reader.next().await.unwrap();
            let held = reader.buf.capacity();
            let second = reader.next().await.unwrap();
            (first, held, second, reader.line().to_vec())
        });
        assert_eq!(got.0, Read::Long);
        assert!(got.1 <= 256, "held {} bytes", got.1);
        assert_eq!((got.2, got.3), (Read::Line, b"next".to_vec()));
    }
}
