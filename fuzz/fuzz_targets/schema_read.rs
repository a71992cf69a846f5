//! `FieldDocument::read_state` on a document built from an arbitrary JSON-like tree never
//! panics, and whatever it accepts survives a round trip: written into a fresh document
//! (`FieldDocument::write`), it reads back equal.
#![no_main]

use automerge::AutoCommit;
use fieldsync_core::schema::FieldDocument;
use fieldsync_fuzz::{Key, Node, write_root};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|fields: Vec<(Key, Node)>| {
    let mut doc = AutoCommit::new();
    if write_root(&mut doc, &fields).is_err() {
        return;
    }
    let Ok(Some(read)) = FieldDocument::read_state(&doc) else {
        return;
    };
    let mut copy = AutoCommit::new();
    read.write(&mut copy)
        .unwrap_or_else(|e| panic!("writing {read:?} failed: {e:?}"));
    let again = FieldDocument::read_state(&copy)
        .unwrap_or_else(|v| panic!("{read:?} written back does not read: {v:?}"))
        .expect("a written document is not empty");
    assert_eq!(
        without_ids(again),
        without_ids(read),
        "round trip changed the document"
    );
});

/// Event ids name the objects of one document; a copy has its own.
fn without_ids(mut doc: FieldDocument) -> FieldDocument {
    if let FieldDocument::Referral(r) = &mut doc {
        for event in &mut r.events {
            event.id = None;
        }
    }
    doc
}
