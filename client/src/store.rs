//! Local persistence on the phone: one append-only file of change chunks per document.
//!
//! A write appends and fsyncs before the edit counts as made. A crash in the middle of an
//! append leaves a torn last chunk, which loading ignores (the change is then simply not
//! there, and was never acknowledged to anyone).

use std::path::PathBuf;

use fieldsync_protocol::{DocumentId, StorageId};
use tokio::io::AsyncWriteExt;

/// Where a replica keeps its documents.
#[derive(Debug, Clone)]
pub enum Store {
    /// Nothing survives the process (simulations, tests).
    Memory,
    /// A directory of its own.
    Dir(PathBuf),
}

impl Store {
    fn docs_dir(dir: &std::path::Path) -> PathBuf {
        dir.join("docs")
    }

    /// This store's stable id, created on first use.
    pub(crate) async fn storage_id(&self) -> std::io::Result<StorageId> {
        let fresh =
            || StorageId::parse(&uuid::Uuid::new_v4().to_string()).expect("a uuid is a storage id");
        let Self::Dir(dir) = self else {
            return Ok(fresh());
        };
        tokio::fs::create_dir_all(Self::docs_dir(dir)).await?;
        let path = dir.join("storage-id");
        match tokio::fs::read_to_string(&path).await {
            Ok(s) => StorageId::parse(s.trim())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = fresh();
                let tmp = dir.join("storage-id.tmp");
                tokio::fs::write(&tmp, id.as_str()).await?;
                tokio::fs::rename(&tmp, &path).await?;
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn load_documents(&self) -> std::io::Result<Vec<(DocumentId, Vec<u8>)>> {
        let Self::Dir(dir) = self else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut entries = tokio::fs::read_dir(Self::docs_dir(dir)).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".automerge"))
                .and_then(|n| DocumentId::parse(n).ok())
            else {
                continue;
            };
            out.push((id, tokio::fs::read(entry.path()).await?));
        }
        Ok(out)
    }

    pub(crate) async fn append(&self, id: DocumentId, bytes: &[u8]) -> std::io::Result<()> {
        let Self::Dir(dir) = self else {
            return Ok(());
        };
        let path = Self::docs_dir(dir).join(format!("{id}.automerge"));
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        file.write_all(bytes).await?;
        file.sync_data().await?;
        Ok(())
    }
}

impl Store {
    fn sync_path(dir: &std::path::Path, server: &StorageId, id: DocumentId) -> Option<PathBuf> {
        // Storage ids are free text on the wire: only a plain one names a directory.
        let plain = server
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
        plain.then(|| dir.join("sync").join(server.as_str()).join(id.to_string()))
    }

    /// The sync state kept for a server's storage, if any.
    pub(crate) async fn load_sync_state(
        &self,
        server: &StorageId,
        id: DocumentId,
    ) -> Option<Vec<u8>> {
        let Self::Dir(dir) = self else { return None };
        tokio::fs::read(Self::sync_path(dir, server, id)?)
            .await
            .ok()
    }

    /// Keeps a sync state (best effort: losing one costs a longer exchange, nothing more).
    pub(crate) async fn save_sync_state(&self, server: &StorageId, id: DocumentId, state: &[u8]) {
        let Self::Dir(dir) = self else { return };
        let Some(path) = Self::sync_path(dir, server, id) else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let write = async {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::write(&tmp, state).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            tracing::debug!("sync state not saved: {e}");
        }
    }

    /// Deletes one document and its sync states.
    pub(crate) async fn remove(&self, id: DocumentId) -> std::io::Result<()> {
        let Self::Dir(dir) = self else { return Ok(()) };
        match tokio::fs::remove_file(Self::docs_dir(dir).join(format!("{id}.automerge"))).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Ok(mut servers) = tokio::fs::read_dir(dir.join("sync")).await {
            while let Ok(Some(server)) = servers.next_entry().await {
                let _ = tokio::fs::remove_file(server.path().join(id.to_string())).await;
            }
        }
        Ok(())
    }

    /// Deletes every document and sync state (the device was revoked).
    pub(crate) async fn wipe(&self) -> std::io::Result<()> {
        let Self::Dir(dir) = self else { return Ok(()) };
        for sub in [Self::docs_dir(dir), dir.join("sync")] {
            match tokio::fs::remove_dir_all(&sub).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        tokio::fs::create_dir_all(Self::docs_dir(dir)).await
    }
}
