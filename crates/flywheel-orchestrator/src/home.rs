//! The home folder: `metadata.db`, `artifacts/`, `logs/`, `work/`.

use crate::{OrchestratorError, Result};
use flywheel_artifacts::ArtifactStore;
use flywheel_metadata::MetadataStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct Home {
    pub root: PathBuf,
    pub metadata: Arc<MetadataStore>,
    pub artifacts: Arc<ArtifactStore>,
}

impl Home {
    /// Opens (creating if needed) a home folder, checking up front that it is
    /// writable so that no run starts only to fail at its first output.
    pub fn open(root: &Path) -> Result<Self> {
        let err = |source| OrchestratorError::Home { path: root.to_path_buf(), source };
        for sub in ["artifacts", "logs", "work"] {
            std::fs::create_dir_all(root.join(sub)).map_err(err)?;
        }
        let probe = root.join("work").join(format!(".write-test-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(err)?;
        let _ = std::fs::remove_file(&probe);
        let metadata = MetadataStore::open(&root.join("metadata.db"))?;
        let artifacts = ArtifactStore::open_local(&root.join("artifacts"))?;
        Ok(Self { root: root.to_path_buf(), metadata: Arc::new(metadata), artifacts: Arc::new(artifacts) })
    }

    pub fn logs_dir(&self, run_id: i64) -> PathBuf {
        self.root.join("logs").join(format!("run-{run_id}"))
    }

    pub fn work_dir(&self, execution_id: i64, attempt: u32) -> PathBuf {
        self.root.join("work").join(format!("exec-{execution_id}-{attempt}"))
    }
}
