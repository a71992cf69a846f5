//! The merged feed: scope, order, filters, paging, roles, escaping.

use fieldsync_core::schema::format_millis;
use serde_json::Value;

use super::field::*;
use crate::support::Client;

/// Coordinators see every worker's documents in their areas, merged newest first.
pub(super) async fn feed_is_merged_and_scoped(f: &Field) {
    let mut kota = f.browser("kota").await;
    let all: Vec<&str> = f.cahyas().into_iter().chain(f.anis()).collect();
    let reply = kota.get("/api/activity").await;
    assert_eq!(docs(&reply), all);
    let items = reply.json()["items"].clone();
    let kinds: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "outreach", "referral", "visit", "outreach", "referral", "visit"
        ]
    );
    let referral = &items[4];
    assert_eq!(referral["status"], "submitted");
    assert_eq!(referral["program"], "kis-pbi");
    assert_eq!(
        referral["at"],
        format_millis(f.now - 8 * DAY),
        "a referral's time is its last event"
    );
    assert_eq!(referral["beneficiary"]["nik"], NIK_SITI);
    assert_eq!(referral["workerName"], "ani");
    assert_eq!(items[3]["beneficiary"], Value::Null);
    assert_eq!(items[3]["attendees"], 25);

    let page = kota.get("/activity").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("<table id=\"feed\">"), "{html}");
    assert_eq!(rows(&html), all);
    assert!(html.contains(&format!(
        "data-doc=\"{}\" data-kind=\"outreach\"",
        f.outreach_ani
    )));
    assert!(html.contains("id=\"live-status\""));
    assert!(html.contains("class=\"live\""));
    assert!(html.contains(&format!("href=\"/beneficiaries/{NIK_SITI}\"")));

    let mut camat1 = f.browser("camat1").await;
    assert_eq!(docs(&camat1.get("/api/activity").await), f.anis());
    assert_eq!(rows(&camat1.get("/activity").await.text()), f.anis());
    let mut camat2 = f.browser("camat2").await;
    assert_eq!(docs(&camat2.get("/api/activity").await), f.cahyas());
    let mut cahya = f.browser("cahya").await;
    assert_eq!(docs(&cahya.get("/api/activity").await), f.cahyas());
}

#[tokio::test]
async fn the_feed_merges_every_worker_in_scope_newest_first() {
    let f = field().await;
    feed_is_merged_and_scoped(&f).await;
    // A script with an API token reads the same.
    let mut script = Client::script(&f.server, "camat1").await;
    assert_eq!(docs(&script.get("/api/activity").await), f.anis());
}

#[tokio::test]
async fn text_from_phones_is_escaped_on_the_page() {
    let f = field().await;
    let mut kota = f.browser("kota").await;
    let html = kota.get("/activity").await.text();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains(SCRIPT));
    let timeline = kota.get(&format!("/beneficiaries/{NIK_SITI}")).await.text();
    assert!(timeline.contains("&lt;script&gt;"));
    assert!(!timeline.contains(SCRIPT));
}

pub(super) async fn filters_narrow(f: &Field) {
    let mut kota = f.browser("kota").await;
    let mut q = async |query: &str| docs(&kota.get(&format!("/api/activity?{query}")).await);
    assert_eq!(q("area=32.77.02").await, f.cahyas());
    assert_eq!(q("area=32.77.01.1001").await, f.anis());
    assert_eq!(q("worker=ani").await, f.anis());
    assert_eq!(
        q("type=referral").await,
        [&*f.referral_cahya, &*f.referral_ani]
    );
    assert_eq!(
        q("ppks=lansia-terlantar").await,
        [&*f.referral_cahya, &*f.visit_cahya]
    );
    assert_eq!(q("program=kis-pbi").await, [&*f.referral_ani]);
    assert_eq!(q("type=visit&area=32.77.01").await, [&*f.visit_ani]);
    assert_eq!(
        q(&format!("from={0}&to={0}", wib_date(f.now - 3 * DAY))).await,
        [&*f.visit_cahya]
    );
    let (from, to) = (wib_date(f.now - 8 * DAY), wib_date(f.now - 2 * DAY));
    assert_eq!(
        q(&format!("from={from}&to={to}")).await,
        [
            &*f.referral_cahya,
            &*f.visit_cahya,
            &*f.outreach_ani,
            &*f.referral_ani
        ]
    );
    // Blank fields, as an unchosen select sends them, mean "any".
    assert_eq!(
        q("area=&worker=&type=&ppks=&program=&from=&to=")
            .await
            .len(),
        6
    );
    // A filtered view is a link: the page keeps the filter in its form.
    let page = kota.get("/activity?type=visit&worker=cahya").await.text();
    assert_eq!(rows(&page), [&*f.visit_cahya]);
    assert!(page.contains("<option value=\"visit\" selected>"), "{page}");
}

#[tokio::test]
async fn each_filter_narrows_the_feed() {
    let f = field().await;
    filters_narrow(&f).await;
}

#[tokio::test]
async fn bad_or_foreign_filters_are_refused_clearly() {
    let f = field().await;
    let mut camat1 = f.browser("camat1").await;
    let foreign = camat1.get("/api/activity?area=32.77.02").await;
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.json()["error"], "forbidden");
    assert!(
        foreign.json()["message"]
            .as_str()
            .unwrap()
            .contains("outside your areas")
    );
    let page = camat1.get("/activity?area=32.77.02").await;
    assert_eq!(page.status, 200);
    assert!(
        rows(&page.text()).is_empty(),
        "an area outside the scope shows nothing"
    );
    assert!(page.text().contains("di luar wilayah kerja Anda"));
    for bad in [
        "type=letter",
        "area=32-77",
        "from=2026-13-01",
        "from=2026-11-20&to=2026-11-19",
        "ppks=kaya",
        "program=bansos",
        "cursor=junk",
        "limit=0",
    ] {
        let reply = camat1.get(&format!("/api/activity?{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        assert_eq!(reply.json()["error"], "invalid");
    }
    assert_eq!(camat1.get("/activity?type=letter").await.status, 400);
    // The page names the date field in Indonesian ("Tanggal from" once).
    let page = camat1.get("/activity?from=2026-13-01").await;
    assert_eq!(page.status, 400);
    let said = crate::support::between(&page.text(), "<h1>", "</section>").unwrap();
    assert!(said.contains("Tanggal mulai harus"), "{said}");
    assert!(!said.contains("from"), "{said}");
}

#[tokio::test]
async fn pages_of_the_feed_follow_the_cursor() {
    let f = field().await;
    let mut kota = f.browser("kota").await;
    let mut seen = Vec::new();
    let mut path = "/api/activity?limit=4".to_owned();
    let mut pages = 0;
    loop {
        let reply = kota.get(&path).await;
        seen.extend(docs(&reply));
        pages += 1;
        match reply.json()["nextCursor"].as_str() {
            Some(c) => path = format!("/api/activity?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    let all: Vec<&str> = f.cahyas().into_iter().chain(f.anis()).collect();
    assert_eq!(seen, all);

    // The page holds 50 rows and links to the older ones, keeping the filters.
    let phone = &f.ani.0;
    for i in 0..50 {
        create(
            phone,
            outreach(
                "32.77.01.1001",
                "ani",
                f.now - 20 * DAY - i * 60_000,
                "Posyandu",
            ),
        )
        .await;
    }
    // The feed follows arrival: the 50 outreach notes just received fill the first page
    // though dated weeks ago, and Ani's three earlier records are on the next.
    let first = kota.get("/activity?worker=ani").await.text();
    assert_eq!(rows(&first).len(), 50);
    assert!(
        f.anis()
            .iter()
            .all(|d| !rows(&first).contains(&d.to_string()))
    );
    let older = crate::support::between(&first, "rel=\"next\" href=\"", "\"")
        .expect("a link to older rows");
    let older = older.replace("&amp;", "&");
    assert!(older.contains("worker=ani"), "{older}");
    let second = kota.get(&older).await.text();
    assert_eq!(rows(&second), f.anis());
    assert!(!second.contains("rel=\"next\""));
    assert!(second.contains("Terbaru"));
}

#[tokio::test]
async fn supervisors_see_no_outreach_and_administrators_nothing() {
    let f = field().await;
    let mut sri = f.browser("sri").await;
    let reply = sri.get("/api/activity").await;
    assert_eq!(
        docs(&reply),
        [
            &*f.referral_cahya,
            &*f.visit_cahya,
            &*f.referral_ani,
            &*f.visit_ani
        ]
    );
    assert!(docs(&sri.get("/api/activity?type=outreach").await).is_empty());
    assert!(
        !sri.get("/activity")
            .await
            .text()
            .contains("data-kind=\"outreach\"")
    );

    let mut admin = f.browser("admin").await;
    assert_eq!(admin.get("/api/activity").await.status, 403);
    assert_eq!(admin.get("/activity").await.status, 403);
    assert_eq!(
        admin
            .get(&format!("/api/beneficiaries/{NIK_SITI}"))
            .await
            .status,
        403
    );
    assert_eq!(admin.get("/api/summary").await.status, 403);
    assert_eq!(admin.get("/summary").await.status, 403);
    assert_eq!(admin.get("/api/activity/stream").await.status, 403);
    let mut ani = f.browser("ani").await;
    assert_eq!(
        ani.get("/summary").await.status,
        403,
        "summaries are for coordinators and supervisors"
    );
    let mut anon = Client::anonymous(&f.server);
    assert_eq!(anon.get("/api/activity").await.status, 401);
    assert_eq!(anon.get("/activity").await.status, 303);
}
