//! What makes the chunk table safe to share between processes: which stored rows a
//! compaction snapshot covers, what this process holds of each document, and the per-document
//! lock key.
//!
//! Several `fieldsync serve` processes may append to one document's chunks at the same time.
//! A process's in-memory document then lacks what the others stored since it loaded, so its
//! compaction deletes only the rows whose every change its snapshot contains ([`covered`]),
//! and its query rows are written only from a state that includes every stored chunk
//! ([`Held`]).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use fieldsync_core::automerge::{Change, ChangeHash};
use fieldsync_protocol::DocumentId;

/// The first bytes of every Automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Magic, checksum and chunk type, before the length.
const FIXED_HEADER: usize = 9;
const DOCUMENT_CHUNK: u8 = 0;
const CHANGE_CHUNK: u8 = 1;
const COMPRESSED_CHANGE_CHUNK: u8 = 2;

/// Whether every change stored in `row` (one or more Automerge chunks, concatenated) is one of
/// `covers`, the hashes of every change of a snapshot. A change chunk is covered by its hash
/// (compressed or not); a document chunk (an earlier snapshot) when all its heads are, since
/// `covers` comes from a whole document and so holds every ancestor of what it holds. A row
/// that does not parse, or holds another kind of chunk, is never covered: compaction keeps
/// what it cannot account for.
pub(super) fn covered(row: &[u8], covers: &HashSet<ChangeHash>) -> bool {
    let Some(chunks) = split(row) else {
        return false;
    };
    !chunks.is_empty()
        && chunks.into_iter().all(|(kind, chunk)| match kind {
            CHANGE_CHUNK | COMPRESSED_CHANGE_CHUNK => {
                Change::try_from(chunk).is_ok_and(|c| covers.contains(&c.hash()))
            }
            DOCUMENT_CHUNK => {
                document_heads(chunk).is_some_and(|heads| heads.iter().all(|h| covers.contains(h)))
            }
            _ => false,
        })
}

/// The chunks of a row with their types, or `None` if it is not a sequence of whole chunks.
fn split(mut bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < FIXED_HEADER || bytes[..4] != MAGIC {
            return None;
        }
        let kind = bytes[8];
        let (len, len_bytes) = uleb128(&bytes[FIXED_HEADER..])?;
        let end = FIXED_HEADER
            .checked_add(len_bytes)?
            .checked_add(usize::try_from(len).ok()?)?;
        if end > bytes.len() {
            return None;
        }
        chunks.push((kind, &bytes[..end]));
        bytes = &bytes[end..];
    }
    Some(chunks)
}

/// The heads a whole document chunk records, read from its uncompressed prefix: the actors
/// (a count, then each length-prefixed), then the heads (a count, then 32 bytes each).
fn document_heads(chunk: &[u8]) -> Option<Vec<ChangeHash>> {
    let (_, len_bytes) = uleb128(&chunk[FIXED_HEADER..])?;
    let mut rest = chunk.get(FIXED_HEADER + len_bytes..)?;
    let (actors, n) = uleb128(rest)?;
    rest = rest.get(n..)?;
    for _ in 0..actors {
        let (len, n) = uleb128(rest)?;
        rest = rest.get(n.checked_add(usize::try_from(len).ok()?)?..)?;
    }
    let (heads, n) = uleb128(rest)?;
    rest = rest.get(n..)?;
    let heads = usize::try_from(heads).ok()?;
    let bytes = rest.get(..heads.checked_mul(32)?)?;
    bytes
        .chunks_exact(32)
        .map(|h| ChangeHash::try_from(h).ok())
        .collect()
}

/// An unsigned LEB128 number and how many bytes it took.
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The newest chunk id this process's document actor holds of each document: set when the
/// actor loads it, advanced by this process's own appends and compactions only while nothing
/// from another process is in between. A document missing here counts as holding nothing.
///
/// On PostgreSQL every transaction that inserts a document's chunk holds that document's
/// advisory lock until it commits ([`lock_key`]), so a document's chunk ids are committed in
/// increasing order: "a chunk with a higher id than we hold exists" means exactly "another
/// process stored something we lack". (SQLite commits one transaction at a time and never
/// reuses an id: `AUTOINCREMENT`.)
#[derive(Debug, Default)]
pub(super) struct Held(Mutex<HashMap<DocumentId, i64>>);

impl Held {
    pub(super) fn get(&self, doc: DocumentId) -> i64 {
        self.lock().get(&doc).copied().unwrap_or(0)
    }

    /// The actor loaded every chunk up to `newest` (0: none).
    pub(super) fn loaded(&self, doc: DocumentId, newest: i64) {
        self.lock().insert(doc, newest);
    }

    pub(super) fn forget(&self, doc: DocumentId) {
        self.lock().remove(&doc);
    }

    /// A committed transaction's advances.
    pub(super) fn advance(&self, committed: HashMap<DocumentId, i64>) {
        self.lock().extend(committed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DocumentId, i64>> {
        self.0.lock().expect("held chunks lock poisoned")
    }
}

/// The first key of fieldsync's per-document advisory locks (`pg_advisory_xact_lock(int,
/// int)`), apart from any other use of advisory locks in the database.
pub(super) const DOCUMENT_LOCKS: i32 = 0x6673_0001;

/// The second key of a document's advisory lock: FNV-1a of its id. Two documents may share a
/// key; they then only wait for each other.
pub(super) fn lock_key(doc: DocumentId) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in doc.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldsync_core::automerge::transaction::Transactable;
    use fieldsync_core::automerge::{AutoCommit, ROOT, ReadDoc};

    /// `n` changes, each setting a new key, as one row.
    fn changes(doc: &mut AutoCommit, n: usize) -> Vec<u8> {
        let heads = doc.get_heads();
        let start = doc.length(ROOT);
        for i in start..start + n {
            doc.put(ROOT, format!("k{i}"), i as i64).unwrap();
            doc.commit();
        }
        doc.save_after(&heads)
    }

    fn hashes(doc: &mut AutoCommit) -> HashSet<ChangeHash> {
        doc.document()
            .get_changes_meta(&[])
            .into_iter()
            .map(|c| c.hash)
            .collect()
    }

    #[test]
    fn rows_of_changes_are_covered_only_when_every_change_is() {
        let mut doc = AutoCommit::new();
        let row = changes(&mut doc, 3);
        let covers = hashes(&mut doc);
        assert!(covered(&row, &covers));
        let mut other = doc.fork();
        let theirs = changes(&mut other, 1);
        let mut mixed = row.clone();
        mixed.extend_from_slice(&theirs);
        assert!(!theirs.is_empty());
        assert!(!covered(&theirs, &covers));
        assert!(
            !covered(&mixed, &covers),
            "one unknown change keeps the row"
        );
    }

    #[test]
    fn a_snapshot_is_covered_when_its_heads_are() {
        let mut doc = AutoCommit::new();
        changes(&mut doc, 2);
        let snapshot = doc.save();
        let mut later = doc.fork();
        changes(&mut later, 1);
        assert!(covered(&snapshot, &hashes(&mut later)));
        let mut elsewhere = AutoCommit::new();
        changes(&mut elsewhere, 1);
        assert!(!covered(&snapshot, &hashes(&mut elsewhere)));
    }

    #[test]
    fn what_does_not_parse_is_never_covered() {
        let mut doc = AutoCommit::new();
        let row = changes(&mut doc, 2);
        let covers = hashes(&mut doc);
        assert!(!covered(&row[..row.len() - 1], &covers), "torn");
        assert!(!covered(b"not automerge", &covers));
        assert!(!covered(&[], &covers));
    }
}
