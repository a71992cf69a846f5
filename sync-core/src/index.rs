//! The index documents: each user's read-only list of the documents in their caseload, written
//! only by the server and read by the phones (a replacement phone finds its whole caseload from
//! one URL, its index's).
//!
//! An index is in pages, one per area that holds documents of the caseload, listed by a small
//! root. The root's URL is the one a phone is given:
//!
//! ```text
//! root: { "type": "index", "schema": 2, "user": <user id>,
//!         "pages": { <area>: "automerge:<page id>" } }
//! page: { "type": "index", "schema": 2, "user": <user id>, "page": <area>,
//!         "documents": { <document id>: { "url": "automerge:…", "type": <doc type>, "area": <area> } } }
//! ```
//!
//! A city coordinator's caseload of 100,000 documents was one document of 4.6 MiB: each edit
//! cost in proportion to all of it, it held 22 MiB while loaded, and a phone that fell behind
//! was sent it whole. A page lists one area's few hundred documents, so an edit, a load and a
//! resend cost that much. Schema 1 (before pages) had the `documents` map in the root; the
//! server moves a schema 1 index into pages when it next reconciles it.
//!
//! Every page and root starts with the same first change wherever it is made ([`seed`]): two
//! server processes making one page at once make the same map of documents, not two maps of
//! which Automerge would show only one.
//!
//! Phones cannot make one: the write rules accept only field documents.

use std::collections::{BTreeMap, HashMap};

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fieldsync_protocol::DocumentId;

/// The value of `type` that marks an index document (a root or a page).
pub const INDEX_TYPE: &str = "index";
/// The format version written into every index document.
pub const SCHEMA: i64 = 2;
/// Bytes of memory a loaded index holds per byte stored: 100,000 entries stored in 4.6 MiB
/// held 22 MiB (measured). Counted as a field document (28), such an index took half of the
/// default cache budget and pushed out the documents in use around it.
pub const MEMORY_RATIO: usize = 5;
/// The key of a page's (or a schema 1 root's) map of listed documents.
const DOCUMENTS: &str = "documents";
/// The key of a root's map of pages.
const PAGES: &str = "pages";

/// One line of an index page: `documents[<id>] = {url, type, area}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub url: String,
    /// The document's type (`visit`, `referral`, `outreach`).
    pub kind: String,
    /// The document's region code, dotted.
    pub area: String,
}

/// The first change of the index document `id` of `owner`: its root if `page` is `None`, else
/// its page for that area. Made under an actor id taken from `id` with time 0, so the same
/// bytes wherever and whenever it is made; applied before the server's first edit of it.
pub fn seed(id: DocumentId, owner: &str, page: Option<&str>) -> Vec<u8> {
    let mut doc = Automerge::new().with_actor(ActorId::from(id.as_bytes().as_slice()));
    let mut tx = doc.transaction();
    let made: Result<(), AutomergeError> = (|| {
        tx.put(ROOT, "type", INDEX_TYPE)?;
        tx.put(ROOT, "user", owner)?;
        match page {
            Some(area) => {
                tx.put(ROOT, "page", area)?;
                tx.put_object(ROOT, DOCUMENTS, ObjType::Map)?;
            }
            None => {
                tx.put_object(ROOT, PAGES, ObjType::Map)?;
            }
        }
        Ok(())
    })();
    made.expect("writing into a new document cannot fail");
    tx.commit_with(CommitOptions::default().with_time(0));
    doc.get_last_local_change()
        .expect("the seed was just made")
        .raw_bytes()
        .to_vec()
}

/// Writes the format version into an index document, if it is not written yet; nothing into
/// a document that is not one (yet).
pub fn mark_schema(tx: &mut Transaction<'_>) -> Result<(), AutomergeError> {
    if tx.get(ROOT, "type")?.is_none() {
        return Ok(());
    }
    let current = match tx.get(ROOT, "schema")? {
        Some((v, _)) => v.as_i64(),
        None => None,
    };
    if current != Some(SCHEMA) {
        // An int, as JS writes numbers; a uint would reach JS apps as a BigInt.
        tx.put(ROOT, "schema", SCHEMA)?;
    }
    Ok(())
}

/// The pages a root lists, by area; `None` if `doc` is not a root of schema 2 (yet).
pub fn pages(doc: &impl ReadDoc) -> Option<BTreeMap<String, DocumentId>> {
    let (_, map) = doc.get(ROOT, PAGES).ok().flatten()?;
    Some(
        doc.keys(&map)
            .filter_map(|area| {
                let (url, _) = doc.get(&map, area.as_str()).ok().flatten()?;
                let id = url.as_str()?.strip_prefix("automerge:")?;
                let id = DocumentId::parse(id).ok()?;
                Some((area, id))
            })
            .collect(),
    )
}

/// Lists the pages `add` in a root and unlists those of the areas `remove`; writes nothing
/// that is already so.
pub fn put_pages(
    tx: &mut Transaction<'_>,
    add: &[(String, DocumentId)],
    remove: &[String],
) -> Result<(), AutomergeError> {
    let Some((_, map)) = tx.get(ROOT, PAGES)? else {
        return Ok(());
    };
    for (area, page) in add {
        let url = page.url().to_string();
        let listed = tx
            .get(&map, area.as_str())?
            .is_some_and(|(v, _)| v.as_str() == Some(url.as_str()));
        if !listed {
            tx.put(&map, area.as_str(), url)?;
        }
    }
    for area in remove {
        if tx.get(&map, area.as_str())?.is_some() {
            tx.delete(&map, area.as_str())?;
        }
    }
    Ok(())
}

/// Whether `doc` holds a map of documents itself: a page, or a root of schema 1.
pub fn holds_documents(doc: &impl ReadDoc) -> bool {
    doc.get(ROOT, DOCUMENTS).ok().flatten().is_some()
}

/// Removes a schema 1 root's own map of documents, once its entries are in pages.
pub fn drop_documents(tx: &mut Transaction<'_>) -> Result<(), AutomergeError> {
    if tx.get(ROOT, DOCUMENTS)?.is_some() {
        tx.delete(ROOT, DOCUMENTS)?;
    }
    Ok(())
}

/// The document ids a page (or a schema 1 root) lists, as written (unparsed).
pub fn listed(doc: &impl ReadDoc) -> Vec<String> {
    match doc.get(ROOT, DOCUMENTS) {
        Ok(Some((_, map))) => doc.keys(&map).collect(),
        _ => Vec::new(),
    }
}

/// The documents a page (or a schema 1 root) lists, or `None` if `doc` is neither (yet). Ids
/// that do not parse are left out.
pub fn index_entries(doc: &impl ReadDoc) -> Option<Vec<DocumentId>> {
    let (_, map) = doc.get(ROOT, DOCUMENTS).ok().flatten()?;
    Some(
        doc.keys(&map)
            .filter_map(|k| DocumentId::parse(&k).ok())
            .collect(),
    )
}

/// Every entry a page (or a schema 1 root) lists, by document id (as written, unparsed);
/// `None` if `doc` is neither (yet). One pass, for comparing a caseload against the index.
pub fn entries(doc: &impl ReadDoc) -> Option<HashMap<String, IndexEntry>> {
    let (_, map) = doc.get(ROOT, DOCUMENTS).ok().flatten()?;
    Some(
        doc.keys(&map)
            .filter_map(|id| entry_in(doc, &map, &id).map(|entry| (id, entry)))
            .collect(),
    )
}

/// The entry a page (or a schema 1 root) has for the document `id` (as written, unparsed).
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

/// Adds or updates a page's entries and removes others; writes nothing that is already so.
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

/// The user an index document (a root or a page) belongs to (`{"type": "index", "user": …}`);
/// `None` for any other document. Strings are read as scalars or as text (a JS writer makes text).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page_id() -> DocumentId {
        DocumentId::from_bytes([3; 16])
    }

    fn entry(area: &str) -> IndexEntry {
        IndexEntry {
            url: "automerge:x".into(),
            kind: "visit".into(),
            area: area.into(),
        }
    }

    /// A page made from its seed by `actor`, with the entry `doc`.
    fn made_by(actor: u8, doc: &str) -> Automerge {
        let mut made = Automerge::new().with_actor(ActorId::from(vec![actor; 16]));
        made.load_incremental(&seed(page_id(), "ani", Some("32.77.01.1001")))
            .unwrap();
        let mut tx = made.transaction();
        mark_schema(&mut tx).unwrap();
        put_entries(&mut tx, &[(doc.into(), entry("32.77.01.1001"))], &[]).unwrap();
        tx.commit();
        made
    }

    /// A removal from a page not made yet (its seed is not applied) writes nothing at all.
    #[test]
    fn an_edit_of_a_page_not_made_writes_nothing() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        mark_schema(&mut tx).unwrap();
        put_entries(&mut tx, &[], &["doc-a".into()]).unwrap();
        tx.commit();
        assert!(doc.get_heads().is_empty());
    }

    #[test]
    fn a_seed_is_the_same_change_wherever_it_is_made() {
        let one = seed(page_id(), "ani", Some("32.77.01.1001"));
        assert_eq!(one, seed(page_id(), "ani", Some("32.77.01.1001")));
        assert_ne!(one, seed(page_id(), "ani", None));
        assert_ne!(
            one,
            seed(
                DocumentId::from_bytes([4; 16]),
                "ani",
                Some("32.77.01.1001")
            )
        );
    }

    /// Two server processes make one page at once, each with its own entry: merged, the
    /// page lists both (with a map made by each, Automerge would show only one of them).
    #[test]
    fn a_page_made_in_two_places_at_once_keeps_both_entries() {
        let mut a = made_by(1, "doc-a");
        let mut b = made_by(2, "doc-b");
        a.merge(&mut b).unwrap();
        let mut listed = listed(&a);
        listed.sort();
        assert_eq!(listed, ["doc-a", "doc-b"]);
        assert_eq!(index_owner(&a).as_deref(), Some("ani"));
    }

    #[test]
    fn a_root_lists_and_unlists_pages_and_drops_its_schema_1_documents() {
        let mut root = Automerge::new();
        let mut tx = root.transaction();
        // A schema 1 root, as it was written before pages.
        tx.put(ROOT, "type", INDEX_TYPE).unwrap();
        tx.put(ROOT, "schema", 1_i64).unwrap();
        tx.put(ROOT, "user", "ani").unwrap();
        tx.put_object(ROOT, DOCUMENTS, ObjType::Map).unwrap();
        put_entries(&mut tx, &[("doc-a".into(), entry("32.77.01.1001"))], &[]).unwrap();
        tx.commit();
        assert_eq!(pages(&root), None);
        assert_eq!(listed(&root), ["doc-a"]);

        root.load_incremental(&seed(page_id(), "ani", None))
            .unwrap();
        let (one, two) = (
            DocumentId::from_bytes([5; 16]),
            DocumentId::from_bytes([6; 16]),
        );
        let mut tx = root.transaction();
        mark_schema(&mut tx).unwrap();
        drop_documents(&mut tx).unwrap();
        put_pages(
            &mut tx,
            &[("32.77.01.1001".into(), one), ("32.77.01.1002".into(), two)],
            &[],
        )
        .unwrap();
        tx.commit();
        assert_eq!(index_owner(&root).as_deref(), Some("ani"));
        assert_eq!(
            root.get(ROOT, "schema").unwrap().unwrap().0.as_i64(),
            Some(SCHEMA)
        );
        assert_eq!(index_entries(&root), None, "the old map is gone");
        let listed: Vec<_> = pages(&root).unwrap().into_iter().collect();
        assert_eq!(
            listed,
            [
                ("32.77.01.1001".to_owned(), one),
                ("32.77.01.1002".to_owned(), two)
            ]
        );

        // Unlisting; listing again what is listed writes nothing.
        let heads = root.get_heads();
        let mut tx = root.transaction();
        put_pages(&mut tx, &[("32.77.01.1001".into(), one)], &[]).unwrap();
        mark_schema(&mut tx).unwrap();
        drop_documents(&mut tx).unwrap();
        tx.commit();
        assert_eq!(root.get_heads(), heads);
        let mut tx = root.transaction();
        put_pages(&mut tx, &[], &["32.77.01.1002".into()]).unwrap();
        tx.commit();
        assert_eq!(pages(&root).unwrap().len(), 1);
    }
}
