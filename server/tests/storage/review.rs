//! The supervisor's reads on both backends: the queue after a given referral ("next
//! referral"), and the referrals still waiting for a decision (the statistics' backlog),
//! both within the caller's areas.

use fieldsync_core::schema::{FieldDocument, RegionCode, examples, timestamp_millis};
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::Write;
use fieldsync_server::storage::review::{OpenRow, QueueFilter};

use super::{backends, did, doc_with_changes, finish};

/// A referral's rows: in `area`, submitted at `at`, or a draft.
fn referral(area: &str, at: Option<&str>) -> Projection {
    let mut r = examples::referral(&RegionCode::parse(area).unwrap(), "peksos-ani");
    match at {
        Some(at) => {
            r.envelope.created_at = at.to_owned();
            r.events[0].at = at.to_owned();
        }
        None => r.events.clear(),
    }
    Projection::of(Some(&FieldDocument::Referral(r)))
}

#[tokio::test]
async fn the_queue_after_a_referral_and_the_backlog_stay_in_scope() {
    let backends = backends().await;
    let cases = [
        (60, "32.77.01.1001", Some("2026-11-01T01:00:00Z")),
        (61, "32.77.02.1003", Some("2026-11-05T01:00:00Z")),
        (62, "32.77.01.1001", Some("2026-11-10T01:00:00Z")),
        // Another city's, and a draft.
        (63, "32.73.01.1001", Some("2026-11-03T01:00:00Z")),
        (64, "32.77.01.1001", None),
    ];
    for b in &backends {
        for (n, area, at) in cases {
            let (_, chunks) = doc_with_changes(1);
            b.storage
                .write(&[Write::Append {
                    doc: did(n),
                    bytes: chunks[0].clone(),
                    projection: referral(area, at),
                }])
                .await
                .unwrap();
        }
        let city = vec![RegionCode::parse_prefix("32.77").unwrap()];
        let queue = |after: &str| QueueFilter {
            scopes: city.clone(),
            statuses: vec!["submitted".into()],
            after: Some(after.to_owned()),
            limit: 10,
            ..QueueFilter::default()
        };
        let ids = |page: fieldsync_server::storage::review::QueuePage| -> Vec<String> {
            page.rows.into_iter().map(|r| r.document_id).collect()
        };
        let after_first = b.storage.review_queue(&queue(&did(60).to_string())).await;
        assert_eq!(
            ids(after_first.unwrap()),
            [did(61).to_string(), did(62).to_string()],
            "{}",
            b.name
        );
        // After another city's referral: only this city's later ones.
        let after_other = b.storage.review_queue(&queue(&did(63).to_string())).await;
        assert_eq!(
            ids(after_other.unwrap()),
            [did(61).to_string(), did(62).to_string()],
            "{}",
            b.name
        );
        let after_last = b.storage.review_queue(&queue(&did(62).to_string())).await;
        assert!(ids(after_last.unwrap()).is_empty(), "{}", b.name);
        let unknown = b.storage.review_queue(&queue(&did(99).to_string())).await;
        assert!(ids(unknown.unwrap()).is_empty(), "{}", b.name);

        let open = b
            .storage
            .open_referrals(&city, None, &["submitted".into()])
            .await
            .unwrap();
        let at = |s: &str| timestamp_millis(s).unwrap();
        let row = |area: &str, since: &str| OpenRow {
            program: "kis-pbi".into(),
            area: area.into(),
            status: "submitted".into(),
            waiting_since: at(since),
        };
        assert_eq!(
            open,
            [
                row("32.77.01.1001", "2026-11-01T01:00:00Z"),
                row("32.77.02.1003", "2026-11-05T01:00:00Z"),
                row("32.77.01.1001", "2026-11-10T01:00:00Z"),
            ],
            "{}",
            b.name
        );
        let kecamatan = RegionCode::parse_prefix("32.77.02").unwrap();
        let narrowed = b
            .storage
            .open_referrals(&city, Some(&kecamatan), &["submitted".into()])
            .await
            .unwrap();
        assert_eq!(narrowed.len(), 1, "{}", b.name);
        let none = b.storage.open_referrals(&city, None, &[]).await.unwrap();
        assert!(none.is_empty(), "{}", b.name);
    }
    finish(backends).await;
}
