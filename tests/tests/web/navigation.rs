//! The menu of each role lists every page that role may open, and no page it may not; every
//! page starts with a link past the menu to its content.

use fieldsync_core::schema::Role;

use crate::common::TestServer;
use crate::support::{Client, person};

/// The pages a menu may lead to.
const PAGES: [&str; 12] = [
    "/workbench",
    "/activity",
    "/search",
    "/map",
    "/summary",
    "/referrals",
    "/stats",
    "/exports",
    "/admin/people",
    "/admin/enroll",
    "/admin/devices",
    "/admin/audit",
];

#[tokio::test]
async fn every_role_s_menu_lists_exactly_the_pages_it_may_open() {
    let server = TestServer::start().await;
    let people = [
        ("koordinator", Role::Coordinator),
        ("supervisor", Role::Supervisor),
        ("peksos", Role::Peksos),
        ("admin", Role::Admin),
    ];
    for (id, role) in people {
        person(&server, id, role, &["32.77"]).await;
        let mut browser = Client::browser(&server, id).await;
        let home = browser.get("/login").await;
        assert_eq!(home.status, 200);
        assert_skips_to_main("/login", &home.text());
        for page in PAGES {
            let reply = browser.get(page).await;
            let text = reply.text();
            let nav = crate::support::between(&text, "<nav>", "</nav>").unwrap_or_default();
            let listed = nav.contains(&format!("href=\"{page}\""));
            let opens = reply.status == 200;
            if opens {
                assert_skips_to_main(page, &text);
            }
            assert_eq!(
                listed, opens,
                "{role:?} {page}: status {}, menu {nav}",
                reply.status
            );
        }
    }
}

/// The first thing the Tab key reaches on `html` is the link to `#main`, which is there.
fn assert_skips_to_main(page: &str, html: &str) {
    let body = &html[html.find("<body").expect("a body")..];
    let first = ["<a ", "<button", "<input", "<select", "<textarea"]
        .iter()
        .filter_map(|tag| body.find(tag))
        .min()
        .expect("something to focus");
    assert!(
        body[first..].starts_with("<a class=\"skip\" href=\"#main\">"),
        "{page}: {}",
        &body[first..(first + 80).min(body.len())]
    );
    assert!(html.contains("<main id=\"main\""), "{page}");
}

#[tokio::test]
async fn a_page_not_found_skips_to_its_content_too() {
    let server = TestServer::start().await;
    person(&server, "koordinator", Role::Coordinator, &["32.77"]).await;
    let mut browser = Client::browser(&server, "koordinator").await;
    let missing = browser.get("/referrals/nothing-here").await;
    assert_ne!(missing.status, 200);
    assert_skips_to_main("a missing referral", &missing.text());
}
