//! A file a filter appends lines to without ever blocking its worker: lines go through a
//! bounded queue to one writer thread per file. When the queue is full the line is
//! dropped and counted (and a WARN says so, at most once a second); a slow disk or a
//! stuck pipe slows the log, never the sessions. The file is reopened on request
//! (SIGHUP after logrotate, `dpm.reopen_logs()`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the writer thread looks at the reopen flag while the queue is idle.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// How long the writer thread rests after writing a batch. Why: a writer that went back
/// to waiting after every line would cost a futex wake-up (on the worker) and a write(2)
/// per statement; resting lets lines gather, so a busy log costs one write per batch and
/// the workers' sends find nobody to wake. Lines reach the file at most this much later.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// Counters and requests shared by the filter and the writer thread.
struct Shared {
    path: PathBuf,
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    reopen: AtomicBool,
    /// Milliseconds since `started` of the last "lines dropped" WARN.
    last_warning_ms: AtomicU64,
    started: Instant,
    /// Who writes (for log lines): `filter 'log'`.
    owner: String,
}

/// The queue end of a log file (see the module docs).
pub struct LogWriter {
    queue: SyncSender<Vec<u8>>,
    capacity: usize,
    shared: Arc<Shared>,
}

impl LogWriter {
    /// Opens `path` for appending (created if missing) and starts its writer thread; at
    /// most `capacity` lines wait in the queue. `owner` names the writer in log lines.
    pub fn open(path: &Path, capacity: usize, owner: &str) -> Result<LogWriter, String> {
        let file = open_append(path)?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            reopen: AtomicBool::new(false),
            last_warning_ms: AtomicU64::new(0),
            started: Instant::now(),
            owner: owner.to_string(),
        });
        let capacity = capacity.max(1);
        let (queue, lines) = sync_channel::<Vec<u8>>(capacity);
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("dpm-log-writer".into())
            .spawn(move || write_lines(file, lines, thread_shared))
            .map_err(|e| format!("cannot start a writer thread for {}: {e}", path.display()))?;
        Ok(LogWriter {
            queue,
            capacity,
            shared,
        })
    }

    /// Queues one line (without its newline). Never blocks: a full queue drops it.
    pub fn write(&self, line: Vec<u8>) {
        match self.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped(),
        }
    }

    fn dropped(&self) {
        let s = &self.shared;
        let total = s.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = s.started.elapsed().as_millis() as u64 + 1000;
        let last = s.last_warning_ms.load(Ordering::Relaxed);
        if now >= last + 1000
            && s.last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "{}: the queue to {} is full ({} lines): dropping lines ({total} dropped so far)",
                s.owner,
                s.path.display(),
                self.capacity
            );
        }
    }

    /// Asks the writer thread to reopen the file (after the current line), and wakes it
    /// with an empty line (not written) so that it does so now rather than at its next
    /// idle check.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Relaxed);
        let _ = self.queue.try_send(Vec::new());
    }

    /// `{ file, written, dropped, write_errors, queue_size }`.
    pub fn diagnostics(&self) -> serde_json::Value {
        let s = &self.shared;
        serde_json::json!({
            "file": s.path.display().to_string(),
            "written": s.written.load(Ordering::Relaxed),
            "dropped": s.dropped.load(Ordering::Relaxed),
            "write_errors": s.write_errors.load(Ordering::Relaxed),
            "queue_size": self.capacity,
        })
    }
}

fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {} for appending: {e}", path.display()))
}

/// The writer thread: writes lines as they come, flushing whenever the queue runs dry,
/// reopening the file when asked. Ends when the filter is gone.
fn write_lines(file: File, lines: std::sync::mpsc::Receiver<Vec<u8>>, shared: Arc<Shared>) {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    loop {
        let line = match lines.recv_timeout(IDLE_CHECK) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if shared.reopen.swap(false, Ordering::Relaxed) {
            let _ = out.flush();
            match open_append(&shared.path) {
                Ok(file) => {
                    out = BufWriter::with_capacity(64 * 1024, file);
                    tracing::info!("{}: reopened {}", shared.owner, shared.path.display());
                }
                Err(e) => tracing::error!("{}: {e}; still writing the old file", shared.owner),
            }
        }
        let Some(line) = line else { continue };
        write_one(&mut out, &line, &shared);
        // Take what else is queued before flushing: one write for a burst.
        while let Ok(line) = lines.try_recv() {
            write_one(&mut out, &line, &shared);
        }
        if out.flush().is_err() {
            shared.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(BATCH_PAUSE);
    }
    let _ = out.flush();
}

fn write_one(out: &mut BufWriter<File>, line: &[u8], shared: &Shared) {
    if line.is_empty() {
        return; // a wake-up (see `reopen`)
    }
    if out
        .write_all(line)
        .and_then(|_| out.write_all(b"\n"))
        .is_ok()
    {
        shared.written.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.write_errors.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_and_reopen_follows_a_rename() {
        let dir = std::env::temp_dir().join(format!("dpm-logw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.log");
        let w = LogWriter::open(&path, 100, "test").unwrap();
        w.write(b"one".to_vec());
        wait_for(|| std::fs::read_to_string(&path).unwrap_or_default() == "one\n");
        std::fs::rename(&path, dir.join("q.log.1")).unwrap();
        w.reopen();
        std::thread::sleep(IDLE_CHECK * 2);
        w.write(b"two".to_vec());
        wait_for(|| std::fs::read_to_string(&path).unwrap_or_default() == "two\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("q.log.1")).unwrap(),
            "one\n"
        );
        assert_eq!(w.diagnostics()["written"], 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unopenable_file_is_an_error() {
        let e = LogWriter::open(Path::new("/nonexistent-dir/q.log"), 1, "t")
            .err()
            .unwrap();
        assert!(
            e.starts_with("cannot open /nonexistent-dir/q.log for appending"),
            "{e}"
        );
    }

    fn wait_for(f: impl Fn() -> bool) {
        for _ in 0..100 {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("condition not met in 2 s");
    }
}
