//! `limits::inspect` on arbitrary chunks with small limits never panics, and it is a sound upper
//! bound: whenever it accepts bytes that `Automerge::load` also accepts, the loaded document
//! has at most the operations it reported. And `DocumentSync::receive` of arbitrary bytes (as a
//! sync message, and as one chunk inside a well-formed sync message) on a fresh document never
//! panics, and never leaves the document over its limits.
//!
//! The first byte of the input says what the rest is:
//!
//! - `1`: a chunk type and a chunk body: the target frames it as a chunk with the right
//!   checksum (a hostile phone computes it too), deflating the body for a compressed change;
//! - `2`: edits (`fieldsync_fuzz::Edit`) to an example document, whose saved document and
//!   change chunks are checked: the bound must hold for every real document;
//! - otherwise: bytes as they are.
#![no_main]

use std::io::Write;

use arbitrary::{Arbitrary, Unstructured};
use automerge::{AutoCommit, ReadDoc, sync};
use fieldsync_core::schema::{RegionCode, examples};
use fieldsync_core::{DocumentSync, Kind, Limits, Size, limits};
use fieldsync_fuzz::{Edit, apply};
use fieldsync_protocol::{DocumentId, PeerId};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

static QUIET_HOOK: std::sync::Once = std::sync::Once::new();

/// Small enough that a hostile input hits them, large enough for a real change.
const LIMITS: Limits = Limits {
    max_change_bytes: 64 * 1024,
    max_change_ops: 2_000,
    max_document_bytes: 256 * 1024,
    max_document_ops: 8_000,
};

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts on every panic, even a caught one; DocumentSync catches automerge's
    // own panics on malformed chunks (and must). A panic that escapes is still caught by
    // libfuzzer-sys around this closure and reported as a crash.
    QUIET_HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        1 => {
            let Some((&kind, body)) = rest.split_first() else {
                return;
            };
            let chunk = framed(kind % 4, body);
            bound(&chunk);
            receive(&chunk);
        }
        2 => {
            let Some(mut doc) = edited(rest) else {
                return;
            };
            bound(&doc.save());
            let changes: Vec<u8> = doc
                .get_changes(&[])
                .iter()
                .flat_map(|c| c.raw_bytes().to_vec())
                .collect();
            bound(&changes);
        }
        _ => {
            bound(rest);
            receive(rest);
        }
    }
});

/// `inspect` is a sound upper bound of what automerge loads.
fn bound(data: &[u8]) {
    if let Ok(size) = limits::inspect(data, &LIMITS, Size::default()) {
        assert!(size.ops <= LIMITS.max_document_ops && size.bytes <= LIMITS.max_document_bytes);
        // automerge 0.12 itself can panic on a malformed chunk; DocumentSync catches that
        // (`receive` below must not panic), this comparison just skips it.
        let loaded = std::panic::catch_unwind(|| automerge::Automerge::load(data));
        if let Ok(Ok(doc)) = loaded {
            let ops = doc.stats().num_ops;
            assert!(
                ops <= size.ops,
                "inspect reported {} operations, automerge loaded {ops}",
                size.ops
            );
        }
    }
}

/// A fresh document receiving `data` never panics and stays within the limits.
fn receive(data: &[u8]) {
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
}

fn within_limits(doc: &DocumentSync) {
    let ops = doc.doc().stats().num_ops;
    assert!(
        ops <= LIMITS.max_document_ops,
        "a document of {ops} operations was accepted"
    );
}

/// `body` as an automerge chunk of this type (0 document, 1 change, 2 compressed change,
/// 3 bundle) with a valid checksum: the first four bytes of the SHA-256 of type, length and
/// body (of the uncompressed change, for a compressed one).
fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let hashed_kind = if kind == 2 { 1 } else { kind };
    let mut header = vec![hashed_kind];
    uleb(&mut header, body.len());
    let hash = Sha256::new()
        .chain_update(&header)
        .chain_update(body)
        .finalize();
    let data = if kind == 2 {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body).expect("deflating into a Vec");
        e.finish().expect("deflating into a Vec")
    } else {
        body.to_vec()
    };
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&hash[..4]);
    chunk.push(kind);
    uleb(&mut chunk, data.len());
    chunk.extend_from_slice(&data);
    chunk
}

fn uleb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

thread_local! {
    /// Written once: writing it is most of the cost of a run.
    static REFERRAL: AutoCommit = {
        let area = RegionCode::parse("32.77.01.1001").expect("a valid area");
        let mut doc = AutoCommit::new();
        examples::referral(&area, "peksos-1").write(&mut doc).expect("an example writes");
        doc.commit();
        doc
    };
}

/// A referral, then arbitrary edits, each edit its own change (several actors' worth of
/// history is what a stored document is).
fn edited(data: &[u8]) -> Option<AutoCommit> {
    let mut u = Unstructured::new(data);
    let mut doc = REFERRAL.with(AutoCommit::clone);
    let edits = Vec::<Edit>::arbitrary(&mut u).ok()?;
    for (i, edit) in edits.iter().enumerate() {
        if i % 3 == 0 {
            doc = doc.fork();
        }
        apply(&mut doc, edit);
        doc.commit();
    }
    Some(doc)
}
