//! Violations reach the server's log and the append-only audit table: none may carry a NIK, a
//! KK number or a person's name, whatever field a phone put it in.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use fieldsync_core::schema::{
    Author, FieldDocument, Kk, Nik, RegionCode, Role, Violation, check_change, examples,
};

const NAME: &str = "Siti Aminah";

/// NIKs and KK numbers each refused for a different reason.
const NUMBERS: [&str; 6] = [
    "3277011213900001",  // month 13
    "3277017203900001",  // day 72
    "327701120390001",   // 15 digits
    "32770112039000017", // 17 digits
    "3277011203900O01",  // a letter O
    "3277011203900001",  // valid as a NIK, put where it does not belong
];

/// Whether `text` holds 6 or more consecutive characters of `raw`.
fn leaks(text: &str, raw: &str) -> bool {
    let chars: Vec<char> = raw.chars().collect();
    chars
        .windows(6)
        .any(|w| text.contains(&w.iter().collect::<String>()))
}

fn assert_clean(violations: &[Violation], raw: &str) {
    assert!(!violations.is_empty(), "expected violations for {raw}");
    for v in violations {
        assert!(
            !leaks(&v.to_string(), raw),
            "a violation repeats a personal value: {v}"
        );
    }
}

fn visit() -> AutoCommit {
    let mut doc = AutoCommit::new();
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    FieldDocument::Visit(examples::visit(&area, "peksos-ani"))
        .write(&mut doc)
        .unwrap();
    doc
}

fn referral() -> AutoCommit {
    let mut doc = AutoCommit::new();
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    FieldDocument::Referral(examples::referral(&area, "peksos-ani"))
        .write(&mut doc)
        .unwrap();
    doc
}

fn beneficiary(doc: &AutoCommit) -> automerge::ObjId {
    doc.get(ROOT, "beneficiary").unwrap().unwrap().1
}

#[test]
fn refused_nik_and_kk_numbers_are_never_repeated() {
    for raw in NUMBERS {
        let mut doc = visit();
        let b = beneficiary(&doc);
        doc.put(&b, "nik", raw).unwrap();
        doc.put(&b, "kk", raw).unwrap();
        doc.put(ROOT, "area", raw).unwrap();
        doc.put(ROOT, "followUpOn", raw).unwrap();
        let violations = FieldDocument::read(&doc).unwrap_err();
        assert_clean(&violations, raw);
        assert!(
            violations.iter().any(|v| v.path == "area"),
            "{violations:?}"
        );
    }
}

#[test]
fn a_name_in_the_wrong_field_is_never_repeated() {
    // In the envelope...
    let mut doc = referral();
    for key in ["type", "area", "createdAt", "schema"] {
        doc.put(ROOT, key, NAME).unwrap();
    }
    let violations = FieldDocument::read(&doc).unwrap_err();
    assert_eq!(violations.len(), 4, "{violations:?}");
    assert_clean(&violations, NAME);

    // ...and in the body of a referral.
    let mut doc = referral();
    let b = beneficiary(&doc);
    for key in ["nik", "kk"] {
        doc.put(&b, key, NAME).unwrap();
    }
    let ppks = doc.get(&b, "ppks").unwrap().unwrap().1;
    doc.insert(&ppks, 0, NAME).unwrap();
    let t = doc.put_object(ROOT, "program", ObjType::Text).unwrap();
    doc.splice_text(&t, 0, 0, NAME).unwrap();
    doc.put(ROOT, "visit", NAME).unwrap();
    let consent = doc.get(ROOT, "consent").unwrap().unwrap().1;
    doc.put(&consent, "at", NAME).unwrap();
    let events = doc.get(ROOT, "events").unwrap().unwrap().1;
    let first = doc.get(&events, 0).unwrap().unwrap().1;
    doc.put(&first, "kind", NAME).unwrap();
    doc.put(&first, "at", NAME).unwrap();
    // Even a field named after a person.
    doc.put(&first, NAME, true).unwrap();
    let violations = FieldDocument::read(&doc).unwrap_err();
    assert_eq!(violations.len(), 9, "{violations:?}");
    assert_clean(&violations, NAME);
}

#[test]
fn the_rules_name_no_user_and_no_beneficiary() {
    // A document written in someone else's name, outside the author's areas.
    let mut doc = visit();
    doc.put(ROOT, "createdBy", NAME).unwrap();
    let after = FieldDocument::read_state(&doc).unwrap();
    let author = Author::user(
        "peksos-ani",
        Role::Peksos,
        vec![RegionCode::parse_prefix("32.73").unwrap()],
    );
    let violations = check_change(None, after.as_ref(), &author).unwrap_err();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert_clean(&violations, NAME);
    assert_clean(&violations, "peksos-ani");
}

#[test]
fn debug_output_masks_nik_and_kk() {
    let nik = Nik::parse("3277015204800002").unwrap();
    let kk = Kk::parse("3277010101090003").unwrap();
    assert_eq!(format!("{nik:?}"), "Nik(3277********0002)");
    assert_eq!(format!("{kk:?}"), "Kk(3277********0003)");
    let area = RegionCode::parse("32.77.01.1001").unwrap();
    let shown = format!("{:?}", examples::visit(&area, "peksos-ani"));
    assert!(!shown.contains("3277015204800002"), "{shown}");
}
