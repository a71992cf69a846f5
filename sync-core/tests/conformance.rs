//! Conformance vectors: documents and edits, each with the violations the Rust rules find, by
//! JSON path, written to `sync-core/conformance/vectors.json` for other implementations of the
//! rules (the field app's validator, app/src/schema.js, is tested against them by
//! tests/tests/app.rs). The rules stay in one place, here; the file follows them.
//!
//! The test fails when the committed file differs from what the rules say now. Regenerate it
//! with:
//!
//!     FIELDSYNC_UPDATE_VECTORS=1 cargo test -p fieldsync-core --test conformance
//!
//! A vector is `{name, author, before, edits, violations}`: `before` is a document (`null`: the
//! document is created by the edits), `edits` are operations on it made in one change by
//! `author` — `{"op": "set", "path": [...], "value": V}` (a map key or a list element),
//! `{"op": "insert", "path": ["events", i], "value": V}`, `{"op": "delete", "path": [...]}` —
//! and `violations` the sorted, distinct paths the server refuses (empty: accepted), each with
//! the server's message. Strings are written as Automerge text and whole numbers as integers,
//! as JS automerge 3 writes them.

use std::path::PathBuf;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, Value as AmValue};
use fieldsync_core::schema::{Author, FieldDocument, RegionCode, Role, check_applied};
use serde_json::{Map, Value, json};

const USER: &str = "peksos-ani";
const AREA: &str = "32.77.01.1001";

fn visit() -> Value {
    json!({
        "type": "visit", "schema": 1, "area": AREA, "createdBy": USER,
        "createdAt": "2026-11-20T09:30:00Z",
        "beneficiary": {
            "nik": "3277015204800002", "kk": "3277010101090003", "name": "Siti Aminah",
            "address": "Jl. Mawar 5", "ppks": ["fakir-miskin", "lansia-terlantar"]
        },
        "visitedAt": "2026-11-20T09:30:00Z", "purpose": "Asesmen awal",
        "notes": "Rumah semi permanen.", "actions": ["rujuk KIS-PBI"],
        "followUpOn": "2026-12-01", "location": {"lat": -6.8722, "lon": 107.5425}
    })
}

fn referral() -> Value {
    json!({
        "type": "referral", "schema": 1, "area": AREA, "createdBy": USER,
        "createdAt": "2026-11-20T09:45:00Z",
        "beneficiary": {"nik": "3277015204800002", "name": "Siti Aminah", "ppks": ["fakir-miskin"]},
        "program": "kis-pbi", "reason": "Tidak memiliki jaminan kesehatan.",
        "documents": {"ktp": true, "kk": true, "sktm": false, "suratPuskesmas": false},
        "consent": {"given": true, "at": "2026-11-20T09:40:00Z", "by": "Siti Aminah"},
        "visit": "automerge:PLUD22EtHV6JRMaH8ZvRwb1ejFa",
        "events": [{"kind": "submitted", "at": "2026-11-20T09:46:00Z", "by": USER}]
    })
}

fn outreach() -> Value {
    json!({
        "type": "outreach", "schema": 1, "area": AREA, "createdBy": USER,
        "createdAt": "2026-11-19T14:30:00Z", "topic": "Pencegahan stunting",
        "heldAt": "2026-11-19T14:00:00Z", "place": "Balai RW 05", "attendees": 25,
        "notes": "Dihadiri kader posyandu."
    })
}

/// `doc` with the value at `path` replaced (`None`: removed).
fn with(mut doc: Value, path: &[&str], value: Option<Value>) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut doc;
    for key in parents {
        at = match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*key],
        };
    }
    match (value, last.parse::<usize>()) {
        (Some(v), Ok(i)) => at[i] = v,
        (Some(v), Err(_)) => at[*last] = v,
        (None, Ok(i)) => {
            at.as_array_mut().unwrap().remove(i);
        }
        (None, Err(_)) => {
            at.as_object_mut().unwrap().remove(*last);
        }
    }
    doc
}

fn set(path: Value, value: Value) -> Value {
    json!({"op": "set", "path": path, "value": value})
}

fn event(kind: &str) -> Value {
    json!({"kind": kind, "at": "2026-11-22T08:00:00Z", "by": USER})
}

fn scan(kind: &str) -> Value {
    json!({
        "sha256": "59ad1b2fc74287ded1bba7af67765d23ad4a49f1ae51902cc2ed3f8ebee96cfa",
        "size": 183204, "mime": "image/jpeg", "kind": kind, "takenAt": "2026-11-20T09:42:00Z"
    })
}

fn peksos() -> Value {
    json!({"role": "peksos", "user": USER, "areas": ["32.77.01"]})
}

fn supervisor() -> Value {
    json!({"role": "supervisor", "user": "supervisor-budi", "areas": ["32.77"]})
}

/// Every vector, without its violations: (name, author, before, edits).
fn cases() -> Vec<(String, Value, Value, Vec<Value>)> {
    let mut out: Vec<(String, Value, Value, Vec<Value>)> = Vec::new();
    let mut create = |name: &str, doc: Value| {
        out.push((
            format!("create: {name}"),
            peksos(),
            Value::Null,
            vec![set(json!([]), doc)],
        ))
    };
    create("a valid visit", visit());
    create("a valid referral", referral());
    create("a valid outreach note", outreach());
    let nik = ["beneficiary", "nik"];
    for (what, value) in [
        ("NIK of 15 digits", "327701520480000"),
        ("NIK with a letter", "32770152048000A2"),
        ("NIK with birth day 00", "3277010001800002"),
        ("NIK with birth day 32", "3277013201800002"),
        ("NIK with birth day 72", "3277017201800002"),
        ("NIK with birth month 13", "3277015213800002"),
        ("NIK of a woman (day 41)", "3277014101800002"),
        ("NIK of a woman (day 71)", "3277017112800002"),
    ] {
        create(what, with(visit(), &nik, Some(json!(value))));
    }
    create("visit without NIK", with(visit(), &nik, None));
    create(
        "NIK as a number",
        with(visit(), &nik, Some(json!(3277015204800002u64))),
    );
    create(
        "KK of 17 digits",
        with(
            visit(),
            &["beneficiary", "kk"],
            Some(json!("32770101010900031")),
        ),
    );
    create(
        "KK with a dash",
        with(
            visit(),
            &["beneficiary", "kk"],
            Some(json!("3277010101-90003")),
        ),
    );
    create(
        "no KK (optional)",
        with(visit(), &["beneficiary", "kk"], None),
    );
    for (what, value) in [
        ("area that is a kecamatan, not a kelurahan", "32.77.01"),
        ("area with a one-digit part", "32.7.01.1001"),
        ("area with a letter", "32.77.01.10a1"),
        ("area outside the author's", "32.77.02.1001"),
    ] {
        create(what, with(visit(), &["area"], Some(json!(value))));
    }
    create(
        "unknown program",
        with(referral(), &["program"], Some(json!("kis"))),
    );
    create("program missing", with(referral(), &["program"], None));
    create(
        "unknown PPKS category",
        with(
            visit(),
            &["beneficiary", "ppks", "1"],
            Some(json!("miskin")),
        ),
    );
    create(
        "PPKS category that is a number",
        with(visit(), &["beneficiary", "ppks", "0"], Some(json!(7))),
    );
    create(
        "no PPKS categories (empty list)",
        with(visit(), &["beneficiary", "ppks"], Some(json!([]))),
    );
    create(
        "PPKS missing",
        with(visit(), &["beneficiary", "ppks"], None),
    );
    for (what, value) in [
        ("follow-up on 30 February", "2026-02-30"),
        ("follow-up on 29 February of a leap year", "2024-02-29"),
        ("follow-up on 29 February of 2100", "2100-02-29"),
        ("follow-up in month 13", "2026-13-01"),
        ("follow-up as a day-month-year date", "01-12-2026"),
    ] {
        create(what, with(visit(), &["followUpOn"], Some(json!(value))));
    }
    for (what, value) in [
        ("visit time without a zone", "2026-11-20T09:30:00"),
        ("visit time with a space", "2026-11-20 09:30:00Z"),
        ("visit time with milliseconds", "2026-11-20T09:30:00.250Z"),
        ("visit time at hour 24", "2026-11-20T24:00:00Z"),
        ("visit time with an offset", "2026-11-20T09:30:00+07:00"),
    ] {
        create(what, with(visit(), &["visitedAt"], Some(json!(value))));
    }
    create(
        "type that is not known",
        with(visit(), &["type"], Some(json!("catatan"))),
    );
    create("schema 0", with(visit(), &["schema"], Some(json!(0))));
    create(
        "created by someone else",
        with(visit(), &["createdBy"], Some(json!("peksos-budi"))),
    );
    create(
        "name missing",
        with(visit(), &["beneficiary", "name"], None),
    );
    create("notes missing", with(visit(), &["notes"], None));
    create(
        "actions that are not a list",
        with(visit(), &["actions"], Some(json!("rujuk"))),
    );
    create(
        "latitude 91",
        with(visit(), &["location", "lat"], Some(json!(91.0))),
    );
    create(
        "longitude as text",
        with(visit(), &["location", "lon"], Some(json!("107"))),
    );
    create(
        "attendees -1",
        with(outreach(), &["attendees"], Some(json!(-1))),
    );
    create(
        "attendees 2.5",
        with(outreach(), &["attendees"], Some(json!(2.5))),
    );
    create(
        "consent without given",
        with(referral(), &["consent", "given"], None),
    );
    create(
        "consent not given (a schema may hold it)",
        with(referral(), &["consent", "given"], Some(json!(false))),
    );
    create(
        "document checklist entry that is text",
        with(referral(), &["documents", "ktp"], Some(json!("ya"))),
    );
    create(
        "visit link that is not an automerge URL",
        with(referral(), &["visit"], Some(json!("http://x"))),
    );
    create(
        "a supervisor's event by a field worker",
        with(
            referral(),
            &["events", "0", "kind"],
            Some(json!("approved")),
        ),
    );
    create(
        "an event by someone else",
        with(
            referral(),
            &["events", "0", "by"],
            Some(json!("peksos-budi")),
        ),
    );
    create(
        "an event of unknown kind",
        with(referral(), &["events", "0", "kind"], Some(json!("paused"))),
    );
    create(
        "an event with a field too many",
        with(referral(), &["events", "0", "extra"], Some(json!("x"))),
    );
    create(
        "an event time without a zone",
        with(
            referral(),
            &["events", "0", "at"],
            Some(json!("2026-11-20T09:46:00")),
        ),
    );
    create("no events", with(referral(), &["events"], Some(json!([]))));
    let scans = |doc: Value, list: Value| with(doc, &["attachments"], Some(list));
    create(
        "a referral with a KTP scan and a caption",
        scans(
            referral(),
            json!([with(
                scan("ktp"),
                &["caption"],
                Some(json!("KTP kepala keluarga"))
            )]),
        ),
    );
    create(
        "a visit with a photo of the house",
        scans(visit(), json!([scan("rumah")])),
    );
    create(
        "an outreach note with an attachment",
        scans(outreach(), json!([scan("lainnya")])),
    );
    create(
        "attachments that are not a list",
        scans(referral(), json!("ktp.jpg")),
    );
    create(
        "an attachment that is not an object",
        scans(referral(), json!(["ktp.jpg"])),
    );
    for (what, field, value) in [
        (
            "an attachment hash in capitals",
            "sha256",
            json!("59AD1B2FC74287DED1BBA7AF67765D23AD4A49F1AE51902CC2ED3F8EBEE96CFA"),
        ),
        ("an attachment hash too short", "sha256", json!("59ad1b2f")),
        ("an attachment of size 0", "size", json!(0)),
        (
            "an attachment over 20 MiB",
            "size",
            json!(20 * 1024 * 1024 + 1),
        ),
        (
            "an attachment of exactly 20 MiB",
            "size",
            json!(20 * 1024 * 1024),
        ),
        ("an attachment size as text", "size", json!("183204")),
        ("an attachment size with a fraction", "size", json!(1.5)),
        (
            "an attachment of a type not allowed",
            "mime",
            json!("image/gif"),
        ),
        ("a PDF attachment", "mime", json!("application/pdf")),
        ("an attachment of unknown kind", "kind", json!("paspor")),
        (
            "an attachment time without a zone",
            "takenAt",
            json!("2026-11-20T09:42:00"),
        ),
        (
            "an attachment caption that is a number",
            "caption",
            json!(7),
        ),
        (
            "an attachment with a field too many",
            "nik",
            json!("3277015204800002"),
        ),
    ] {
        create(
            what,
            scans(
                referral(),
                json!([with(scan("ktp"), &[field], Some(value))]),
            ),
        );
    }
    create(
        "an attachment without a type",
        scans(referral(), json!([with(scan("ktp"), &["mime"], None)])),
    );

    let mut edit = |name: &str, before: Value, edits: Vec<Value>| {
        out.push((format!("edit: {name}"), peksos(), before, edits))
    };
    edit(
        "a visit's notes, actions and follow-up",
        visit(),
        vec![
            set(json!(["notes"]), json!("Sudah diperbaiki.")),
            set(
                json!(["actions"]),
                json!(["rujuk KIS-PBI", "kunjungan ulang"]),
            ),
            set(json!(["followUpOn"]), json!("2026-12-15")),
        ],
    );
    edit(
        "a visit's follow-up removed",
        visit(),
        vec![json!({"op": "delete", "path": ["followUpOn"]})],
    );
    edit(
        "a visit's follow-up set to a date that does not exist",
        visit(),
        vec![set(json!(["followUpOn"]), json!("2026-11-31"))],
    );
    edit(
        "createdBy changed",
        visit(),
        vec![set(json!(["createdBy"]), json!("peksos-budi"))],
    );
    edit(
        "createdAt changed",
        visit(),
        vec![set(json!(["createdAt"]), json!("2026-11-21T09:30:00Z"))],
    );
    edit(
        "type changed",
        visit(),
        vec![set(json!(["type"]), json!("outreach"))],
    );
    edit(
        "moved out of the author's areas",
        visit(),
        vec![set(json!(["area"]), json!("32.77.02.1001"))],
    );
    edit(
        "moved within the author's areas",
        visit(),
        vec![set(json!(["area"]), json!("32.77.01.1002"))],
    );
    edit(
        "a document outside the author's areas",
        with(visit(), &["area"], Some(json!("32.77.02.1001"))),
        vec![set(json!(["notes"]), json!("x"))],
    );
    edit(
        "an outreach note's attendees",
        outreach(),
        vec![set(json!(["attendees"]), json!(30))],
    );
    let end = json!(["events", 1]);
    edit(
        "a referral withdrawn",
        referral(),
        vec![json!({"op": "insert", "path": end, "value": event("withdrawn")})],
    );
    edit(
        "documents supplied, with a note and the checklist",
        referral(),
        vec![
            set(json!(["documents", "sktm"]), json!(true)),
            json!({"op": "insert", "path": end, "value": {
                "kind": "documents-added", "at": "2026-11-22T08:00:00Z", "by": USER, "note": "SKTM ada"
            }}),
        ],
    );
    edit(
        "a supervisor's decision appended by a field worker",
        referral(),
        vec![json!({"op": "insert", "path": end, "value": event("approved")})],
    );
    edit(
        "an event appended under someone else's name",
        referral(),
        vec![
            json!({"op": "insert", "path": end, "value": with(event("withdrawn"), &["by"], Some(json!("peksos-budi")))}),
        ],
    );
    edit(
        "an event inserted before one the author had seen",
        referral(),
        vec![json!({"op": "insert", "path": ["events", 0], "value": event("withdrawn")})],
    );
    edit(
        "an event removed",
        referral(),
        vec![json!({"op": "delete", "path": ["events", 0]})],
    );
    edit(
        "an event changed",
        referral(),
        vec![set(
            json!(["events", 0, "at"]),
            json!("2026-11-20T10:00:00Z"),
        )],
    );
    edit(
        "an event replaced by another",
        referral(),
        vec![set(json!(["events", 0]), event("withdrawn"))],
    );
    edit(
        "a referral's reason and program",
        referral(),
        vec![
            set(json!(["reason"]), json!("Alasan baru.")),
            set(json!(["program"]), json!("pkh")),
        ],
    );
    let scanned = || with(referral(), &["attachments"], Some(json!([scan("ktp")])));
    edit(
        "a scan attached to a referral without attachments",
        referral(),
        vec![set(json!(["attachments"]), json!([scan("sktm")]))],
    );
    edit(
        "a second scan appended",
        scanned(),
        vec![json!({"op": "insert", "path": ["attachments", 1], "value": scan("kk")})],
    );
    edit(
        "a scan removed",
        scanned(),
        vec![json!({"op": "delete", "path": ["attachments", 0]})],
    );
    edit(
        "a scan's kind changed in place",
        scanned(),
        vec![set(json!(["attachments", 0, "kind"]), json!("kk"))],
    );
    edit(
        "a scan's caption added in place",
        scanned(),
        vec![set(json!(["attachments", 0, "caption"]), json!("KTP"))],
    );
    edit(
        "a scan replaced by another",
        scanned(),
        vec![set(json!(["attachments", 0]), scan("kk"))],
    );
    edit(
        "a visit's photo removed",
        with(visit(), &["attachments"], Some(json!([scan("rumah")]))),
        vec![json!({"op": "delete", "path": ["attachments", 0]})],
    );
    let mut decide = |name: &str, before: Value, edits: Vec<Value>| {
        out.push((format!("supervisor: {name}"), supervisor(), before, edits))
    };
    let approval =
        json!({"kind": "approved", "at": "2026-11-22T08:00:00Z", "by": "supervisor-budi"});
    decide(
        "a decision on a referral with a scan",
        scanned(),
        vec![json!({"op": "insert", "path": ["events", 1], "value": approval})],
    );
    decide(
        "a scan attached",
        scanned(),
        vec![json!({"op": "insert", "path": ["attachments", 1], "value": scan("sktm")})],
    );
    decide(
        "a scan removed",
        scanned(),
        vec![json!({"op": "delete", "path": ["attachments", 0]})],
    );
    decide(
        "a decision with a scan attached",
        scanned(),
        vec![
            json!({"op": "insert", "path": ["events", 1], "value": approval}),
            json!({"op": "insert", "path": ["attachments", 1], "value": scan("sktm")}),
        ],
    );
    out
}

// ---- applying JSON to Automerge ----

fn put(doc: &mut AutoCommit, obj: &ObjId, key: Key<'_>, value: &Value) {
    let kind = match value {
        Value::Object(_) => Some(ObjType::Map),
        Value::Array(_) => Some(ObjType::List),
        Value::String(_) => Some(ObjType::Text),
        _ => None,
    };
    let created = match (kind, key) {
        (Some(kind), Key::Map(k)) => Some(doc.put_object(obj, k, kind).unwrap()),
        (Some(kind), Key::Put(i)) => Some(doc.put_object(obj, i, kind).unwrap()),
        (Some(kind), Key::Insert(i)) => Some(doc.insert_object(obj, i, kind).unwrap()),
        (None, _) => None,
    };
    match (value, created) {
        (Value::Object(map), Some(id)) => fill(doc, &id, map),
        (Value::Array(items), Some(id)) => {
            for (i, item) in items.iter().enumerate() {
                put(doc, &id, Key::Insert(i), item);
            }
        }
        (Value::String(s), Some(id)) => doc.splice_text(&id, 0, 0, s).unwrap(),
        (scalar, None) => {
            let scalar: automerge::ScalarValue = match scalar {
                Value::Null => automerge::ScalarValue::Null,
                Value::Bool(b) => (*b).into(),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => i.into(),
                    None => n.as_f64().unwrap().into(),
                },
                _ => unreachable!(),
            };
            match key {
                Key::Map(k) => doc.put(obj, k, scalar).unwrap(),
                Key::Put(i) => doc.put(obj, i, scalar).unwrap(),
                Key::Insert(i) => doc.insert(obj, i, scalar).unwrap(),
            }
        }
        _ => unreachable!(),
    }
}

fn fill(doc: &mut AutoCommit, obj: &ObjId, map: &Map<String, Value>) {
    for (k, v) in map {
        put(doc, obj, Key::Map(k), v);
    }
}

#[derive(Clone, Copy)]
enum Key<'a> {
    Map(&'a str),
    Put(usize),
    Insert(usize),
}

/// The object at `path` (all but its last step) and the last step.
fn locate<'a>(doc: &AutoCommit, path: &'a [Value]) -> (ObjId, &'a Value) {
    let (last, parents) = path.split_last().expect("a path has a step");
    let mut obj = ROOT;
    for step in parents {
        let next = match step {
            Value::String(k) => doc.get(&obj, k.as_str()),
            Value::Number(i) => doc.get(&obj, i.as_u64().unwrap() as usize),
            _ => panic!("bad path step {step}"),
        };
        let Ok(Some((AmValue::Object(_), id))) = next else {
            panic!("no object at {step}")
        };
        obj = id;
    }
    (obj, last)
}

fn apply(doc: &mut AutoCommit, edit: &Value) {
    let path = edit["path"].as_array().unwrap();
    let value = &edit["value"];
    match edit["op"].as_str().unwrap() {
        "set" if path.is_empty() => fill(doc, &ROOT, value.as_object().unwrap()),
        "set" => match locate(doc, path) {
            (obj, Value::String(k)) => put(doc, &obj, Key::Map(k), value),
            (obj, i) => put(doc, &obj, Key::Put(i.as_u64().unwrap() as usize), value),
        },
        "insert" => {
            let (obj, i) = locate(doc, path);
            put(doc, &obj, Key::Insert(i.as_u64().unwrap() as usize), value)
        }
        "delete" => match locate(doc, path) {
            (obj, Value::String(k)) => doc.delete(&obj, k.as_str()).unwrap(),
            (obj, i) => doc.delete(&obj, i.as_u64().unwrap() as usize).unwrap(),
        },
        op => panic!("unknown op {op}"),
    }
}

/// The author a vector names.
fn author(json: &Value) -> Author {
    Author::user(
        json["user"].as_str().unwrap(),
        Role::parse(json["role"].as_str().unwrap()).unwrap(),
        json["areas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| RegionCode::parse_prefix(a.as_str().unwrap()).unwrap())
            .collect(),
    )
}

/// The violations the server finds in `edits` made to `before` by `author`.
fn judge(author: &Author, before: &Value, edits: &[Value]) -> Vec<Value> {
    let mut doc = AutoCommit::new();
    if let Value::Object(map) = before {
        fill(&mut doc, &ROOT, map);
        doc.commit();
    }
    let state = FieldDocument::read_state(&doc).expect("a vector starts from a valid document");
    let heads = doc.get_heads();
    for edit in edits {
        apply(&mut doc, edit);
    }
    doc.commit();
    let mut found = match check_applied(doc.document(), &heads, state.as_ref(), author) {
        Ok(_) => Vec::new(),
        Err(violations) => violations,
    };
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    found
        .into_iter()
        .map(|v| json!({"path": v.path, "message": v.message}))
        .collect()
}

fn vectors() -> String {
    let vectors: Vec<Value> = cases()
        .into_iter()
        .map(|(name, who, before, edits)| {
            let violations = judge(&author(&who), &before, &edits);
            json!({
                "name": name,
                "author": who,
                "before": before,
                "edits": edits,
                "violations": violations,
            })
        })
        .collect();
    let file = json!({
        "about": "Generated by sync-core/tests/conformance.rs from the Rust rules; do not edit. \
                  FIELDSYNC_UPDATE_VECTORS=1 cargo test -p fieldsync-core --test conformance",
        "vectors": vectors,
    });
    serde_json::to_string_pretty(&file).unwrap() + "\n"
}

#[test]
fn the_committed_conformance_vectors_are_what_the_rules_say() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/vectors.json");
    let now = vectors();
    if std::env::var_os("FIELDSYNC_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{} is stale: the rules changed. Regenerate it with\n\
         FIELDSYNC_UPDATE_VECTORS=1 cargo test -p fieldsync-core --test conformance\n\
         and make the field app's validator (app/src/schema.js) pass it.",
        path.display()
    );
}

#[test]
fn the_vectors_cover_accepted_and_refused_changes_of_every_kind() {
    let all = cases();
    let judged: Vec<Vec<Value>> = all
        .iter()
        .map(|(_, who, b, e)| judge(&author(who), b, e))
        .collect();
    assert!(judged.iter().any(Vec::is_empty), "some are accepted");
    for path in [
        "beneficiary.nik",
        "beneficiary.kk",
        "area",
        "program",
        "beneficiary.ppks[1]",
        "followUpOn",
        "visitedAt",
        "events[0]",
        "events[1].kind",
        "createdBy",
        "attachments",
        "attachments[0]",
        "attachments[0].sha256",
        "attachments[0].size",
        "attachments[0].mime",
        "attachments[0].kind",
        "attachments[0].takenAt",
        "attachments[0].caption",
        "",
    ] {
        assert!(
            judged.iter().flatten().any(|v| v["path"] == json!(path)),
            "no vector is refused at {path}"
        );
    }
}
