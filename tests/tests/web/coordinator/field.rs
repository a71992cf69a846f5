//! The field the coordinator tests share: field workers with phones in two kecamatan, people
//! of every role, and the documents the phones wrote.

use std::time::{SystemTime, UNIX_EPOCH};

use fieldsync_client::{Replica, SyncHandle};
use fieldsync_core::schema::{
    Event, EventKind, FieldDocument, Nik, PpksCategory, Program, RegionCode, Role, examples,
    format_millis,
};

use crate::common::{TestServer, WAIT};
use crate::support::{Client, Reply, person};

pub(super) const DAY: i64 = 86_400_000;
pub(super) const NIK_SITI: &str = "3277015204800002";
pub(super) const NIK_DARTO: &str = "3277025506600003";
pub(super) const SCRIPT: &str = "<script>alert(1)</script>";

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The WIB date of a time, as the filters take it.
pub(super) fn wib_date(millis: i64) -> String {
    format_millis(millis + 7 * 3_600_000)[..10].to_owned()
}

/// Two field workers with phones, in two kecamatan, and what they wrote.
pub(super) struct Field {
    pub(super) server: TestServer,
    pub(super) ani: (Replica, SyncHandle),
    pub(super) cahya: (Replica, SyncHandle),
    /// When the documents were made relative to.
    pub(super) now: i64,
    pub(super) visit_ani: String,
    pub(super) referral_ani: String,
    pub(super) outreach_ani: String,
    pub(super) visit_cahya: String,
    pub(super) referral_cahya: String,
    pub(super) outreach_cahya: String,
}

pub(super) async fn create(phone: &Replica, doc: FieldDocument) -> String {
    let id = phone.create(move |tx| doc.write(tx)).await.unwrap();
    phone.wait_acknowledged(id, WAIT).await.unwrap();
    id.to_string()
}

pub(super) fn visit(
    area: &str,
    by: &str,
    at: i64,
    nik: &str,
    name: &str,
    ppks: PpksCategory,
) -> FieldDocument {
    let mut v = examples::visit(&RegionCode::parse(area).unwrap(), by);
    v.envelope.created_at = format_millis(at);
    v.visited_at = format_millis(at);
    v.beneficiary.nik = Nik::parse(nik).unwrap();
    v.beneficiary.name = name.into();
    v.beneficiary.ppks = vec![ppks];
    FieldDocument::Visit(v)
}

pub(super) fn referral(
    area: &str,
    by: &str,
    at: i64,
    nik: &str,
    program: Program,
    ppks: PpksCategory,
) -> FieldDocument {
    let mut r = examples::referral(&RegionCode::parse(area).unwrap(), by);
    r.envelope.created_at = format_millis(at);
    r.beneficiary.nik = Nik::parse(nik).unwrap();
    r.beneficiary.ppks = vec![ppks];
    r.program = program;
    r.events = vec![Event {
        kind: EventKind::Submitted,
        at: format_millis(at),
        by: by.into(),
        note: None,
        id: None,
    }];
    FieldDocument::Referral(r)
}

pub(super) fn outreach(area: &str, by: &str, at: i64, topic: &str) -> FieldDocument {
    let mut o = examples::outreach(&RegionCode::parse(area).unwrap(), by);
    o.envelope.created_at = format_millis(at);
    o.held_at = format_millis(at);
    o.topic = topic.into();
    FieldDocument::Outreach(o)
}

/// People of every role, and six documents, newest first: Cahya's outreach (1 day ago),
/// referral (2), visit (3); Ani's outreach (7), referral (last event 8), visit (10).
pub(super) async fn field_on(server: TestServer) -> Field {
    person(&server, "ani", Role::Peksos, &["32.77.01.1001"]).await;
    person(&server, "cahya", Role::Peksos, &["32.77.02.1003"]).await;
    person(&server, "kota", Role::Coordinator, &["32.77"]).await;
    person(&server, "camat1", Role::Coordinator, &["32.77.01"]).await;
    person(&server, "camat2", Role::Coordinator, &["32.77.02"]).await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "admin", Role::Admin, &["32"]).await;
    let now = now();
    let ani = server.phone_as("ani").await;
    let cahya = server.phone_as("cahya").await;
    let a = "32.77.01.1001";
    let c = "32.77.02.1003";
    let mut v = visit(
        a,
        "ani",
        now - 10 * DAY,
        NIK_SITI,
        "Siti Aminah",
        PpksCategory::FakirMiskin,
    );
    if let FieldDocument::Visit(v) = &mut v {
        v.notes = format!("{SCRIPT} Rumah semi permanen");
    }
    let visit_ani = create(&ani.0, v).await;
    let mut r = referral(
        a,
        "ani",
        now - 9 * DAY,
        NIK_SITI,
        Program::KisPbi,
        PpksCategory::FakirMiskin,
    );
    if let FieldDocument::Referral(r) = &mut r {
        r.events.push(Event {
            kind: EventKind::DocumentsAdded,
            at: format_millis(now - 8 * DAY),
            by: "ani".into(),
            note: Some("SKTM menyusul".into()),
            id: None,
        });
    }
    let referral_ani = create(&ani.0, r).await;
    let outreach_ani = create(
        &ani.0,
        outreach(a, "ani", now - 7 * DAY, "Pencegahan stunting"),
    )
    .await;
    let visit_cahya = create(
        &cahya.0,
        visit(
            c,
            "cahya",
            now - 3 * DAY,
            NIK_DARTO,
            "Darto",
            PpksCategory::LansiaTerlantar,
        ),
    )
    .await;
    let referral_cahya = create(
        &cahya.0,
        referral(
            c,
            "cahya",
            now - 2 * DAY,
            NIK_DARTO,
            Program::Pkh,
            PpksCategory::LansiaTerlantar,
        ),
    )
    .await;
    let outreach_cahya = create(&cahya.0, outreach(c, "cahya", now - DAY, "Bahaya NAPZA")).await;
    Field {
        server,
        ani,
        cahya,
        now,
        visit_ani,
        referral_ani,
        outreach_ani,
        visit_cahya,
        referral_cahya,
        outreach_cahya,
    }
}

pub(super) async fn field() -> Field {
    field_on(TestServer::start().await).await
}

impl Field {
    pub(super) async fn browser(&self, user: &str) -> Client {
        Client::browser(&self.server, user).await
    }

    /// Ani's three documents, newest first.
    pub(super) fn anis(&self) -> Vec<&str> {
        vec![&self.outreach_ani, &self.referral_ani, &self.visit_ani]
    }

    pub(super) fn cahyas(&self) -> Vec<&str> {
        vec![
            &self.outreach_cahya,
            &self.referral_cahya,
            &self.visit_cahya,
        ]
    }
}

/// The document ids of a feed answer, in order.
pub(super) fn docs(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["document"].as_str().unwrap().to_owned())
        .collect()
}

/// The `data-doc` ids of a page's rows, in order.
pub(super) fn rows(page: &str) -> Vec<String> {
    page.split("data-doc=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}
