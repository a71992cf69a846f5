//! The menu of each role lists every page that role may open, and no page it may not.

use fieldsync_core::schema::Role;

use crate::common::TestServer;
use crate::support::{Client, person};

/// The pages a menu may lead to.
const PAGES: [&str; 9] = [
    "/activity",
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
        for page in PAGES {
            let reply = browser.get(page).await;
            let text = reply.text();
            let nav = crate::support::between(&text, "<nav>", "</nav>").unwrap_or_default();
            let listed = nav.contains(&format!("href=\"{page}\""));
            let opens = reply.status == 200;
            assert_eq!(
                listed, opens,
                "{role:?} {page}: status {}, menu {nav}",
                reply.status
            );
        }
    }
}
