//! Content-addressed artifact store.
//!
//! Every artifact is stored once under its blake3 digest
//! (`blobs/<first two hex digits>/<digest>`), so identical outputs of
//! different steps or runs share storage and a cache hit only needs the
//! digest. Built on `object_store`: the local folder is the default, and the
//! same code can point at S3-compatible storage later. Writes are atomic
//! (object_store's local backend writes a staging file and renames it), so a
//! killed process never leaves a half-written blob under a digest.

mod scan;

pub use scan::{BlobFile, Listing, Removal, TempFile};

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot use artifact folder {}: {source}", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error(
        "artifact {digest} is not in the store (expected at {}); re-run the step that produced it (its cache entry no longer counts), or see `flywheel doctor`",
        path.display()
    )]
    Missing { digest: String, path: PathBuf },
    #[error(
        "artifact {digest} at {} is corrupted: its content hashes to {actual}; re-run the step that produced it (its next run rewrites it), or run `flywheel doctor --repair` to remove it",
        path.display()
    )]
    Corrupted { digest: String, actual: String, path: PathBuf },
}

/// What the store knows about one stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub digest: String,
    pub size: u64,
    pub uri: String,
}

/// Whether a blob holds the content its name promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobState {
    Missing,
    Intact,
    Corrupt { actual: String, size: u64 },
}

/// A file's size and modification time: a blob hashed once is hashed again
/// only when either changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Stamp { size: meta.len(), modified: meta.modified().ok() }
    }
}

pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// For the local backend, the folder blobs live in: inputs are handed to
    /// components in place, without a copy.
    local_root: PathBuf,
    /// Blobs this process hashed and found intact, with the stamp they had.
    verified: Mutex<HashMap<String, Stamp>>,
}

fn key(digest: &str) -> StorePath {
    let prefix = digest.get(..2).unwrap_or("00");
    StorePath::from(format!("blobs/{prefix}/{digest}"))
}

/// blake3 of a file, streamed.
pub fn digest_file(path: &Path) -> Result<(String, u64), std::io::Error> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// Hashes the blob at `path` unless `known` says it was found intact with
/// the same stamp. Returns the state and, when intact, the stamp to remember.
fn hash_blob(path: &Path, digest: &str, known: Option<Stamp>) -> Result<(BlobState, Option<Stamp>), ArtifactError> {
    let read_err = |source| ArtifactError::ReadFile { path: path.to_path_buf(), source };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BlobState::Missing, None)),
        Err(e) => return Err(read_err(e)),
    };
    // Taken before hashing: a change while hashing leaves a stamp that no
    // longer matches, so the blob is hashed again next time.
    let stamp = Stamp::of(&meta);
    if known == Some(stamp) {
        return Ok((BlobState::Intact, Some(stamp)));
    }
    let (actual, size) = match digest_file(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BlobState::Missing, None)),
        Err(e) => return Err(read_err(e)),
    };
    if actual == digest {
        Ok((BlobState::Intact, Some(stamp)))
    } else {
        Ok((BlobState::Corrupt { actual, size }, None))
    }
}

impl ArtifactStore {
    /// Opens (creating if needed) a store in a local folder.
    pub fn open_local(root: &Path) -> Result<Self, ArtifactError> {
        let err = |source| ArtifactError::Root { path: root.to_path_buf(), source };
        std::fs::create_dir_all(root).map_err(err)?;
        let root = std::fs::canonicalize(root).map_err(err)?;
        let fs = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self { store: Arc::new(fs), local_root: root, verified: Mutex::new(HashMap::new()) })
    }

    pub fn uri(&self, digest: &str) -> String {
        format!("file://{}", self.blob_path(digest).display())
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.local_root.join(key(digest).as_ref())
    }

    fn remembered(&self, digest: &str) -> Option<Stamp> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(digest).copied()
    }

    fn remember(&self, digest: &str, stamp: Option<Stamp>) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        match stamp {
            Some(s) => verified.insert(digest.to_string(), s),
            None => verified.remove(digest),
        };
    }

    /// Hashes the blob of `digest` (once per process while its size and
    /// modification time stay the same) and says whether it is intact.
    pub async fn state(&self, digest: &str) -> Result<BlobState, ArtifactError> {
        let path = self.blob_path(digest);
        let known = self.remembered(digest);
        let owned = digest.to_string();
        let (state, stamp) =
            tokio::task::spawn_blocking(move || hash_blob(&path, &owned, known)).await.map_err(|e| {
                ArtifactError::ReadFile { path: self.blob_path(digest), source: std::io::Error::other(e) }
            })??;
        self.remember(digest, stamp);
        Ok(state)
    }

    /// Stores a file under its digest. Storing content that is already
    /// stored intact is a no-op; a blob under that digest whose content does
    /// not match (truncated, overwritten) is replaced atomically.
    pub async fn put_file(&self, path: &Path) -> Result<StoredArtifact, ArtifactError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| ArtifactError::ReadFile { path: path.to_path_buf(), source })?;
        self.put_bytes(bytes).await
    }

    pub async fn put_bytes(&self, bytes: Vec<u8>) -> Result<StoredArtifact, ArtifactError> {
        let digest = flywheel_core::digest_bytes(&bytes);
        let size = bytes.len() as u64;
        if self.state(&digest).await? != BlobState::Intact {
            // object_store writes a staging file and renames it over the
            // blob: readers see the old file or the whole new one.
            self.store.put(&key(&digest), PutPayload::from(bytes)).await?;
            let stamp = std::fs::metadata(self.blob_path(&digest)).ok().map(|m| Stamp::of(&m));
            self.remember(&digest, stamp);
        }
        Ok(StoredArtifact { uri: self.uri(&digest), digest, size })
    }

    /// Whether the store holds the artifact intact: a blob whose content does
    /// not match its digest counts as absent, so a cache hit on it misses and
    /// its producer runs again (and rewrites it).
    pub async fn contains(&self, digest: &str) -> Result<bool, ArtifactError> {
        Ok(self.state(digest).await? == BlobState::Intact)
    }

    /// A local path holding the artifact's bytes, for handing to a component;
    /// an error naming the digest, the path and what to do when the blob is
    /// missing or its content does not match.
    pub async fn local_path(&self, digest: &str) -> Result<PathBuf, ArtifactError> {
        let path = self.blob_path(digest);
        match self.state(digest).await? {
            BlobState::Intact => Ok(path),
            BlobState::Missing => Err(ArtifactError::Missing { digest: digest.to_string(), path }),
            BlobState::Corrupt { actual, .. } => {
                Err(ArtifactError::Corrupted { digest: digest.to_string(), actual, path })
            }
        }
    }

    /// The artifact's bytes, checked against its digest.
    pub async fn read(&self, digest: &str) -> Result<Vec<u8>, ArtifactError> {
        let path = self.blob_path(digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::Missing { digest: digest.to_string(), path });
            }
            Err(source) => return Err(ArtifactError::ReadFile { path, source }),
        };
        let actual = flywheel_core::digest_bytes(&bytes);
        if actual != digest {
            return Err(ArtifactError::Corrupted { digest: digest.to_string(), actual, path });
        }
        Ok(bytes)
    }

    /// Re-hashes a stored artifact and compares it with its address.
    pub async fn verify(&self, digest: &str) -> Result<(), ArtifactError> {
        self.local_path(digest).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ArtifactStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open_local(&dir.path().join("artifacts")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn stores_by_content_once() {
        let (dir, store) = store();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, b"hello").unwrap();
        let a = store.put_file(&f).await.unwrap();
        let b = store.put_bytes(b"hello".to_vec()).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.size, 5);
        assert_eq!(a.digest, blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(std::fs::read(store.local_path(&a.digest).await.unwrap()).unwrap(), b"hello");
        store.verify(&a.digest).await.unwrap();
        // no staging files left beside the blob
        let blob_dir = store.local_path(&a.digest).await.unwrap().parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(blob_dir).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn missing_and_corrupted_are_reported_with_digest_path_and_remedy() {
        let (_dir, store) = store();
        let missing = store.local_path("ab12").await.unwrap_err();
        assert!(matches!(missing, ArtifactError::Missing { .. }));
        assert!(missing.to_string().contains("ab12"), "{missing}");
        let a = store.put_bytes(b"data".to_vec()).await.unwrap();
        let path = store.blob_path(&a.digest);
        std::fs::write(&path, b"tampered").unwrap();
        assert!(matches!(store.verify(&a.digest).await, Err(ArtifactError::Corrupted { .. })));
        let e = store.local_path(&a.digest).await.unwrap_err().to_string();
        assert!(e.contains(&a.digest) && e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("flywheel doctor --repair") && e.contains("re-run the step"), "{e}");
        assert!(matches!(store.read(&a.digest).await, Err(ArtifactError::Corrupted { .. })));
    }

    #[tokio::test]
    async fn a_truncated_blob_is_not_contained_and_put_rewrites_it() {
        let (_dir, store) = store();
        let content = vec![7u8; 10_000];
        let a = store.put_bytes(content.clone()).await.unwrap();
        assert!(store.contains(&a.digest).await.unwrap());
        // Truncated after this process verified it: the changed size and
        // modification time make it hash again.
        let path = store.blob_path(&a.digest);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100).unwrap();
        assert!(!store.contains(&a.digest).await.unwrap());
        assert!(matches!(store.state(&a.digest).await.unwrap(), BlobState::Corrupt { size: 100, .. }));
        let again = store.put_bytes(content.clone()).await.unwrap();
        assert_eq!(again, a);
        assert_eq!(std::fs::read(&path).unwrap(), content);
        assert!(store.contains(&a.digest).await.unwrap());
        // A fresh store (another process) agrees, by hashing.
        let other = ArtifactStore::open_local(path.parent().unwrap().parent().unwrap().parent().unwrap()).unwrap();
        assert_eq!(other.state(&a.digest).await.unwrap(), BlobState::Intact);
    }

    #[tokio::test]
    async fn remove_if_corrupt_removes_only_a_corrupt_blob() {
        let (_dir, store) = store();
        let good = store.put_bytes(b"good".to_vec()).await.unwrap();
        assert_eq!(store.remove_if_corrupt(&good.digest).unwrap(), Removal::Kept);
        assert!(store.contains(&good.digest).await.unwrap());
        let bad = store.put_bytes(b"soon bad".to_vec()).await.unwrap();
        std::fs::write(store.blob_path(&bad.digest), b"bad").unwrap();
        assert_eq!(store.remove_if_corrupt(&bad.digest).unwrap(), Removal::Removed);
        assert!(!store.blob_path(&bad.digest).exists());
        assert_eq!(store.remove_if_corrupt(&bad.digest).unwrap(), Removal::Missing);
        let listing = store.list().unwrap();
        assert_eq!(listing.blobs.len(), 1, "{listing:?}");
        assert!(listing.temp.is_empty(), "{listing:?}");
    }

    #[tokio::test]
    async fn staging_files_are_listed_apart_from_blobs_and_swept() {
        let (_dir, store) = store();
        let a = store.put_bytes(b"x".to_vec()).await.unwrap();
        let staging = store.blob_path(&a.digest).with_file_name(format!("{}#1", a.digest));
        std::fs::write(&staging, b"half").unwrap();
        std::fs::write(store.blob_path(&a.digest).with_file_name("notes.txt"), b"not ours").unwrap();
        let listing = store.list().unwrap();
        assert_eq!(listing.blobs.iter().map(|b| b.digest.as_str()).collect::<Vec<_>>(), [a.digest.as_str()]);
        assert_eq!(listing.temp.len(), 1);
        assert!(store.remove_stale_temp(Some(std::time::Duration::from_secs(3600))).unwrap().is_empty());
        assert_eq!(store.remove_stale_temp(None).unwrap(), std::slice::from_ref(&staging));
        assert!(!staging.exists());
        assert!(store.contains(&a.digest).await.unwrap());
    }
}
