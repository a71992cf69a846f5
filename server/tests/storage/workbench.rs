//! The workbench's reads and the received time of query rows, on every backend: each list
//! finds what it should in scope and nothing outside it; `received_at` is the time a row was
//! first written and survives later changes and rebuilds.

use std::time::{SystemTime, UNIX_EPOCH};

use fieldsync_core::schema::{DocKind, RegionCode, Role, format_millis};
use fieldsync_server::projection::{Common, Person, Projection, ReferralRow, VisitRow};
use fieldsync_server::storage::activity::{FeedFilter, Scope};
use fieldsync_server::storage::workbench::Cutoffs;
use fieldsync_server::storage::{Storage, Write};

use super::{add_person, backends, did, doc_with_changes, finish};

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The WIB date of a time.
fn date(millis: i64) -> String {
    format_millis(millis + 7 * 3_600_000)[..10].to_owned()
}

fn common(area: &str, by: &str, at: i64) -> Common {
    Common {
        area: area.into(),
        created_by: by.into(),
        created_at: at,
        schema: 1,
    }
}

fn person(nik: &str) -> Person {
    Person {
        nik: nik.into(),
        kk: None,
        name: format!("Warga {}", &nik[12..]),
        ppks: "|fakir-miskin|".into(),
    }
}

fn visit(area: &str, by: &str, nik: &str, at: i64, follow_up: Option<i64>) -> Projection {
    Projection::Visit(VisitRow {
        common: common(area, by, at),
        person: person(nik),
        visited_at: at,
        purpose: None,
        follow_up_on: follow_up.map(date),
        lat: None,
        lon: None,
        notes_excerpt: String::new(),
        attachments: Vec::new(),
    })
}

/// A referral created at `created`, in `status` since `since` (its latest event, and its
/// decision when approved or enrolled).
fn referral(area: &str, by: &str, status: &str, created: i64, since: i64) -> Projection {
    let decided = ["approved", "enrolled"].contains(&status).then_some(since);
    Projection::Referral(ReferralRow {
        common: common(area, by, created),
        person: person("3277015204800009"),
        program: "pkh".into(),
        status: status.into(),
        visit_id: None,
        consent_given: true,
        documents: [true; 4],
        reason_excerpt: String::new(),
        submitted_at: Some(created),
        decided_at: decided,
        last_event_at: Some(since),
        events: Vec::new(),
        attachments: Vec::new(),
    })
}

async fn put(storage: &dyn Storage, n: u8, projection: Projection) -> String {
    let (_, chunks) = doc_with_changes(1);
    storage
        .write(&[Write::Append {
            doc: did(n),
            bytes: chunks[0].clone(),
            projection,
        }])
        .await
        .unwrap();
    did(n).to_string()
}

fn everything(areas: &str) -> Scope {
    Scope {
        areas: vec![RegionCode::parse_prefix(areas).unwrap()],
        kinds: vec![DocKind::Visit, DocKind::Referral, DocKind::Outreach],
    }
}

#[tokio::test]
async fn received_time_is_the_first_write_and_survives_changes_and_rebuilds() {
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        let long_ago = now() - 30 * DAY;
        let before = now();
        let (_, chunks) = doc_with_changes(2);
        let area = "32.77.01.1001";
        s.write(&[Write::Append {
            doc: did(40),
            bytes: chunks[0].clone(),
            projection: visit(area, "ani", "3277015204800001", long_ago, None),
        }])
        .await
        .unwrap();
        let after = now();
        let feed = FeedFilter::new(everything("32.77.01"), 10);
        let rows = s.feed(&feed).await.unwrap();
        assert_eq!(rows.len(), 1, "{}", b.name);
        let received = rows[0].received_at;
        assert!((before..=after).contains(&received), "{}", b.name);
        assert_eq!(rows[0].happened_at, long_ago, "{}", b.name);

        // The clock moves on; a later change and a rebuild keep the first time.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        s.write(&[Write::Append {
            doc: did(40),
            bytes: chunks[1].clone(),
            projection: visit(area, "ani", "3277015204800001", long_ago + DAY, None),
        }])
        .await
        .unwrap();
        let last = s.load(did(40)).await.unwrap().unwrap().last_chunk;
        s.write(&[Write::Project {
            doc: did(40),
            source: last,
            projection: visit(area, "ani", "3277015204800001", long_ago + 2 * DAY, None),
        }])
        .await
        .unwrap();
        let rows = s.feed(&feed).await.unwrap();
        assert_eq!(rows[0].happened_at, long_ago + 2 * DAY, "{}", b.name);
        assert_eq!(rows[0].received_at, received, "{}", b.name);
    }
    finish(backends).await;
}

#[tokio::test]
async fn the_feed_is_ordered_by_received_time_with_its_cursor() {
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        let t = now();
        // Received in this order; dated in the opposite one.
        let old = put(
            s,
            41,
            visit("32.77.01.1001", "ani", "3277015204800001", t - DAY, None),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let late = put(
            s,
            42,
            visit(
                "32.77.01.1001",
                "ani",
                "3277015204800002",
                t - 9 * DAY,
                None,
            ),
        )
        .await;
        let mut feed = FeedFilter::new(everything("32.77"), 10);
        let rows = s.feed(&feed).await.unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.document_id.as_str()).collect();
        assert_eq!(ids, [late.as_str(), old.as_str()], "{}", b.name);
        feed.before = Some(fieldsync_server::storage::activity::Cursor {
            at: rows[0].received_at,
            doc: rows[0].document_id.clone(),
        });
        let rest = s.feed(&feed).await.unwrap();
        assert_eq!(rest.len(), 1, "{}", b.name);
        assert_eq!(rest[0].document_id, old, "{}", b.name);
    }
    finish(backends).await;
}

#[tokio::test]
async fn workbench_lists_find_what_needs_action_in_scope_only() {
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        add_person(s, "ani", Role::Peksos, "32.77.01.1001").await;
        add_person(s, "budi", Role::Peksos, "32.77.01.1002").await;
        add_person(s, "cahya", Role::Peksos, "32.77.02.1003").await;
        add_person(s, "dodi", Role::Peksos, "32.77.01.1001").await;
        add_person(s, "camat", Role::Coordinator, "32.77.01").await;
        assert!(s.disable_user("dodi").await.unwrap());
        let t = now();
        let (_, ani_phone) = fieldsync_server::admin::enroll_device(s, "ani", Some("HP Ani"), None)
            .await
            .unwrap();
        let (_, budi_token) =
            fieldsync_server::admin::enroll_device(s, "budi", Some("HP Budi"), None)
                .await
                .unwrap();
        let (_, cahya_token) =
            fieldsync_server::admin::enroll_device(s, "cahya", Some("HP Cahya"), None)
                .await
                .unwrap();
        let hash = fieldsync_server::auth::token_hash;
        // Ani's phone synced 9 days ago, Budi's an hour ago, Cahya's (out of scope) never.
        s.authenticate(&hash(&ani_phone), t - 9 * DAY)
            .await
            .unwrap();
        s.authenticate(&hash(&budi_token), t - 3_600_000)
            .await
            .unwrap();
        let _ = cahya_token;

        let (a1, a2, c3) = ("32.77.01.1001", "32.77.01.1002", "32.77.02.1003");
        let overdue = put(
            s,
            50,
            visit(
                a1,
                "ani",
                "3277015204800001",
                t - 10 * DAY,
                Some(t - 3 * DAY),
            ),
        )
        .await;
        // Answered by a later visit of the same person, which is itself due this week.
        let answered = put(
            s,
            51,
            visit(
                a1,
                "ani",
                "3277015204800002",
                t - 20 * DAY,
                Some(t - 5 * DAY),
            ),
        )
        .await;
        let due = put(
            s,
            52,
            visit(a2, "budi", "3277015204800002", t - DAY, Some(t + 2 * DAY)),
        )
        .await;
        let foreign = put(
            s,
            53,
            visit(
                c3,
                "cahya",
                "3277025204800003",
                t - 10 * DAY,
                Some(t - 3 * DAY),
            ),
        )
        .await;
        let waiting = put(
            s,
            54,
            referral(a1, "ani", "needs-documents", t - 12 * DAY, t - 10 * DAY),
        )
        .await;
        let fresh = put(
            s,
            55,
            referral(a1, "ani", "needs-documents", t - 2 * DAY, t - 2 * DAY),
        )
        .await;
        let approved = put(
            s,
            56,
            referral(a2, "budi", "approved", t - 25 * DAY, t - 20 * DAY),
        )
        .await;
        let recent = put(
            s,
            57,
            referral(a2, "budi", "approved", t - 4 * DAY, t - 3 * DAY),
        )
        .await;
        let enrolled = put(
            s,
            58,
            referral(a2, "budi", "enrolled", t - 30 * DAY, t - 20 * DAY),
        )
        .await;
        let foreign_ref = put(
            s,
            59,
            referral(c3, "cahya", "needs-documents", t - 12 * DAY, t - 10 * DAY),
        )
        .await;

        let cutoffs = Cutoffs {
            today: date(t),
            week_end: date(t + 6 * DAY),
            week_from: t - 2 * DAY,
            week_until: t + DAY,
            needs_documents_before: t - 7 * DAY,
            approved_before: t - 14 * DAY,
            unsynced_before: t - 7 * DAY,
            late_since: t - 7 * DAY,
            late_by: 3 * DAY,
            limit: 50,
        };
        let w = s
            .workbench(&everything("32.77.01"), &cutoffs)
            .await
            .unwrap();
        let ids = |l: &fieldsync_server::storage::workbench::WorkList| {
            let mut v: Vec<String> = l.rows.iter().map(|r| r.document_id.clone()).collect();
            v.sort();
            (l.total, v)
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            ids(&w.follow_ups_overdue),
            (1, vec![overdue.clone()]),
            "{}",
            b.name
        );
        assert_eq!(ids(&w.follow_ups_due), (1, vec![due.clone()]), "{}", b.name);
        assert_eq!(
            ids(&w.needs_documents),
            (1, vec![waiting.clone()]),
            "{}",
            b.name
        );
        assert_eq!(
            ids(&w.approved_waiting),
            (1, vec![approved.clone()]),
            "{}",
            b.name
        );
        // Dated 3 or more days before they arrived (all arrived just now): not `due` (1 day)
        // nor `fresh` (2 days).
        assert_eq!(
            ids(&w.late),
            (
                6,
                sorted(vec![
                    overdue.clone(),
                    answered.clone(),
                    waiting.clone(),
                    approved.clone(),
                    recent.clone(),
                    enrolled.clone()
                ])
            ),
            "{}",
            b.name
        );
        for list in [&w.follow_ups_overdue, &w.needs_documents, &w.late] {
            assert!(
                list.rows
                    .iter()
                    .all(|r| r.document_id != foreign && r.document_id != foreign_ref),
                "{}",
                b.name
            );
        }
        let waiting_row = &w.needs_documents.rows[0];
        assert_eq!(waiting_row.since, Some(t - 10 * DAY), "{}", b.name);
        assert_eq!(
            waiting_row.worker_name.as_deref(),
            Some("ani"),
            "{}",
            b.name
        );
        let _ = fresh;

        // Phones: Ani's, 9 days without a sync; Budi's synced; Cahya's is not in scope.
        let phones: Vec<&str> = w.unsynced.iter().map(|(p, _)| p.id.as_str()).collect();
        assert_eq!(phones, ["ani"], "{}", b.name);
        // Workers: Ani and Budi (Dodi is disabled, Cahya elsewhere, the coordinator is no
        // field worker); only Budi visited this week.
        let idle: Vec<&str> = w.idle.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(idle, ["ani"], "{}", b.name);
        let loads: Vec<(&str, i64, i64, i64)> = w
            .workers
            .iter()
            .map(|l| {
                (
                    l.person.id.as_str(),
                    l.overdue,
                    l.open_cases,
                    l.visits_this_week,
                )
            })
            .collect();
        assert_eq!(loads, [("ani", 1, 2, 0), ("budi", 0, 2, 1)], "{}", b.name);
        assert_eq!(w.workers[0].last_sync(), Some(t - 9 * DAY), "{}", b.name);

        // A kelurahan coordinator sees only theirs; a role reading nothing sees nothing.
        let w2 = s
            .workbench(&everything("32.77.01.1002"), &cutoffs)
            .await
            .unwrap();
        assert_eq!(w2.follow_ups_overdue.total, 0, "{}", b.name);
        assert_eq!(
            ids(&w2.approved_waiting).1,
            vec![approved.clone()],
            "{}",
            b.name
        );
        let names: Vec<&str> = w2.workers.iter().map(|l| l.person.id.as_str()).collect();
        assert_eq!(names, ["budi"], "{}", b.name);
        let none = Scope {
            areas: vec![RegionCode::parse_prefix("32.77.01").unwrap()],
            kinds: Vec::new(),
        };
        let w3 = s.workbench(&none, &cutoffs).await.unwrap();
        assert_eq!(w3.late.total + w3.follow_ups_overdue.total, 0, "{}", b.name);
    }
    finish(backends).await;
}
