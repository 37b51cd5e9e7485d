//! What lies in the blob folder: blobs, and staging files that a writer
//! killed between writing and renaming leaves behind. `flywheel doctor` and
//! the home's open-time sweep use these to find orphans and leftovers.

use crate::{ArtifactError, ArtifactStore, BlobState, hash_blob};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A file under `blobs/` named by a digest.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub digest: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// A staging file (`<digest>#<n>`): a blob being written, or the leftover
/// of a writer that died before renaming it into place.
#[derive(Debug, Clone)]
pub struct TempFile {
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// How long ago a file was last written (zero when unknown or in the future).
fn age(modified: Option<SystemTime>) -> Duration {
    modified.and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default()
}

impl TempFile {
    pub fn age(&self) -> Duration {
        age(self.modified)
    }
}

impl BlobFile {
    pub fn age(&self) -> Duration {
        age(self.modified)
    }
}

#[derive(Debug, Default)]
pub struct Listing {
    pub blobs: Vec<BlobFile>,
    pub temp: Vec<TempFile>,
}

/// What [`ArtifactStore::remove_if_corrupt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The blob was corrupt and is gone.
    Removed,
    /// The blob was intact after all (rewritten meanwhile) and stays.
    Kept,
    Missing,
}

fn is_digest(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<digest>#<suffix>`: object_store's staging name, or our quarantine name.
fn is_staging(name: &str) -> bool {
    name.split_once('#').is_some_and(|(d, suffix)| is_digest(d) && !suffix.is_empty())
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, ArtifactError> {
    let err = |source| ArtifactError::ReadFile { path: dir.to_path_buf(), source };
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>().map_err(err),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(e)),
    }
}

impl ArtifactStore {
    fn blobs_dir(&self) -> PathBuf {
        self.local_root.join("blobs")
    }

    /// Every blob and staging file, without reading their content. Files
    /// with other names are not the store's and are left out.
    pub fn list(&self) -> Result<Listing, ArtifactError> {
        let mut listing = Listing::default();
        for prefix in read_dir(&self.blobs_dir())? {
            if !prefix.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for entry in read_dir(&prefix.path())? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let (size, modified, path) = (meta.len(), meta.modified().ok(), entry.path());
                if is_digest(&name) {
                    listing.blobs.push(BlobFile { digest: name, path, size, modified });
                } else if is_staging(&name) {
                    listing.temp.push(TempFile { path, size, modified });
                }
            }
        }
        listing.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        listing.temp.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listing)
    }

    /// Whether there is any blob at all (a home with blobs has a history).
    pub fn count_blobs(&self) -> Result<usize, ArtifactError> {
        Ok(self.list()?.blobs.len())
    }

    /// Removes a staging file found by [`ArtifactStore::list`]; a file that
    /// is already gone is fine.
    pub fn remove_temp(&self, file: &TempFile) -> Result<(), ArtifactError> {
        let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !is_staging(&name) || !file.path.starts_with(self.blobs_dir()) {
            return Ok(());
        }
        remove_file(&file.path)
    }

    /// Removes staging files last written more than `older_than` ago (all of
    /// them with `None`); returns the paths removed.
    pub fn remove_stale_temp(&self, older_than: Option<Duration>) -> Result<Vec<PathBuf>, ArtifactError> {
        let mut removed = Vec::new();
        for t in self.list()?.temp {
            if older_than.is_none_or(|limit| t.age() > limit) {
                self.remove_temp(&t)?;
                removed.push(t.path);
            }
        }
        Ok(removed)
    }

    /// Removes a blob no artifact names. The caller makes sure no other
    /// process is about to record it.
    pub fn remove_orphan(&self, blob: &BlobFile) -> Result<(), ArtifactError> {
        if !is_digest(&blob.digest) {
            return Ok(());
        }
        self.remember(&blob.digest, None);
        remove_file(&self.blob_path(&blob.digest))
    }

    /// Removes the blob of `digest` only if its content does not match. The
    /// blob is first moved aside and hashed there, so a good copy that a
    /// writer renamed into place meanwhile is never the one deleted.
    pub fn remove_if_corrupt(&self, digest: &str) -> Result<Removal, ArtifactError> {
        let path = self.blob_path(digest);
        let aside = path.with_file_name(format!("{digest}#doctor-{}", std::process::id()));
        self.remember(digest, None);
        match std::fs::rename(&path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Missing),
            Err(source) => return Err(ArtifactError::ReadFile { path, source }),
        }
        if hash_blob(&aside, digest, None)?.0 == BlobState::Intact {
            // Put it back unless a writer already stored another good copy.
            match std::fs::hard_link(&aside, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(ArtifactError::ReadFile { path, source }),
            }
            remove_file(&aside)?;
            return Ok(Removal::Kept);
        }
        remove_file(&aside)?;
        Ok(Removal::Removed)
    }
}

fn remove_file(path: &Path) -> Result<(), ArtifactError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ArtifactError::Remove { path: path.to_path_buf(), source }),
    }
}
