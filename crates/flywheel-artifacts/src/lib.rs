//! Content-addressed artifact store.
//!
//! Every artifact is stored once under its blake3 digest
//! (`blobs/<first two hex digits>/<digest>`), so identical outputs of
//! different steps or runs share storage and a cache hit only needs the
//! digest. Built on `object_store`: the local folder is the default, and the
//! same code can point at S3-compatible storage later. Writes are atomic
//! (object_store's local backend writes a staging file and renames it), so a
//! killed process never leaves a half-written blob under a digest.

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    #[error("artifact {0} is not in the store")]
    Missing(String),
    #[error("artifact {digest} is corrupted: its content hashes to {actual}")]
    Corrupted { digest: String, actual: String },
}

/// What the store knows about one stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub digest: String,
    pub size: u64,
    pub uri: String,
}

pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// For the local backend, the folder blobs live in: inputs are handed to
    /// components in place, without a copy.
    local_root: PathBuf,
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

impl ArtifactStore {
    /// Opens (creating if needed) a store in a local folder.
    pub fn open_local(root: &Path) -> Result<Self, ArtifactError> {
        let err = |source| ArtifactError::Root { path: root.to_path_buf(), source };
        std::fs::create_dir_all(root).map_err(err)?;
        let root = std::fs::canonicalize(root).map_err(err)?;
        let fs = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self { store: Arc::new(fs), local_root: root })
    }

    pub fn uri(&self, digest: &str) -> String {
        format!("file://{}", self.blob_path(digest).display())
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.local_root.join(key(digest).as_ref())
    }

    /// Stores a file under its digest; storing the same content twice is a no-op.
    pub async fn put_file(&self, path: &Path) -> Result<StoredArtifact, ArtifactError> {
        let read_err = |source| ArtifactError::ReadFile { path: path.to_path_buf(), source };
        let (digest, size) = digest_file(path).map_err(read_err)?;
        if !self.contains(&digest).await? {
            let bytes = tokio::fs::read(path).await.map_err(read_err)?;
            self.store.put(&key(&digest), PutPayload::from(bytes)).await?;
        }
        Ok(StoredArtifact { uri: self.uri(&digest), digest, size })
    }

    pub async fn put_bytes(&self, bytes: Vec<u8>) -> Result<StoredArtifact, ArtifactError> {
        let digest = flywheel_core::digest_bytes(&bytes);
        let size = bytes.len() as u64;
        if !self.contains(&digest).await? {
            self.store.put(&key(&digest), PutPayload::from(bytes)).await?;
        }
        Ok(StoredArtifact { uri: self.uri(&digest), digest, size })
    }

    pub async fn contains(&self, digest: &str) -> Result<bool, ArtifactError> {
        match self.store.head(&key(digest)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A local path holding the artifact's bytes, for handing to a component.
    pub async fn local_path(&self, digest: &str) -> Result<PathBuf, ArtifactError> {
        if !self.contains(digest).await? {
            return Err(ArtifactError::Missing(digest.to_string()));
        }
        Ok(self.blob_path(digest))
    }

    pub async fn read(&self, digest: &str) -> Result<Vec<u8>, ArtifactError> {
        match self.store.get(&key(digest)).await {
            Ok(r) => Ok(r.bytes().await?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(ArtifactError::Missing(digest.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Re-hashes a stored artifact and compares it with its address.
    pub async fn verify(&self, digest: &str) -> Result<(), ArtifactError> {
        let bytes = self.read(digest).await?;
        let actual = flywheel_core::digest_bytes(&bytes);
        if actual == digest { Ok(()) } else { Err(ArtifactError::Corrupted { digest: digest.to_string(), actual }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_content_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open_local(&dir.path().join("artifacts")).unwrap();
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
    async fn missing_and_corrupted_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open_local(dir.path()).unwrap();
        assert!(matches!(store.local_path("ab12").await, Err(ArtifactError::Missing(_))));
        let a = store.put_bytes(b"data".to_vec()).await.unwrap();
        std::fs::write(store.local_path(&a.digest).await.unwrap(), b"tampered").unwrap();
        assert!(matches!(store.verify(&a.digest).await, Err(ArtifactError::Corrupted { .. })));
    }
}
