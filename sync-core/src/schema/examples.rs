//! Ready-made valid documents, for the load generator, tests and demos: each is the example
//! of docs/schema.md, with the author and area given.

use super::document::{
    Beneficiary, Consent, DocKind, DocumentsChecklist, Envelope, Event, Outreach, Referral, Visit,
};
use super::values::{EventKind, Nik, PpksCategory, Program, RegionCode};

fn envelope(kind: DocKind, area: &RegionCode, by: &str) -> Envelope {
    Envelope {
        kind,
        schema: 1,
        area: area.clone(),
        created_by: by.to_owned(),
        created_at: "2026-11-20T08:00:00Z".into(),
    }
}

fn beneficiary() -> Beneficiary {
    Beneficiary {
        nik: Nik::parse("3277015204800002").expect("a valid NIK"),
        kk: None,
        name: "Siti Aminah".into(),
        address: Some("Jl. Mawar 5, RT 02/RW 05".into()),
        ppks: vec![PpksCategory::FakirMiskin],
    }
}

/// A visit by `by` in `area`.
pub fn visit(area: &RegionCode, by: &str) -> Visit {
    Visit {
        envelope: envelope(DocKind::Visit, area, by),
        beneficiary: beneficiary(),
        visited_at: "2026-11-20T09:30:00Z".into(),
        purpose: Some("Asesmen awal".into()),
        notes: "Rumah semi permanen, 5 anggota keluarga.".into(),
        actions: vec!["rujuk KIS-PBI".into()],
        follow_up_on: Some("2026-12-01".into()),
        location: None,
    }
}

/// A referral to KIS-PBI by `by` in `area`, submitted.
pub fn referral(area: &RegionCode, by: &str) -> Referral {
    Referral {
        envelope: envelope(DocKind::Referral, area, by),
        beneficiary: beneficiary(),
        program: Program::KisPbi,
        reason: "Tidak memiliki jaminan kesehatan.".into(),
        documents: DocumentsChecklist {
            ktp: true,
            kk: true,
            ..Default::default()
        },
        consent: Consent {
            given: true,
            at: "2026-11-20T09:40:00Z".into(),
            by: "Siti Aminah".into(),
        },
        visit: None,
        events: vec![Event {
            kind: EventKind::Submitted,
            at: "2026-11-20T09:46:00Z".into(),
            by: by.to_owned(),
            note: None,
            id: None,
        }],
    }
}

/// An outreach note by `by` in `area`.
pub fn outreach(area: &RegionCode, by: &str) -> Outreach {
    Outreach {
        envelope: envelope(DocKind::Outreach, area, by),
        topic: "Pencegahan stunting".into(),
        held_at: "2026-11-19T14:00:00Z".into(),
        place: "Balai RW 05".into(),
        attendees: 25,
        notes: "Dihadiri kader posyandu.".into(),
    }
}
