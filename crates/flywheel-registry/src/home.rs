//! The home folder: `metadata.db`, `artifacts/`, `logs/`, `work/`, and
//! `home.lock`, which every process that opens the home holds shared. A
//! process that gets it exclusively knows no other Flywheel process is using
//! the home, so everything temporary it finds is a leftover of a dead one.

use crate::{RegistryError, Result};
use flywheel_artifacts::ArtifactStore;
use flywheel_metadata::{History, MetadataStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A staging file untouched this long is a leftover even while other
/// processes use the home: writers rename theirs within moments.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Home {
    pub root: PathBuf,
    pub metadata: Arc<MetadataStore>,
    pub artifacts: Arc<ArtifactStore>,
    lock: Arc<HomeLock>,
    /// Whether no other process had the home open when this one opened it
    /// (or, for `doctor --repair`, whether this one holds it exclusively).
    sole: bool,
    /// The log folder each run got in this process.
    log_dirs: Arc<Mutex<HashMap<i64, PathBuf>>>,
}

/// Something temporary a dead process left in the home.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub path: PathBuf,
    pub what: &'static str,
}

impl Home {
    /// Opens (creating if needed) a home folder, checking up front that it is
    /// writable so that no run starts only to fail at its first output.
    /// Refuses a database that is missing or empty beside existing artifacts
    /// or logs; closes runs and executions of dead processes and removes
    /// their work folders and staging files.
    pub fn open(root: &Path) -> Result<Self> {
        prepare(root)?;
        let home = Self::open_stores(root, true)?;
        home.sweep()?;
        home.lock.shared();
        Ok(home)
    }

    /// Opens an existing home for `flywheel doctor`: nothing is reaped or
    /// swept, so that what is wrong can be reported first. With `exclusive`,
    /// holds the home exclusively when no other process uses it, so that
    /// removing unrecorded blobs cannot race with a run recording them.
    pub fn open_for_doctor(root: &Path, exclusive: bool) -> Result<Self> {
        let err = |source| RegistryError::Home { path: root.to_path_buf(), source };
        if !std::fs::metadata(root).map_err(err)?.is_dir() {
            return Err(err(std::io::Error::other("not a folder")));
        }
        let home = Self::open_stores(root, false)?;
        if !(exclusive && home.sole) {
            home.lock.shared();
        }
        Ok(home)
    }

    fn open_stores(root: &Path, reap: bool) -> Result<Self> {
        let err = |source| RegistryError::Home { path: root.to_path_buf(), source };
        let artifacts = ArtifactStore::open_local(&root.join("artifacts"))?;
        let db = root.join("metadata.db");
        // Counting blobs walks the store: only worth it when the database is gone.
        let gone = std::fs::metadata(&db).map_or(true, |m| m.len() == 0);
        let history = if gone {
            History { blobs: artifacts.count_blobs()?, run_logs: count_run_logs(root) }
        } else {
            History::default()
        };
        flywheel_metadata::check_database_file(&db, &history)?;
        let lock = HomeLock::open(&root.join("home.lock")).map_err(err)?;
        let sole = lock.try_exclusive();
        let metadata = if reap { MetadataStore::open(&db)? } else { MetadataStore::open_unreaped(&db)? };
        Ok(Self {
            root: root.to_path_buf(),
            metadata: Arc::new(metadata),
            artifacts: Arc::new(artifacts),
            lock: Arc::new(lock),
            sole,
            log_dirs: Arc::default(),
        })
    }

    /// Whether no other Flywheel process was using the home when it opened.
    pub fn sole(&self) -> bool {
        self.sole
    }

    /// Removes what dead processes left: work folders of executions that are
    /// no longer running, and staging files (all of them when no other
    /// process uses the home, else those untouched for an hour).
    fn sweep(&self) -> Result<()> {
        for l in self.leftovers()? {
            remove_path(&l.path)?;
        }
        self.artifacts.remove_stale_temp((!self.sole).then_some(STALE_TEMP_AGE))?;
        Ok(())
    }

    /// Work folders and write probes under `work/` that no live process
    /// uses: an execution's folder while it is `running` is in use.
    pub fn leftovers(&self) -> Result<Vec<Leftover>> {
        let mut found = Vec::new();
        let work = self.root.join("work");
        let entries = match std::fs::read_dir(&work) {
            Ok(rd) => rd.collect::<std::io::Result<Vec<_>>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        // Read after the folders: an execution is recorded as running before
        // its folder is made, so every folder listed belongs to an execution
        // this read sees running, unless it has ended. Read before, it missed
        // executions another process started meanwhile, and their folders
        // were removed under them (a run of six processes at once failed so).
        let running = self.metadata.running_execution_ids()?;
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let leftover = if let Some(id) = exec_id(&name) {
                (!running.contains(&id)).then_some("work folder")
            } else if let Some(pid) = name.strip_prefix(".write-test-").and_then(|p| p.parse::<i64>().ok()) {
                let mine = pid == i64::from(std::process::id());
                (!mine && (self.sole || !flywheel_metadata::pid_alive(pid))).then_some("write probe")
            } else {
                None
            };
            if let Some(what) = leftover {
                found.push(Leftover { path: entry.path(), what });
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// A run's log folder, `logs/run-<id>`; never one that another run
    /// wrote (a store restarted from scratch beside old logs numbers its runs
    /// from 1 again): that run gets `logs/run-<id>.<n>` instead.
    pub fn logs_dir(&self, run_id: i64) -> PathBuf {
        let mut dirs = self.log_dirs.lock().unwrap_or_else(|e| e.into_inner());
        dirs.entry(run_id).or_insert_with(|| self.claim_logs_dir(run_id)).clone()
    }

    fn claim_logs_dir(&self, run_id: i64) -> PathBuf {
        let base = self.root.join("logs").join(format!("run-{run_id}"));
        let Ok(run) = self.metadata.run(run_id) else { return base };
        let identity = format!(
            "run {run_id} of pipeline {} ({}) started {} on {}\n",
            run.pipeline, run.pipeline_digest, run.started_at, run.host
        );
        for n in 0..1000 {
            let dir = if n == 0 { base.clone() } else { base.with_file_name(format!("run-{run_id}.{n}")) };
            let marker = dir.join(".run");
            match std::fs::create_dir_all(dir.parent().unwrap_or(&dir)).and_then(|_| std::fs::create_dir(&dir)) {
                Ok(()) => {
                    let _ = std::fs::write(&marker, &identity);
                    return dir;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if std::fs::read_to_string(&marker).is_ok_and(|m| m == identity) {
                        return dir;
                    }
                }
                // The launcher reports why it cannot write there.
                Err(_) => return base,
            }
        }
        base
    }

    pub fn work_dir(&self, execution_id: i64, attempt: u32) -> PathBuf {
        self.root.join("work").join(format!("exec-{execution_id}-{attempt}"))
    }
}

/// Creates the folders and checks the home is writable.
fn prepare(root: &Path) -> Result<()> {
    let err = |source| RegistryError::Home { path: root.to_path_buf(), source };
    for sub in ["artifacts", "logs", "work"] {
        std::fs::create_dir_all(root.join(sub)).map_err(err)?;
    }
    let probe = root.join("work").join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// `exec-<id>-<attempt>` → id.
fn exec_id(name: &str) -> Option<i64> {
    let (id, attempt) = name.strip_prefix("exec-")?.split_once('-')?;
    attempt.parse::<u32>().ok()?;
    id.parse().ok()
}

fn count_run_logs(root: &Path) -> usize {
    std::fs::read_dir(root.join("logs")).map_or(0, |rd| {
        rd.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("run-") && e.path().is_dir())
            .count()
    })
}

pub(crate) fn remove_path(path: &Path) -> Result<()> {
    let r = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(RegistryError::Io(std::io::Error::new(e.kind(), format!("cannot remove {}: {e}", path.display()))))
        }
    }
}

/// `flock` on `home.lock`: shared while a process uses the home, exclusive
/// for the moments it cleans up after dead ones. The kernel drops it when
/// the process dies, however it dies.
struct HomeLock {
    #[cfg_attr(not(unix), allow(dead_code))]
    file: std::fs::File,
}

impl HomeLock {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path)?;
        Ok(Self { file })
    }

    /// Takes the lock exclusively if nobody holds it; otherwise waits for a
    /// shared hold and returns false.
    fn try_exclusive(&self) -> bool {
        if self.flock(libc_flags::EXCLUSIVE_NOW) {
            return true;
        }
        self.shared();
        false
    }

    /// Holds the lock shared (downgrading an exclusive hold), waiting while
    /// another process cleans up.
    fn shared(&self) {
        // Without flock (some network file systems) the home is simply
        // treated as shared with others: nothing young is removed.
        let _ = self.flock(libc_flags::SHARED);
    }

    #[cfg(unix)]
    fn flock(&self, op: i32) -> bool {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor this struct owns.
            let r = unsafe { libc::flock(self.file.as_raw_fd(), op) };
            if r == 0 {
                return true;
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return false;
            }
        }
    }

    #[cfg(not(unix))]
    fn flock(&self, _op: i32) -> bool {
        false
    }
}

mod libc_flags {
    #[cfg(unix)]
    pub const EXCLUSIVE_NOW: i32 = libc::LOCK_EX | libc::LOCK_NB;
    #[cfg(unix)]
    pub const SHARED: i32 = libc::LOCK_SH;
    #[cfg(not(unix))]
    pub const EXCLUSIVE_NOW: i32 = 0;
    #[cfg(not(unix))]
    pub const SHARED: i32 = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_second_open_knows_it_is_not_alone_and_keeps_work_folders_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let first = Home::open(dir.path()).unwrap();
        assert!(first.sole());
        let meta = &first.metadata;
        let p = meta.upsert_pipeline("p", "d", "p.toml", "").unwrap();
        let run = meta.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        let busy = meta.start_execution(run, "a", "command", "1", &json!({}), None, "log", &[]).unwrap();
        std::fs::create_dir_all(first.work_dir(busy, 1)).unwrap();
        std::fs::create_dir_all(first.work_dir(busy + 100, 1)).unwrap();
        let staging = dir.path().join("artifacts/blobs/ab").join(format!("{}#1", "ab".repeat(32)));
        std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
        std::fs::write(&staging, "being written").unwrap();

        // (Home::open would take this process's own run for a dead one.)
        let second = Home::open_for_doctor(dir.path(), true).unwrap();
        assert!(!second.sole(), "the first still holds the home");
        let left: Vec<PathBuf> = second.leftovers().unwrap().into_iter().map(|l| l.path).collect();
        assert_eq!(left, [first.work_dir(busy + 100, 1)], "a running execution's folder is in use");
        second.sweep().unwrap();
        assert!(first.work_dir(busy, 1).exists());
        assert!(staging.exists(), "young staging files of a live process stay");
        drop((first, second));
        let third = Home::open(dir.path()).unwrap();
        assert!(third.sole());
        assert!(!staging.exists());
    }

    #[test]
    fn a_log_folder_written_by_another_run_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("logs/run-1")).unwrap();
        std::fs::write(dir.path().join("logs/run-1/a.log"), "an older history\n").unwrap();
        let p = home.metadata.upsert_pipeline("p", "d", "p.toml", "").unwrap();
        let run = home.metadata.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        assert_eq!(run, 1);
        let logs = home.logs_dir(run);
        assert_eq!(logs, dir.path().join("logs/run-1.1"));
        assert_eq!(home.logs_dir(run), logs);
        // Another process (a resume) finds the same folder by its marker.
        let again = Home::open(dir.path()).unwrap();
        assert_eq!(again.logs_dir(run), logs);
        let run2 = home.metadata.create_run(p, &json!({}), &json!({}), "manual", "t").unwrap();
        assert_eq!(home.logs_dir(run2), dir.path().join("logs/run-2"));
    }
}
