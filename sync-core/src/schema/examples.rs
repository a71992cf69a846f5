//! Ready-made valid documents, for the load generator, tests and demos: each is the example
//! of docs/schema.md, with the author and area given.

use super::attachment::{Attachment, AttachmentKind, MediaType, Sha256};
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
        attachments: Vec::new(),
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
        attachments: Vec::new(),
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

/// A scan of `kind` as the field app stores it: a JPEG of the phone's camera, shrunk. The hash
/// is that of the bytes `b"scan"`, which tests may upload as its blob.
pub fn scan(kind: AttachmentKind) -> Attachment {
    Attachment {
        sha256: Sha256::parse("59ad1b2fc74287ded1bba7af67765d23ad4a49f1ae51902cc2ed3f8ebee96cfa")
            .expect("a valid SHA-256"),
        size: 4,
        mime: MediaType::Jpeg,
        kind,
        taken_at: "2026-11-20T09:42:00Z".into(),
        caption: None,
        id: None,
    }
}
