//! `limits::inspect` on arbitrary bytes with small limits never panics, and it is a sound upper
//! bound: whenever it accepts bytes that `Automerge::load` also accepts, the loaded document
//! has at most the operations it reported. And `DocumentSync::receive` of an arbitrary sync
//! message (the input itself, or the input carried as one change chunk of a well-formed sync
//! message) on a fresh document never panics, and never leaves it over its limits.
#![no_main]

use automerge::{ReadDoc, sync};
use fieldsync_core::{DocumentSync, Kind, Limits, Size, limits};
use fieldsync_protocol::{DocumentId, PeerId};
use libfuzzer_sys::fuzz_target;

/// Small enough that a hostile input hits them, large enough for a real change.
const LIMITS: Limits = Limits {
    max_change_bytes: 64 * 1024,
    max_change_ops: 2_000,
    max_document_bytes: 256 * 1024,
    max_document_ops: 8_000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(size) = limits::inspect(data, &LIMITS, Size::default()) {
        assert!(size.ops <= LIMITS.max_document_ops && size.bytes <= LIMITS.max_document_bytes);
        if let Ok(doc) = automerge::Automerge::load(data) {
            let ops = doc.stats().num_ops;
            assert!(
                ops <= size.ops,
                "inspect reported {} operations, automerge loaded {ops}",
                size.ops
            );
        }
    }

    let peer = PeerId::parse("phone").expect("a valid peer id");
    let id = DocumentId::from_bytes([7; 16]);
    for kind in [Kind::Sync, Kind::Request] {
        let mut doc = DocumentSync::new(id);
        doc.set_limits(LIMITS);
        let _ = doc.receive(&peer, kind, data);
        within_limits(&doc);
    }

    let message = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: vec![data.to_vec()].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    let mut doc = DocumentSync::new(id);
    doc.set_limits(LIMITS);
    let _ = doc.receive(&peer, Kind::Sync, &message.encode());
    within_limits(&doc);
});

fn within_limits(doc: &DocumentSync) {
    let ops = doc.doc().stats().num_ops;
    assert!(
        ops <= LIMITS.max_document_ops,
        "a document of {ops} operations was accepted"
    );
}
