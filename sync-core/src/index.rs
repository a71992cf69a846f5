//! The index document: each user's read-only list of the documents in their caseload, written
//! only by the server and read by the phones (a replacement phone finds its whole caseload from
//! this one document's URL).
//!
//! Its shape, the one promise both sides share:
//!
//! ```text
//! { "type": "index", "schema": 1, "user": <user id>,
//!   "documents": { <document id>: { "url": "automerge:…", "type": <doc type>, "area": <region> } } }
//! ```
//!
//! Phones cannot make one: the write rules accept only field documents.

use std::collections::HashMap;

use automerge::transaction::{Transactable, Transaction};
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fieldsync_protocol::DocumentId;

/// The value of `type` that marks an index document.
pub const INDEX_TYPE: &str = "index";
/// Bytes of memory a loaded index holds per byte stored: 100,000 entries stored in 4.6 MiB
/// held 22 MiB (measured). Counted as a field document (28), such an index took half of the
/// default cache budget and pushed out the documents in use around it.
pub const MEMORY_RATIO: usize = 5;
/// The key of the map of listed documents.
const DOCUMENTS: &str = "documents";

/// One line of an index: `documents[<id>] = {url, type, area}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub url: String,
    /// The document's type (`visit`, `referral`, `outreach`).
    pub kind: String,
    /// The document's region code, dotted.
    pub area: String,
}

/// Makes the root an index of `owner` if it is not one yet.
pub fn ensure_index(tx: &mut Transaction<'_>, owner: &str) -> Result<(), AutomergeError> {
    if tx.get(ROOT, DOCUMENTS)?.is_none() {
        tx.put(ROOT, "type", INDEX_TYPE)?;
        // An int, as JS writes numbers; a uint would reach JS apps as a BigInt.
        tx.put(ROOT, "schema", 1_i64)?;
        tx.put(ROOT, "user", owner)?;
        tx.put_object(ROOT, DOCUMENTS, ObjType::Map)?;
    }
    Ok(())
}

/// The document ids an index lists, as written (unparsed).
pub fn listed(doc: &impl ReadDoc) -> Vec<String> {
    match doc.get(ROOT, DOCUMENTS) {
        Ok(Some((_, map))) => doc.keys(&map).collect(),
        _ => Vec::new(),
    }
}

/// The documents an index lists, or `None` if `doc` is not an index (yet). Ids that do not
/// parse are left out.
pub fn index_entries(doc: &impl ReadDoc) -> Option<Vec<DocumentId>> {
    let (_, map) = doc.get(ROOT, DOCUMENTS).ok().flatten()?;
    Some(
        doc.keys(&map)
            .filter_map(|k| DocumentId::parse(&k).ok())
            .collect(),
    )
}

/// Every entry an index lists, by document id (as written, unparsed); `None` if `doc` is not
/// an index (yet). One pass, for comparing a whole caseload against the index.
pub fn entries(doc: &impl ReadDoc) -> Option<HashMap<String, IndexEntry>> {
    let (_, map) = doc.get(ROOT, DOCUMENTS).ok().flatten()?;
    Some(
        doc.keys(&map)
            .filter_map(|id| entry_in(doc, &map, &id).map(|entry| (id, entry)))
            .collect(),
    )
}

/// The entry an index has for the document `id` (as written, unparsed), if any.
pub fn listed_as(doc: &impl ReadDoc, id: &str) -> Option<IndexEntry> {
    let (_, map) = doc.get(ROOT, DOCUMENTS).ok().flatten()?;
    entry_in(doc, &map, id)
}

/// The entry for `id` in the index's map of documents `map`.
fn entry_in(doc: &impl ReadDoc, map: &automerge::ObjId, id: &str) -> Option<IndexEntry> {
    let (_, obj) = doc.get(map, id).ok().flatten()?;
    let field = |key: &str| {
        doc.get(&obj, key)
            .ok()
            .flatten()
            .and_then(|(v, _)| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    Some(IndexEntry {
        url: field("url"),
        kind: field("type"),
        area: field("area"),
    })
}

/// Adds or updates entries and removes others; writes nothing that is already so.
pub fn put_entries(
    tx: &mut Transaction<'_>,
    put: &[(String, IndexEntry)],
    remove: &[String],
) -> Result<(), AutomergeError> {
    let Some((_, map)) = tx.get(ROOT, DOCUMENTS)? else {
        return Ok(());
    };
    for (doc, entry) in put {
        if entry_in(tx, &map, doc).as_ref() == Some(entry) {
            continue;
        }
        let obj = tx.put_object(&map, doc.as_str(), ObjType::Map)?;
        tx.put(&obj, "url", entry.url.as_str())?;
        tx.put(&obj, "type", entry.kind.as_str())?;
        tx.put(&obj, "area", entry.area.as_str())?;
    }
    for doc in remove {
        if tx.get(&map, doc.as_str())?.is_some() {
            tx.delete(&map, doc.as_str())?;
        }
    }
    Ok(())
}

/// The user an index document belongs to (`{"type": "index", "user": …}`); `None` for any
/// other document. Strings are read as scalars or as text (a JS writer makes text).
pub fn index_owner(doc: &impl ReadDoc) -> Option<String> {
    let text = |key: &str| match doc.get(ROOT, key).ok().flatten() {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        Some((Value::Object(ObjType::Text), id)) => doc.text(&id).ok(),
        _ => None,
    };
    (text("type").as_deref() == Some(INDEX_TYPE))
        .then(|| text("user"))
        .flatten()
}
