//! The map's data: visits with a location as points, the rest counted per kelurahan, within
//! the reader's areas; the page allows images from the configured tile server only.

use fieldsync_core::schema::FieldDocument;

use super::field::*;
use crate::common::TestServer;

#[tokio::test]
async fn the_map_lists_located_visits_in_scope_and_counts_the_rest() {
    let server = TestServer::start_with(|c| {
        c.map_tiles = Some(
            fieldsync_server::web::tiles::MapTiles::parse(
                "https://{s}.tiles.dinsos.example/{z}/{x}/{y}.png",
                "© Dinsos",
            )
            .unwrap(),
        );
    })
    .await;
    let f = field_on(server).await;
    let mut located = visit(
        "32.77.01.1001",
        "ani",
        f.now - DAY,
        NIK_SITI,
        "Siti Aminah",
        fieldsync_core::schema::PpksCategory::FakirMiskin,
    );
    if let FieldDocument::Visit(v) = &mut located {
        v.location = Some((-6.8975, 107.5381));
    }
    let located = create(&f.ani.0, located).await;

    let mut camat1 = f.browser("camat1").await;
    let map = camat1.get("/api/map").await;
    assert_eq!(map.status, 200, "{}", map.text());
    let map = map.json();
    assert_eq!(map["days"], 30);
    let points = map["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{map}");
    assert_eq!(points[0]["id"], located.as_str());
    assert_eq!(points[0]["area_name"], "Melong");
    assert_eq!(points[0]["lat"], -6.8975);
    // Ani's first visit (10 days ago) had no location.
    assert_eq!(
        map["unlocated"],
        serde_json::json!([{"area": "32.77.01.1001", "area_name": "Melong", "visits": 1}])
    );

    // Another kecamatan sees neither; a period outside the offered ones is refused.
    let mut camat2 = f.browser("camat2").await;
    let other = camat2.get("/api/map?days=365").await.json();
    assert!(other["points"].as_array().unwrap().is_empty(), "{other}");
    assert_eq!(other["unlocated"][0]["area"], "32.77.02.1003", "{other}");
    assert_eq!(camat1.get("/api/map?days=7").await.status, 400);
    let mut admin = f.browser("admin").await;
    assert_eq!(admin.get("/api/map").await.status, 403);

    // The page loads the map from our own origin and allows the tile server's images only.
    let page = camat1.get("/map").await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap().to_owned();
    assert!(
        csp.contains("img-src 'self' data: https://*.tiles.dinsos.example;"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let html = page.text();
    assert!(html.contains("src=\"/app/office/map.js\""), "{html}");
    assert!(
        html.contains("data-tiles=\"https://{s}.tiles.dinsos.example/{z}/{x}/{y}.png\""),
        "{html}"
    );
    assert_eq!(camat1.get("/app/office/map.js").await.status, 200);
    let licences = camat1.get("/app/office/LICENSES.txt").await;
    assert!(
        licences.text().contains("Leaflet 1.9.4"),
        "the notices its licences ask for"
    );
    // Other pages keep the strict policy.
    let feed = camat1.get("/activity").await;
    assert!(
        feed.header("content-security-policy")
            .unwrap()
            .contains("img-src 'self' data:;")
    );
}
