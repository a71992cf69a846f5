//! Exports: CSV and XLSX with Indonesian headers, the read rules, the date range, streaming
//! and the audit line.

use std::io::Read;

use fieldsync_core::schema::{
    Event, EventKind, FieldDocument, RegionCode, Role, add_event, examples,
};
use fieldsync_protocol::DocumentId;
use fieldsync_server::projection::{Common, Person, Projection, VisitRow};
use fieldsync_server::storage::Write;
use fieldsync_server::storage::directory::AuditFilter;
use fieldsync_server::storage::export::{ExportKind, columns};

use crate::common::{PgDatabase, TestServer, WAIT};
use crate::support::{Client, Reply, person};

const NOVEMBER: &str = "from=2026-11-01&to=2026-11-30";

/// A peksos of another kecamatan (32.77.02) writes a visit, and peksos-ani one of 32.77.01
/// whose texts need quoting and guarding.
async fn two_kecamatan(server: &TestServer) {
    let (ani, _h1) = server.phone().await;
    let mut visit = examples::visit(&crate::common::area(), "peksos-ani");
    visit.beneficiary.name = "Siti \"Ani\", Aminah".into();
    visit.notes = "baris 1\nbaris 2".into();
    visit.purpose = Some("=HYPERLINK(\"http://contoh.invalid\")".into());
    visit.location = Some((-6.8722, 107.5425));
    let doc = ani
        .create(|tx| FieldDocument::Visit(visit).write(tx))
        .await
        .unwrap();
    ani.wait_acknowledged(doc, WAIT).await.unwrap();

    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.02.1001"])
        .await;
    let (budi, _h2) = server.phone_as("peksos-budi").await;
    let mut other = examples::visit(&RegionCode::parse("32.77.02.1001").unwrap(), "peksos-budi");
    other.beneficiary.name = "Warga Kecamatan Lain".into();
    let doc = budi
        .create(|tx| FieldDocument::Visit(other).write(tx))
        .await
        .unwrap();
    budi.wait_acknowledged(doc, WAIT).await.unwrap();
}

fn header_line(kind: ExportKind) -> String {
    let headers: Vec<&str> = columns(kind).iter().map(|c| c.header).collect();
    headers.join(",")
}

#[tokio::test]
async fn csv_has_indonesian_headers_a_bom_quoting_and_no_formulas() {
    let server = TestServer::start().await;
    person(&server, "koor-selatan", Role::Coordinator, &["32.77.01"]).await;
    two_kecamatan(&server).await;
    let mut browser = Client::browser(&server, "koor-selatan").await;

    let reply = browser
        .get(&format!("/api/exports/visits.csv?area=32.77.01&{NOVEMBER}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"kunjungan_32.77.01_2026-11-01_2026-11-30.csv\"")
    );
    assert!(reply.body.starts_with("\u{feff}".as_bytes()), "a BOM");
    let text = reply.text();
    let text = text.trim_start_matches('\u{feff}');
    assert!(text.starts_with(&format!("{}\r\n", header_line(ExportKind::Visits))));
    assert!(text.starts_with(
        "ID Dokumen,Kode Wilayah,Kelurahan/Desa,Kecamatan,ID Petugas,Nama Petugas,Dibuat (WIB),\
         Tanggal Kunjungan (WIB),NIK,No. KK,Nama,Kategori PPKS,Tujuan,Tindak Lanjut,Lintang,Bujur,\
         Catatan\r\n"
    ));
    // 09:30 UTC is 16:30 WIB.
    for expected in [
        ",32.77.01.1001,Melong,Cimahi Selatan,peksos-ani,Ani,2026-11-20 15:00,2026-11-20 16:30,\
         3277015204800002,,",
        ",\"Siti \"\"Ani\"\", Aminah\",Fakir miskin,",
        ",\"'=HYPERLINK(\"\"http://contoh.invalid\"\")\",2026-12-01,-6.8722,107.5425,",
        ",\"baris 1\nbaris 2\"\r\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text:?}");
    }
    assert_eq!(text.matches("\r\n").count(), 2, "a header and one row");
    assert!(
        !text.contains("Warga Kecamatan Lain"),
        "another kecamatan's rows stay out"
    );

    let outside = browser
        .get(&format!("/api/exports/visits.csv?area=32.77.02&{NOVEMBER}"))
        .await;
    assert_eq!(outside.status, 403);
    assert_eq!(outside.json()["error"], "forbidden");
    let wider = browser
        .get(&format!("/api/exports/visits.csv?area=32.77&{NOVEMBER}"))
        .await;
    assert_eq!(
        wider.status, 403,
        "a wider area than one's own is outside it"
    );
}

#[tokio::test]
async fn supervisors_cannot_export_outreach_and_administrators_nothing() {
    let server = TestServer::start().await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    person(&server, "admin", Role::Admin, &["32.77"]).await;
    let (ani, _h) = server.phone().await;
    let area = crate::common::area();
    let doc = ani
        .create(|tx| FieldDocument::Outreach(examples::outreach(&area, "peksos-ani")).write(tx))
        .await
        .unwrap();
    ani.wait_acknowledged(doc, WAIT).await.unwrap();

    let mut sri = Client::script(&server, "sri").await;
    let outreach = sri
        .get(&format!("/api/exports/outreach.csv?area=32.77&{NOVEMBER}"))
        .await;
    assert_eq!(outreach.status, 403);
    assert!(
        outreach.json()["message"]
            .as_str()
            .unwrap()
            .contains("outreach")
    );
    let visits = sri
        .get(&format!("/api/exports/visits.xlsx?area=32.77&{NOVEMBER}"))
        .await;
    assert_eq!(visits.status, 200);
    let page = Client::browser(&server, "sri").await.get("/exports").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("value=\"referrals\""));
    assert!(!page.text().contains("value=\"outreach\""));

    let mut admin = Client::script(&server, "admin").await;
    let refused = admin
        .get(&format!("/api/exports/visits.csv?area=32.77&{NOVEMBER}"))
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("administrators")
    );
    let page = Client::browser(&server, "admin")
        .await
        .get("/exports")
        .await;
    assert_eq!(page.status, 403);

    let mut stranger = Client::anonymous(&server);
    let anonymous = stranger
        .get(&format!("/api/exports/visits.csv?area=32.77&{NOVEMBER}"))
        .await;
    assert_eq!(anonymous.status, 401);
}

/// Query rows for `n` visits in 32.77.01.1001, written straight into storage (as `fieldsync
/// reindex` would) rather than synced one by one: the export reads only these rows.
async fn visit_rows(server: &TestServer, times: impl IntoIterator<Item = i64>) {
    let writes: Vec<Write> = times
        .into_iter()
        .enumerate()
        .map(|(i, at)| Write::Project {
            doc: DocumentId::from_bytes(rand_bytes(i)),
            source: 1,
            projection: Projection::Visit(VisitRow {
                common: Common {
                    area: "32.77.01.1001".into(),
                    created_by: "peksos-ani".into(),
                    created_at: at,
                    schema: 1,
                },
                person: Person {
                    nik: format!("32770152048{:05}", i % 100_000),
                    kk: None,
                    name: format!("Warga {i}"),
                    ppks: "|fakir-miskin|".into(),
                },
                visited_at: at,
                purpose: None,
                follow_up_on: None,
                lat: None,
                lon: None,
                notes_excerpt: "Kunjungan rutin, kondisi baik.".into(),
                attachments: Vec::new(),
            }),
        })
        .collect();
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    storage.write(&writes).await.unwrap();
    storage.close().await.unwrap();
}

fn rand_bytes(i: usize) -> [u8; 16] {
    let mut b = [7u8; 16];
    b[..8].copy_from_slice(&(i as u64).to_be_bytes());
    b
}

/// 2026-11-30T17:00:00Z: midnight at the start of 1 December in WIB.
const DECEMBER_WIB: i64 = 1_796_058_000_000;

#[tokio::test]
async fn the_date_range_is_whole_days_in_wib() {
    let server = TestServer::start().await;
    person(&server, "koor-selatan", Role::Coordinator, &["32.77.01"]).await;
    // The last minute of 30 November and the first of 1 December, in WIB; and 31 October.
    let day = 86_400_000;
    visit_rows(
        &server,
        [
            DECEMBER_WIB - 60_000,
            DECEMBER_WIB,
            DECEMBER_WIB - 30 * day - 1,
        ],
    )
    .await;
    let mut script = Client::script(&server, "koor-selatan").await;
    let november = script
        .get(&format!("/api/exports/visits.csv?area=32.77.01&{NOVEMBER}"))
        .await
        .text();
    assert!(november.contains("2026-11-30 23:59"), "{november}");
    assert!(!november.contains("2026-12-01 00:00"));
    assert!(!november.contains("2026-10-31"));
    assert_eq!(november.matches("\r\n").count(), 2);
    let one_day = script
        .get("/api/exports/visits.csv?area=32.77.01&from=2026-12-01&to=2026-12-01")
        .await
        .text();
    assert!(one_day.contains("2026-12-01 00:00"));
    assert_eq!(one_day.matches("\r\n").count(), 2);
    let backwards = script
        .get("/api/exports/visits.csv?area=32.77.01&from=2026-12-01&to=2026-11-01")
        .await;
    assert_eq!(backwards.status, 400);
    let no_date = script.get("/api/exports/visits.csv?area=32.77.01").await;
    assert_eq!(no_date.status, 400);
    assert_eq!(no_date.json()["error"], "invalid");
}

/// The text of one file in a zip archive.
fn unzip(reply: &Reply, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(reply.body.clone()))
        .expect("the XLSX is a zip archive");
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} in the workbook"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[tokio::test]
async fn xlsx_is_a_workbook_with_indonesian_headers_and_the_values() {
    let server = TestServer::start().await;
    person(&server, "koor-kota", Role::Coordinator, &["32.77"]).await;
    let (ani, _h) = server.phone().await;
    let area = crate::common::area();
    let mut referral = examples::referral(&area, "peksos-ani");
    referral.beneficiary.name = "Dedi <Kurniawan> & Anak".into();
    let doc = ani
        .create(|tx| FieldDocument::Referral(referral).write(tx))
        .await
        .unwrap();
    ani.wait_acknowledged(doc, WAIT).await.unwrap();

    let mut browser = Client::browser(&server, "koor-kota").await;
    // The form leads to the API route.
    let form = browser
        .get(&format!(
            "/exports/download?kind=referrals&format=xlsx&area=32.77.01.1001&{NOVEMBER}"
        ))
        .await;
    assert_eq!(form.status, 303);
    let target = form.header("location").unwrap().to_owned();
    assert_eq!(
        target,
        "/api/exports/referrals.xlsx?area=32.77.01.1001&from=2026-11-01&to=2026-11-30"
    );
    let reply = browser.get(&target).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert!(
        reply
            .header("content-disposition")
            .unwrap()
            .contains("rujukan_32.77.01.1001_2026-11-01_2026-11-30.xlsx")
    );
    let sheet = unzip(&reply, "xl/worksheets/sheet1.xml");
    for expected in [
        "ID Dokumen",
        "Kategori PPKS",
        "Persetujuan",
        "Surat Puskesmas",
        "Diajukan (WIB)",
        "Dedi &lt;Kurniawan&gt; &amp; Anak",
        "3277015204800002",
        "KIS-PBI",
        "Diajukan",
        "Tidak memiliki jaminan kesehatan.",
    ] {
        assert!(sheet.contains(expected), "{expected} in the sheet");
    }
    assert!(unzip(&reply, "xl/workbook.xml").contains("name=\"Rujukan\""));

    // Outside the coordinator's city, the form says why and links nothing.
    let outside = browser
        .get(&format!(
            "/exports/download?kind=visits&format=csv&area=32.73&{NOVEMBER}"
        ))
        .await;
    assert_eq!(outside.status, 403);
    assert!(outside.text().contains("Di luar wilayah Anda"));
}

#[tokio::test]
async fn a_large_export_arrives_whole_with_its_length_and_audited() {
    let server = TestServer::start().await;
    person(&server, "koor-selatan", Role::Coordinator, &["32.77.01"]).await;
    const ROWS: usize = 3_500;
    let day = 86_400_000;
    visit_rows(&server, (0..ROWS).map(|i| DECEMBER_WIB - day + i as i64)).await;

    let mut script = Client::script(&server, "koor-selatan").await;
    let reply = script
        .get("/api/exports/visits.csv?area=32.77.01.1001&from=2026-11-30&to=2026-11-30")
        .await;
    assert_eq!(reply.status, 200);
    // Written whole on the server first, so its length is known.
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    let text = reply.text();
    assert_eq!(text.matches("\r\n").count(), ROWS + 1, "every row arrived");
    assert!(text.contains("Warga 0,") && text.contains(&format!("Warga {},", ROWS - 1)));

    let xlsx = script
        .get("/api/exports/visits.xlsx?area=32.77.01.1001&from=2026-11-30&to=2026-11-30")
        .await;
    assert_eq!(xlsx.status, 200);
    let sheet = unzip(&xlsx, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(&format!("<row r=\"{}\"", ROWS + 1)),
        "the last row"
    );

    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let lines = storage
        .audit(&AuditFilter {
            user_id: Some("koor-selatan".into()),
            document_id: Some("export:visits".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    storage.close().await.unwrap();
    assert_eq!(lines.len(), 2, "one line per export: {lines:?}");
    for line in &lines {
        assert_eq!(line.action, "export");
        assert_eq!(line.device_id, "api:koor-selatan");
        assert!(
            line.detail
                .contains("area=32.77.01.1001 from=2026-11-30 to=2026-11-30")
                && line.detail.contains(&format!("rows={ROWS}")),
            "{}",
            line.detail
        );
    }
}

/// A referral by peksos-ani that a supervisor's phone rejects with a reason; the export shows
/// the status and the reason, on either backend.
async fn rejected_referral_exports(server: &TestServer) {
    person(server, "sri", Role::Supervisor, &["32.77"]).await;
    let (ani, _h1) = server.phone().await;
    let area = crate::common::area();
    let doc = ani
        .create(|tx| FieldDocument::Referral(examples::referral(&area, "peksos-ani")).write(tx))
        .await
        .unwrap();
    ani.wait_acknowledged(doc, WAIT).await.unwrap();
    let (sri, _h2) = server.phone_as("sri").await;
    sri.find(doc).await;
    sri.wait_doc(doc, WAIT, |_| true).await.unwrap();
    let rejected = Event {
        kind: EventKind::Rejected,
        at: "2026-11-22T03:00:00Z".into(),
        by: "sri".into(),
        note: Some("Desil DTSEN di atas batas".into()),
        id: None,
    };
    sri.change(doc, |tx| add_event(tx, &rejected).map(|_| ()))
        .await
        .unwrap();
    sri.wait_acknowledged(doc, WAIT).await.unwrap();

    let mut script = Client::script(server, "sri").await;
    let csv = script
        .get(&format!("/api/exports/referrals.csv?area=32.77&{NOVEMBER}"))
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    let text = csv.text();
    assert!(
        text.contains(",KIS-PBI,Ditolak,Ya,Ya,Ya,Tidak,Tidak,Tidak memiliki jaminan kesehatan.,"),
        "{text}"
    );
    assert!(text.contains(",2026-11-20 16:46,2026-11-22 10:00,Desil DTSEN di atas batas,"));
    let xlsx = script
        .get(&format!(
            "/api/exports/referrals.xlsx?area=32.77&{NOVEMBER}"
        ))
        .await;
    assert_eq!(xlsx.status, 200);
    assert!(unzip(&xlsx, "xl/worksheets/sheet1.xml").contains("Desil DTSEN di atas batas"));
    let page = Client::browser(server, "sri")
        .await
        .get("/exports")
        .await
        .text();
    assert!(
        page.contains("<option value=\"32.77.01.1001\""),
        "areas with records"
    );
}

#[tokio::test]
async fn a_rejection_exports_with_its_reason() {
    let server = TestServer::start().await;
    rejected_referral_exports(&server).await;
}

#[tokio::test]
async fn exports_read_the_same_on_postgresql() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let url = pg.url.clone();
    let server = TestServer::start_with(|c| c.database_url = url).await;
    rejected_referral_exports(&server).await;
    server.stop().await;
    pg.drop_database().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_export_route() {
    let server = TestServer::start().await;
    let doc = Client::anonymous(&server)
        .get("/api/openapi.json")
        .await
        .json();
    for kind in ["visits", "referrals", "outreach"] {
        for (ext, media) in [
            ("csv", "text/csv"),
            (
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
        ] {
            let op = &doc["paths"][format!("/api/exports/{kind}.{ext}")]["get"];
            assert!(
                op["responses"]["200"]["content"][media].is_object(),
                "{kind}.{ext} answers {media}"
            );
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["area", "from", "to"]);
            for status in ["400", "401", "403"] {
                assert!(op["responses"][status].is_object(), "{kind}.{ext} {status}");
            }
        }
    }
}

#[tokio::test]
async fn downloads_that_are_never_read_hold_up_no_one_else() {
    let server = TestServer::start().await;
    for id in ["koor-a", "koor-b"] {
        person(&server, id, Role::Coordinator, &["32.77.01"]).await;
    }
    // Far more than the socket buffers between the server and a reader hold: a reader that
    // stops reading stops the download.
    const ROWS: usize = 60_000;
    let day = 86_400_000;
    visit_rows(&server, (0..ROWS).map(|i| DECEMBER_WIB - day + i as i64)).await;
    let big = "/api/exports/visits.csv?area=32.77.01.1001&from=2026-11-30&to=2026-11-30";

    // Koordinator A starts two downloads and reads neither: the most one person may have
    // running. A third of theirs is refused at once, in both languages.
    let mut a = Client::script(&server, "koor-a").await;
    let (first, _stalled_1) = a.stall(big).await;
    let (second, _stalled_2) = a.stall(big).await;
    assert_eq!((first, second), (200, 200));
    let third = a.get(big).await;
    assert_eq!(third.status, 429, "{}", third.text());
    let message = third.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("ekspor") && message.contains("export"),
        "{message}"
    );

    // Koordinator B's export completes as if nothing else were running.
    let mut b = Client::script(&server, "koor-b").await;
    let started = std::time::Instant::now();
    let reply = b.get(big).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text().matches("\r\n").count(), ROWS + 1);
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    let xlsx = b
        .get("/api/exports/outreach.xlsx?area=32.77.01&from=2026-11-30&to=2026-11-30")
        .await;
    assert_eq!(xlsx.status, 200);
}
