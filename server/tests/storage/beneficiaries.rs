//! Search and households on both backends: by NIK or KK prefix, by the start of each word of
//! a name whatever its case and accents, an earlier spelling still found, never outside the
//! reader's scope; and the names of records stored before search existed filled in once.

use fieldsync_core::schema::{DocKind, FieldDocument, Kk, Nik, RegionCode, examples};
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::Write;
use fieldsync_server::storage::activity::Scope;
use fieldsync_server::storage::beneficiaries::{FILLED_KEY, Query};

use super::{backends, did, doc_with_changes, finish};

fn visit(area: &str, nik: &str, kk: Option<&str>, name: &str) -> Projection {
    let mut v = examples::visit(&RegionCode::parse(area).unwrap(), "peksos-ani");
    v.beneficiary.nik = Nik::parse(nik).unwrap();
    v.beneficiary.kk = kk.map(|k| Kk::parse(k).unwrap());
    v.beneficiary.name = name.into();
    Projection::of(Some(&FieldDocument::Visit(v)))
}

fn referral(area: &str, nik: &str, kk: Option<&str>, name: &str) -> Projection {
    let mut r = examples::referral(&RegionCode::parse(area).unwrap(), "peksos-ani");
    r.beneficiary.nik = Nik::parse(nik).unwrap();
    r.beneficiary.kk = kk.map(|k| Kk::parse(k).unwrap());
    r.beneficiary.name = name.into();
    Projection::of(Some(&FieldDocument::Referral(r)))
}

fn scope(area: &str) -> Scope {
    Scope {
        areas: vec![RegionCode::parse_prefix(area).unwrap()],
        kinds: vec![DocKind::Visit, DocKind::Referral, DocKind::Outreach],
    }
}

fn words(list: &[&str]) -> Query {
    Query::Words(list.iter().map(|w| (*w).to_owned()).collect())
}

const KK: &str = "3277010101200001";

#[tokio::test]
async fn beneficiaries_are_found_by_number_and_name_within_scope() {
    let backends = backends().await;
    for b in &backends {
        let s = b.storage.as_ref();
        let (_, chunks) = doc_with_changes(2);
        let append = |n: u8, projection: Projection| Write::Append {
            doc: did(n),
            bytes: chunks[0].clone(),
            projection,
        };
        s.write(&[
            append(
                60,
                visit("32.77.01.1001", "3277015204800002", Some(KK), "Siti Aminah"),
            ),
            append(
                61,
                referral("32.77.01.1001", "3277015204800002", Some(KK), "Siti Aminah"),
            ),
            append(
                62,
                visit(
                    "32.77.01.1001",
                    "3277011509750003",
                    Some(KK),
                    "Énggar Prasetyo",
                ),
            ),
            // Another kecamatan: never found from 32.77.01.
            append(
                63,
                visit("32.77.02.1003", "3277025204800004", None, "Siti Amalia"),
            ),
        ])
        .await
        .unwrap();
        let in_selatan = scope("32.77.01");
        let found = |q: Query| async move {
            let mut ids: Vec<String> = s
                .find_records(&scope("32.77.01"), &q, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.document_id)
                .collect();
            ids.sort();
            ids
        };
        let ids = |ns: &[u8]| -> Vec<String> { ns.iter().map(|n| did(*n).to_string()).collect() };

        assert_eq!(
            found(words(&["sit", "ami"])).await,
            ids(&[60, 61]),
            "{}",
            b.name
        );
        assert_eq!(found(words(&["ami"])).await, ids(&[60, 61]), "{}", b.name);
        assert_eq!(
            found(words(&["engg"])).await,
            ids(&[62]),
            "{}: accents",
            b.name
        );
        assert_eq!(
            found(words(&["siti", "pras"])).await,
            ids(&[]),
            "{}: every word",
            b.name
        );
        assert_eq!(
            found(words(&["minah"])).await,
            ids(&[]),
            "{}: word starts only",
            b.name
        );
        assert_eq!(
            found(Query::Number("327701520".into())).await,
            ids(&[60, 61]),
            "{}",
            b.name
        );
        assert_eq!(
            found(Query::Number("3277010101".into())).await,
            ids(&[60, 61, 62]),
            "{}: by KK",
            b.name
        );
        assert_eq!(
            found(Query::Number("3277025204".into())).await,
            ids(&[]),
            "{}: out of scope",
            b.name
        );
        let city = s
            .find_records(&scope("32.77"), &words(&["siti"]), 100)
            .await
            .unwrap();
        assert_eq!(city.len(), 3, "{}: the city sees both kecamatan", b.name);

        // A renamed beneficiary is found by the new name and the old one.
        s.write(&[Write::Append {
            doc: did(62),
            bytes: chunks[1].clone(),
            projection: visit(
                "32.77.01.1001",
                "3277011509750003",
                Some(KK),
                "Enggar Prasetya",
            ),
        }])
        .await
        .unwrap();
        assert_eq!(found(words(&["prasetya"])).await, ids(&[62]), "{}", b.name);
        assert_eq!(found(words(&["prasetyo"])).await, ids(&[62]), "{}", b.name);

        // A supervisor reads referrals only: visits are not listed.
        let supervisor = Scope {
            kinds: vec![DocKind::Referral],
            ..in_selatan.clone()
        };
        let only = s
            .find_records(&supervisor, &words(&["siti"]), 100)
            .await
            .unwrap();
        assert_eq!(only.len(), 1, "{}", b.name);
        assert_eq!(only[0].kind, "referral");
        assert_eq!(only[0].program.as_deref(), Some("kis-pbi"));
        let nothing = Scope {
            kinds: vec![],
            ..in_selatan.clone()
        };
        assert!(
            s.find_records(&nothing, &words(&["siti"]), 100)
                .await
                .unwrap()
                .is_empty()
        );

        // The household: both members, newest first.
        let house = s.household(&in_selatan, KK, 100).await.unwrap();
        assert_eq!(house.len(), 3, "{}: {house:?}", b.name);
        assert!(house.windows(2).all(|w| w[0].at >= w[1].at), "{}", b.name);
        assert!(
            s.household(&scope("32.77.02"), KK, 100)
                .await
                .unwrap()
                .is_empty()
        );

        // Records stored before search existed get their words once.
        sqlx_exec(&b.url, "DELETE FROM name_words").await;
        assert!(found(words(&["siti"])).await.is_empty(), "{}", b.name);
        sqlx_exec(
            &b.url,
            &format!("DELETE FROM server_meta WHERE key = '{FILLED_KEY}'"),
        )
        .await;
        assert_eq!(s.fill_name_words().await.unwrap(), 4, "{}", b.name);
        assert_eq!(found(words(&["siti"])).await, ids(&[60, 61]), "{}", b.name);
        assert_eq!(s.fill_name_words().await.unwrap(), 0, "{}: once", b.name);
    }
    finish(backends).await;
}

/// Runs one statement on the database at `url`, as another process would.
async fn sqlx_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
