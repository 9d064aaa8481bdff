//! File watches for `watch:` sources: a change to a file the source reads
//! triggers a run once the file has been quiet for a while.
//!
//! Events come from notify through notify-debouncer-full (which turns an
//! atomic rename into place into one event on the final name and drops the
//! temp file's). They only *prompt* a check; what decides is a signature of
//! the matching files (name, size, modification time, inode): a run is
//! triggered when it differs from the one last handed to a run and no file
//! has been modified within the quiet period. A periodic rescan does the same
//! check without an event, for file systems that send none (NFS, SMB).

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// How a watch waits and rescans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// A file must not have changed for this long before it is read.
    pub quiet: Duration,
    /// How often the files are checked without an event.
    pub rescan: Duration,
}

/// A running watch; dropping it stops it.
#[derive(Debug)]
pub struct FileWatch {
    task: JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long the debouncer holds raw events; the quiet period does the real
/// waiting, so this only needs to merge one burst of inotify events.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often the debouncer's thread looks for events to hand on. Its default
/// (a quarter of the timeout, 50 ms) woke an idle daemon with two watches 40
/// times a second: 40 ms of CPU per 10 s idle, 10 ms with this tick
/// (benches/daemon.sh).
const DEBOUNCE_TICK: Duration = Duration::from_millis(200);

/// Watches the files `pattern` names (a path or a glob, as the CSV source
/// reads it) and sends `()` on `changed` when they changed and are quiet.
/// Must run inside the tokio runtime. The files as they are now count as
/// synced, and the folder is watched before this returns, so a change made
/// right after is seen (taking both inside the task lost a file renamed into
/// place before the task first ran, under load). A folder that cannot be
/// watched (it does not exist yet, say) is logged and left to the rescan,
/// which retries.
pub fn watch_files(
    pattern: PathBuf,
    options: WatchOptions,
    changed: mpsc::Sender<()>,
) -> FileWatch {
    let mut watcher = Watcher::new(pattern, options);
    watcher.subscribe();
    let task = tokio::spawn(async move {
        watcher.run(changed).await;
    });
    FileWatch { task }
}

/// One file's identity and state at a check.
type FileSignature = (PathBuf, u64, Option<SystemTime>, u64);

struct Watcher {
    pattern: PathBuf,
    folder: PathBuf,
    recursive: bool,
    options: WatchOptions,
    prompt: Arc<Notify>,
    events: Option<Box<dyn Send>>,
    synced: Vec<FileSignature>,
    /// The files as last seen differing from `synced`, and since when.
    seen: Option<(Vec<FileSignature>, Instant)>,
}

impl Watcher {
    fn new(pattern: PathBuf, options: WatchOptions) -> Self {
        let (folder, recursive) = watched_folder(&pattern);
        let synced = signature(&pattern);
        Watcher {
            pattern,
            folder,
            recursive,
            options,
            prompt: Arc::new(Notify::new()),
            events: None,
            synced,
            seen: None,
        }
    }

    async fn run(&mut self, changed: mpsc::Sender<()>) {
        let mut rescan = tokio::time::interval(self.options.rescan);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rescan.tick().await;
        let mut check_at: Option<tokio::time::Instant> = None;
        loop {
            let sleep_until = check_at.unwrap_or_else(far_future);
            tokio::select! {
                () = self.prompt.notified() => {
                    check_at = Some(tokio::time::Instant::now() + self.options.quiet);
                }
                _ = rescan.tick() => {
                    if self.events.is_none() {
                        self.subscribe();
                    }
                    check_at.get_or_insert_with(tokio::time::Instant::now);
                }
                () = tokio::time::sleep_until(sleep_until), if check_at.is_some() => {
                    check_at = self.check(&changed).await;
                }
            }
            if changed.is_closed() {
                return;
            }
        }
    }

    /// Compares the files with what was last handed to a run: `Some(t)` asks
    /// for another check at `t` because a file is still being written.
    async fn check(&mut self, changed: &mpsc::Sender<()>) -> Option<tokio::time::Instant> {
        let pattern = self.pattern.clone();
        // stat and glob may block (a hung NFS mount): off the async threads.
        let now = tokio::task::spawn_blocking(move || signature(&pattern))
            .await
            .unwrap_or_default();
        if now == self.synced {
            self.seen = None;
            return None;
        }
        if self.seen.as_ref().map(|(files, _)| files) != Some(&now) {
            self.seen = Some((now.clone(), Instant::now()));
        }
        let stable_for = self
            .seen
            .as_ref()
            .map_or(Duration::ZERO, |(_, t)| t.elapsed());
        if let Some(wait) = quiet_wait(&now, self.options.quiet, stable_for) {
            debug!(path = %self.pattern.display(), "a watched file is still being written");
            return Some(tokio::time::Instant::now() + wait);
        }
        self.seen = None;
        self.synced = now;
        // A full channel already holds a trigger, which is as good as two.
        let _ = changed.try_send(());
        None
    }

    /// Starts the event stream on the watched folder; failures are logged
    /// and retried at the next rescan.
    fn subscribe(&mut self) {
        let prompt = Arc::clone(&self.prompt);
        let pattern = self.pattern.clone();
        let matcher = glob::Pattern::new(&pattern.to_string_lossy()).ok();
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let relevant = events.iter().any(|event| {
                    event.need_rescan()
                        || event.paths.iter().any(|p| {
                            p == &pattern || matcher.as_ref().is_some_and(|m| m.matches_path(p))
                        })
                });
                if relevant {
                    prompt.notify_one();
                }
            }
            Err(errors) => {
                for error in errors {
                    warn!(error = %error, "file watch error; the rescan still checks");
                }
                prompt.notify_one();
            }
        };
        let mode = if self.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        match new_debouncer(DEBOUNCE, Some(DEBOUNCE_TICK), handler) {
            Ok(mut debouncer) => match debouncer.watch(&self.folder, mode) {
                Ok(()) => self.events = Some(Box::new(debouncer)),
                Err(error) => warn!(
                    folder = %self.folder.display(),
                    error = %error,
                    "cannot watch the folder; checking it every {} s instead",
                    self.options.rescan.as_secs_f64()
                ),
            },
            Err(error) => warn!(error = %error, "cannot start a file watch"),
        }
    }
}

/// The folder to watch for `pattern`: its parent when only the file name is
/// a glob (or none is), else the deepest folder above the first glob part,
/// watched recursively.
fn watched_folder(pattern: &Path) -> (PathBuf, bool) {
    let mut folder = PathBuf::new();
    let components: Vec<Component<'_>> = pattern.components().collect();
    for (i, part) in components.iter().enumerate() {
        let is_last = i + 1 == components.len();
        if is_last {
            return (folder_or_root(folder), false);
        }
        if has_glob_chars(part.as_os_str().as_encoded_bytes()) {
            return (folder_or_root(folder), true);
        }
        folder.push(part);
    }
    (folder_or_root(folder), false)
}

fn folder_or_root(folder: PathBuf) -> PathBuf {
    if folder.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        folder
    }
}

fn has_glob_chars(bytes: &[u8]) -> bool {
    bytes.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The matching files now, sorted; unreadable entries are left out (the run
/// that reads them will say why).
fn signature(pattern: &Path) -> Vec<FileSignature> {
    let mut files: Vec<PathBuf> = if pattern.exists() {
        vec![pattern.to_path_buf()]
    } else {
        match glob::glob(&pattern.to_string_lossy()) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    };
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            meta.is_file()
                .then(|| (path, meta.len(), meta.modified().ok(), meta.ino()))
        })
        .collect()
}

/// How much longer to wait before reading `files`: while one was modified
/// within `quiet` of now. A modification time in the future (a file server
/// whose clock runs ahead) says nothing about age; then the files must have
/// looked the same to us for `quiet` (`stable_for`).
fn quiet_wait(files: &[FileSignature], quiet: Duration, stable_for: Duration) -> Option<Duration> {
    let now = SystemTime::now();
    files
        .iter()
        .filter_map(|(_, _, modified, _)| {
            let age = match now.duration_since((*modified)?) {
                Ok(age) => age,
                Err(_) => stable_for,
            };
            (age < quiet).then(|| quiet - age)
        })
        .max()
}

/// How long to put off reading the files `pattern` names because one of
/// them was modified within `quiet` (blocking: it stats them).
pub fn recently_modified(pattern: &Path, quiet: Duration) -> Option<Duration> {
    quiet_wait(&signature(pattern), quiet, quiet)
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_or_a_file_name_glob_watches_its_parent_only() {
        assert_eq!(
            watched_folder(Path::new("/data/in/partners.csv")),
            (PathBuf::from("/data/in"), false)
        );
        assert_eq!(
            watched_folder(Path::new("/data/in/*.csv")),
            (PathBuf::from("/data/in"), false)
        );
    }

    #[test]
    fn a_glob_in_a_folder_watches_above_it_recursively() {
        assert_eq!(
            watched_folder(Path::new("/data/*/partners.csv")),
            (PathBuf::from("/data"), true)
        );
    }

    #[test]
    fn a_file_modified_just_now_is_still_being_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "x").expect("write");
        let files = signature(&path);
        assert_eq!(files.len(), 1);
        let minute = Duration::from_secs(60);
        assert!(quiet_wait(&files, minute, Duration::ZERO).is_some());
        assert!(quiet_wait(&files, Duration::ZERO, Duration::ZERO).is_none());
    }

    #[test]
    fn a_file_from_the_future_is_quiet_once_it_looked_the_same_for_the_period() {
        let minute = Duration::from_secs(60);
        let future = SystemTime::now() + Duration::from_secs(600);
        let files = vec![(PathBuf::from("a.csv"), 1, Some(future), 1)];
        assert_eq!(
            quiet_wait(&files, minute, Duration::from_secs(45)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(quiet_wait(&files, minute, minute), None);
    }

    #[test]
    fn the_signature_changes_with_size_and_lists_glob_matches_sorted() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("b.csv"), "1").expect("write");
        std::fs::write(dir.path().join("a.csv"), "1").expect("write");
        std::fs::write(dir.path().join("c.txt"), "1").expect("write");
        let pattern = dir.path().join("*.csv");
        let before = signature(&pattern);
        let names: Vec<_> = before
            .iter()
            .map(|f| f.0.file_name().map(|n| n.to_owned()))
            .collect();
        assert_eq!(names, [Some("a.csv".into()), Some("b.csv".into())]);
        std::fs::write(dir.path().join("b.csv"), "12").expect("write");
        assert_ne!(signature(&pattern), before);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_new_matching_file_triggers_once_it_is_quiet() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (tx, mut rx) = mpsc::channel(1);
        let options = WatchOptions {
            quiet: Duration::from_millis(300),
            rescan: Duration::from_secs(3600),
        };
        let _watch = watch_files(dir.path().join("*.csv"), options, tx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(dir.path().join("new.csv"), "email\n").expect("write");
        let got = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
        assert_eq!(got.ok().flatten(), Some(()));
    }
}
