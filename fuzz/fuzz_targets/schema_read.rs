//! `FieldDocument::read_state` on a document built from an arbitrary JSON-like tree never
//! panics, and whatever it accepts survives a round trip: written into a fresh document
//! (`FieldDocument::write`), it reads back equal. The tree is written over an empty document
//! or over one of the examples of docs/schema.md, so that it reaches past the first checks.
#![no_main]

use automerge::AutoCommit;
use fieldsync_core::schema::{FieldDocument, RegionCode, examples};
use fieldsync_fuzz::{Key, Node, write_root};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone, Copy, arbitrary::Arbitrary)]
enum Base {
    Empty,
    Visit,
    Referral,
    Outreach,
}

thread_local! {
    /// The base documents, written once: writing them is most of the cost of a run.
    static BASES: [AutoCommit; 4] = {
        let area = RegionCode::parse("32.77.01.1001").expect("a valid area");
        let mut visit = AutoCommit::new();
        examples::visit(&area, "peksos-1").write(&mut visit).expect("an example writes");
        let mut referral = AutoCommit::new();
        examples::referral(&area, "peksos-1").write(&mut referral).expect("an example writes");
        let mut outreach = AutoCommit::new();
        examples::outreach(&area, "peksos-1").write(&mut outreach).expect("an example writes");
        [AutoCommit::new(), visit, referral, outreach]
    };
    static STATES: Vec<FieldDocument> = BASES.with(|bases| {
        bases
            .iter()
            .filter_map(|doc| FieldDocument::read_state(doc).expect("an example is valid"))
            .inspect(round_trip)
            .collect()
    });
}

fuzz_target!(|input: (Base, Vec<(Key, Node)>)| {
    let (base, fields) = input;
    let mut doc = BASES.with(|bases| bases[base as usize].clone());
    if write_root(&mut doc, &fields).is_err() {
        return;
    }
    let Ok(Some(read)) = FieldDocument::read_state(&doc) else {
        return;
    };
    // An example unchanged by the tree: its round trip was checked once, and writing it is
    // most of the cost of a run.
    if STATES.with(|states| states.contains(&read)) {
        return;
    }
    round_trip(&read);
});

/// `read`, written into a fresh document, reads back equal.
fn round_trip(read: &FieldDocument) {
    let mut copy = AutoCommit::new();
    read.write(&mut copy)
        .unwrap_or_else(|e| panic!("writing {read:?} failed: {e:?}"));
    let again = FieldDocument::read_state(&copy)
        .unwrap_or_else(|v| panic!("{read:?} written back does not read: {v:?}"))
        .expect("a written document is not empty");
    assert_eq!(
        without_ids(again),
        without_ids(read.clone()),
        "round trip changed the document"
    );
}

/// Event ids name the objects of one document; a copy has its own.
fn without_ids(mut doc: FieldDocument) -> FieldDocument {
    if let FieldDocument::Referral(r) = &mut doc {
        for event in &mut r.events {
            event.id = None;
        }
    }
    doc
}
