//! What the fuzz targets share: how an input is split into frames, a JSON-like tree that
//! `arbitrary` builds and that is written into an Automerge document, and a small language of
//! edits to apply to a document.
//!
//! Keys and strings are drawn mostly from the schema's own vocabulary (docs/schema.md), so that
//! the fuzzer reaches the readers and rules behind the first `type` check, with an arbitrary
//! string as the way out.

use arbitrary::{Arbitrary, Unstructured};
use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

/// Separates the frames of a `session` input. Four bytes that CBOR frames rarely contain.
pub const FRAME_SEPARATOR: &[u8] = b"\xfe\xfdFR";

/// The peer id the `session` target's server has: the one the captured frames address.
pub const SESSION_SERVER_PEER: &str = "reference-server";

/// The frames of a `session` input.
pub fn frames(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest?;
        match data
            .windows(FRAME_SEPARATOR.len())
            .position(|w| w == FRAME_SEPARATOR)
        {
            Some(at) => {
                rest = Some(&data[at + FRAME_SEPARATOR.len()..]);
                Some(&data[..at])
            }
            None => {
                rest = None;
                Some(data)
            }
        }
    })
}

/// Keys of the schema, at every level.
pub const KEYS: &[&str] = &[
    "type",
    "schema",
    "area",
    "createdBy",
    "createdAt",
    "beneficiary",
    "nik",
    "kk",
    "name",
    "address",
    "ppks",
    "visitedAt",
    "purpose",
    "notes",
    "actions",
    "followUpOn",
    "location",
    "lat",
    "lon",
    "program",
    "reason",
    "documents",
    "ktp",
    "sktm",
    "suratPuskesmas",
    "consent",
    "given",
    "at",
    "by",
    "visit",
    "events",
    "kind",
    "note",
    "topic",
    "heldAt",
    "place",
    "attendees",
];

/// Strings the schema gives meaning to, valid and nearly valid.
pub const STRINGS: &[&str] = &[
    "visit",
    "referral",
    "outreach",
    "index",
    "32.77.01.1001",
    "32.77.01.1002",
    "32.77.02.1001",
    "32.77",
    "3277015204800002",
    "3277015204800001",
    "3277010101000001",
    "2026-11-20T08:00:00Z",
    "2026-11-20T09:46:00.123Z",
    "2026-02-30T08:00:00Z",
    "2026-12-01",
    "2026-13-01",
    "peksos-1",
    "peksos-2",
    "supervisor-1",
    "coordinator-1",
    "fakir-miskin",
    "anak-terlantar",
    "kis-pbi",
    "pkh",
    "submitted",
    "withdrawn",
    "documents-added",
    "accepted",
    "needs-documents",
    "approved",
    "rejected",
    "enrolled",
    "closed",
    "automerge:2j9knpCseyhnK8izDmLpGP5WMdZQ",
    "",
];

/// A key: one of the schema's, or any string.
#[derive(Debug, Clone)]
pub struct Key(pub String);

impl<'a> Arbitrary<'a> for Key {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(if u.ratio(7, 8)? {
            (*u.choose(KEYS)?).to_owned()
        } else {
            String::arbitrary(u)?
        }))
    }
}

/// A string value: one the schema gives meaning to, or any string.
#[derive(Debug, Clone)]
pub struct Str(pub String);

impl<'a> Arbitrary<'a> for Str {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(if u.ratio(3, 4)? {
            (*u.choose(STRINGS)?).to_owned()
        } else {
            String::arbitrary(u)?
        }))
    }
}

/// A scalar, as Automerge stores them.
#[derive(Debug, Clone, Arbitrary)]
pub enum Scalar {
    Str(Str),
    Int(i64),
    Uint(u64),
    F64(f64),
    Bool(bool),
    Null,
    Counter(i64),
    Timestamp(i64),
    Bytes(Vec<u8>),
    /// A number at an edge: where casts and checks go wrong.
    Edge(Edge),
}

/// Numbers at the edges of the types a reader converts between.
#[derive(Debug, Clone, Copy)]
pub struct Edge(pub ScalarValueEdge);

#[derive(Debug, Clone, Copy)]
pub enum ScalarValueEdge {
    Uint(u64),
    Int(i64),
    F64(f64),
}

const EDGES: &[ScalarValueEdge] = &[
    ScalarValueEdge::Uint(u64::MAX),
    ScalarValueEdge::Uint(i64::MAX as u64 + 1),
    ScalarValueEdge::Uint(1 << 53),
    ScalarValueEdge::Uint(2),
    ScalarValueEdge::Int(i64::MIN),
    ScalarValueEdge::Int(i64::MAX),
    ScalarValueEdge::Int(-1),
    ScalarValueEdge::Int(0),
    ScalarValueEdge::Int(2),
    ScalarValueEdge::F64(f64::NAN),
    ScalarValueEdge::F64(f64::INFINITY),
    ScalarValueEdge::F64(-0.0),
    ScalarValueEdge::F64(1e300),
    ScalarValueEdge::F64(2.0),
    ScalarValueEdge::F64(9_007_199_254_740_993.0),
    ScalarValueEdge::F64(1.5),
];

impl<'a> Arbitrary<'a> for Edge {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(*u.choose(EDGES)?))
    }
}

impl Scalar {
    pub fn value(&self) -> ScalarValue {
        match self {
            Self::Str(s) => ScalarValue::Str(s.0.as_str().into()),
            Self::Int(n) => ScalarValue::Int(*n),
            Self::Uint(n) => ScalarValue::Uint(*n),
            Self::F64(n) => ScalarValue::F64(*n),
            Self::Bool(b) => ScalarValue::Boolean(*b),
            Self::Null => ScalarValue::Null,
            Self::Counter(n) => ScalarValue::counter(*n),
            Self::Timestamp(n) => ScalarValue::Timestamp(*n),
            Self::Bytes(b) => ScalarValue::Bytes(b.clone()),
            Self::Edge(Edge(ScalarValueEdge::Uint(n))) => ScalarValue::Uint(*n),
            Self::Edge(Edge(ScalarValueEdge::Int(n))) => ScalarValue::Int(*n),
            Self::Edge(Edge(ScalarValueEdge::F64(n))) => ScalarValue::F64(*n),
        }
    }
}

/// A JSON-like tree, as a JS app could write it into a document.
#[derive(Debug, Clone, Arbitrary)]
pub enum Node {
    Map(Vec<(Key, Node)>),
    List(Vec<Node>),
    /// Collaborative text, as JS automerge 3 writes strings.
    Text(Str),
    Scalar(Scalar),
}

/// Deeper than this, a tree is cut: no field document is nested this deep, and it keeps the
/// stack small.
const MAX_DEPTH: usize = 8;

/// Writes `fields` into the root map of the document `tx` changes.
pub fn write_root(
    tx: &mut impl Transactable,
    fields: &[(Key, Node)],
) -> Result<(), automerge::AutomergeError> {
    for (key, node) in fields {
        put(tx, &ROOT, Place::Key(&key.0), node, 0)?;
    }
    Ok(())
}

enum Place<'a> {
    Key(&'a str),
    Index(usize),
}

fn put(
    tx: &mut impl Transactable,
    obj: &ObjId,
    place: Place<'_>,
    node: &Node,
    depth: usize,
) -> Result<(), automerge::AutomergeError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    match node {
        Node::Scalar(s) => match place {
            Place::Key(k) => tx.put(obj, k, s.value()),
            Place::Index(i) => tx.insert(obj, i, s.value()),
        },
        Node::Text(s) => {
            let t = make_object(tx, obj, &place, ObjType::Text)?;
            tx.splice_text(&t, 0, 0, &s.0)
        }
        Node::Map(fields) => {
            let m = make_object(tx, obj, &place, ObjType::Map)?;
            for (key, child) in fields {
                put(tx, &m, Place::Key(&key.0), child, depth + 1)?;
            }
            Ok(())
        }
        Node::List(items) => {
            let l = make_object(tx, obj, &place, ObjType::List)?;
            for (i, child) in items.iter().enumerate() {
                put(tx, &l, Place::Index(i), child, depth + 1)?;
            }
            Ok(())
        }
    }
}

fn make_object(
    tx: &mut impl Transactable,
    obj: &ObjId,
    place: &Place<'_>,
    kind: ObjType,
) -> Result<ObjId, automerge::AutomergeError> {
    match place {
        Place::Key(k) => tx.put_object(obj, *k, kind),
        Place::Index(i) => tx.insert_object(obj, *i, kind),
    }
}

/// One edit of the edit language. Where it applies is a walk from the root: each step picks a
/// child object by its position among the current object's children (modulo their number).
#[derive(Debug, Clone, Arbitrary)]
pub struct Edit {
    pub walk: Vec<u8>,
    pub op: Op,
}

#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Put a tree at a key of a map, or over an element of a list.
    Put(Key, u8, Node),
    /// Delete a key of a map or an element of a list.
    Delete(Key, u8),
    /// Insert a tree into a list (at an index modulo its length + 1).
    Insert(u8, Node),
    /// Splice a text (or a list, with string elements).
    Splice { at: u8, delete: u8, text: Str },
    /// Increment a counter.
    Increment(Key, i64),
}

/// Applies `edit` to the document `tx` changes. Edits that make no sense where they land
/// (a key of a list, an index past the end) do nothing; Automerge's own refusals are ignored.
pub fn apply(tx: &mut (impl Transactable + ReadDoc), edit: &Edit) {
    let mut obj = ROOT;
    for step in &edit.walk {
        let children: Vec<ObjId> = match tx.object_type(&obj) {
            Ok(ObjType::Map | ObjType::Table) => tx
                .keys(&obj)
                .collect::<Vec<_>>()
                .into_iter()
                .filter_map(|key| child(tx.get(&obj, key.as_str())))
                .collect(),
            Ok(ObjType::List) => (0..tx.length(&obj))
                .filter_map(|i| child(tx.get(&obj, i)))
                .collect(),
            _ => Vec::new(),
        };
        if children.is_empty() {
            break;
        }
        obj = children[usize::from(*step) % children.len()].clone();
    }
    let kind = match tx.object_type(&obj) {
        Ok(kind) => kind,
        Err(_) => return,
    };
    let len = tx.length(&obj);
    let index = |i: u8, extra: usize| usize::from(i) % (len + extra).max(1);
    let _ = match (&edit.op, kind) {
        (Op::Put(key, _, node), ObjType::Map | ObjType::Table) => {
            put(tx, &obj, Place::Key(&key.0), node, 1)
        }
        (Op::Put(_, i, Node::Scalar(s)), ObjType::List) if len > 0 => {
            tx.put(&obj, index(*i, 0), s.value())
        }
        (Op::Put(_, i, node), ObjType::List) if len > 0 => {
            let at = index(*i, 0);
            tx.delete(&obj, at)
                .and_then(|()| put(tx, &obj, Place::Index(at), node, 1))
        }
        (Op::Delete(key, _), ObjType::Map | ObjType::Table) => tx.delete(&obj, key.0.as_str()),
        (Op::Delete(_, i), ObjType::List | ObjType::Text) if len > 0 => {
            tx.delete(&obj, index(*i, 0))
        }
        (Op::Insert(i, node), ObjType::List) => put(tx, &obj, Place::Index(index(*i, 1)), node, 1),
        (Op::Splice { at, delete, text }, ObjType::Text) => {
            let at = index(*at, 1);
            let delete = usize::from(*delete).min(len - at.min(len));
            tx.splice_text(&obj, at, delete as isize, &text.0)
        }
        (Op::Splice { at, text, .. }, ObjType::List) => tx.insert(
            &obj,
            index(*at, 1),
            ScalarValue::Str(text.0.as_str().into()),
        ),
        (Op::Increment(key, by), ObjType::Map | ObjType::Table) => {
            tx.increment(&obj, key.0.as_str(), *by)
        }
        _ => Ok(()),
    };
}

fn child(got: Result<Option<(Value<'_>, ObjId)>, automerge::AutomergeError>) -> Option<ObjId> {
    match got {
        Ok(Some((Value::Object(_), id))) => Some(id),
        _ => None,
    }
}
