//! Which blobs a document references: the `sha256` of each entry of its `attachments` list
//! (docs/schema.md). The server keeps these references beside the query rows, and lets a
//! blob be read only by someone who may read a document that references it.
//!
//! Read from the Automerge document itself, leniently: an entry that is not a map, or whose
//! `sha256` is not 64 lowercase hex digits, references nothing (the schema's rules judge such
//! entries; this only must never grant access to a blob the document does not name).

use automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fieldsync_protocol::BlobHash;

/// The key of the attachment list in a visit or referral.
pub const ATTACHMENTS: &str = "attachments";

/// Most entries read from one document: a referral carries a handful of scans; a document
/// with more references only its first ones.
pub const MAX_ATTACHMENTS: usize = 1000;

/// The distinct blobs `doc` references, sorted.
pub fn referenced(doc: &impl ReadDoc) -> Vec<BlobHash> {
    let Some((Value::Object(ObjType::List), list)) = doc.get(ROOT, ATTACHMENTS).ok().flatten()
    else {
        return Vec::new();
    };
    let mut hashes: Vec<BlobHash> = (0..doc.length(&list).min(MAX_ATTACHMENTS))
        .filter_map(|i| match doc.get(&list, i).ok().flatten() {
            Some((Value::Object(ObjType::Map), entry)) => Some(entry),
            _ => None,
        })
        .filter_map(|entry| {
            let text = match doc.get(&entry, "sha256").ok().flatten()? {
                (Value::Scalar(s), _) => match s.as_ref() {
                    ScalarValue::Str(s) => s.to_string(),
                    _ => return None,
                },
                (Value::Object(ObjType::Text), id) => doc.text(&id).ok()?,
                _ => return None,
            };
            BlobHash::parse(&text)
        })
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType};

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn reads_each_entrys_hash_as_text_or_string_and_skips_the_rest() {
        let mut doc = AutoCommit::new();
        let list = doc.put_object(ROOT, ATTACHMENTS, ObjType::List).unwrap();
        // As the JS app writes strings: text objects.
        let entry = doc.insert_object(&list, 0, ObjType::Map).unwrap();
        let text = doc.put_object(&entry, "sha256", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, B).unwrap();
        // As a scalar string, twice.
        for i in 1..3 {
            let entry = doc.insert_object(&list, i, ObjType::Map).unwrap();
            doc.put(&entry, "sha256", A).unwrap();
        }
        // Malformed: not a map, upper case, a number, no hash.
        doc.insert(&list, 3, "not a map").unwrap();
        let entry = doc.insert_object(&list, 4, ObjType::Map).unwrap();
        doc.put(&entry, "sha256", A.to_uppercase()).unwrap();
        let entry = doc.insert_object(&list, 5, ObjType::Map).unwrap();
        doc.put(&entry, "sha256", 7_i64).unwrap();
        doc.insert_object(&list, 6, ObjType::Map).unwrap();
        let found: Vec<String> = referenced(&doc).iter().map(ToString::to_string).collect();
        assert_eq!(found, [A, B]);
    }

    #[test]
    fn a_document_without_a_list_references_nothing() {
        let mut doc = AutoCommit::new();
        assert!(referenced(&doc).is_empty());
        doc.put(ROOT, ATTACHMENTS, "oops").unwrap();
        assert!(referenced(&doc).is_empty());
    }
}
