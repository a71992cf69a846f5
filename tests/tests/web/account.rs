//! Signing in on the web: passwords, lockout, sessions, CSRF, API tokens.

use fieldsync_core::schema::Role;

use crate::common::TestServer;
use crate::support::{Client, person};

#[tokio::test]
async fn sign_in_sets_a_safe_session_cookie_and_sign_out_ends_it() {
    let server = TestServer::start().await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    let mut anon = Client::anonymous(&server);
    assert_eq!(anon.get("/api/me").await.status, 401);
    let page = anon.get("/?from=x").await;
    assert_eq!(page.status, 303, "a page sends strangers to sign in");
    assert_eq!(page.header("location"), Some("/login?next=%2F%3Ffrom%3Dx"));

    let mut browser = Client::anonymous(&server);
    let reply = browser.sign_in("sri", "kata-sandi-sri").await;
    assert_eq!(reply.status, 303);
    let cookie = reply
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("fieldsync_session="))
        .map(|(_, v)| v.clone())
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} has {flag}");
    }
    let me = browser.get("/api/me").await.json();
    assert_eq!(me["id"], "sri");
    assert_eq!(me["role"], "supervisor");
    assert_eq!(me["areas"][0], "32.77");
    assert!(reply.header("content-security-policy").is_some());

    // Signing out without the form's token is refused and changes nothing.
    let forged = browser
        .send(
            "POST",
            "/logout",
            "application/x-www-form-urlencoded",
            b"csrf=nope".to_vec(),
            &[],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(browser.get("/api/me").await.status, 200);
    let stale = browser.clone();
    assert_eq!(browser.post_form("/logout", &[]).await.status, 303);
    assert_eq!(browser.get("/api/me").await.status, 401);
    let mut stale = stale;
    assert_eq!(
        stale.get("/api/me").await.status,
        401,
        "the old cookie is dead"
    );
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_and_unknown_users_look_the_same() {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    let mut browser = Client::anonymous(&server);
    let wrong = browser.sign_in("dewi", "salah-salah-salah").await;
    assert_eq!(wrong.status, 303);
    assert!(wrong.header("location").unwrap().contains("error=wrong"));
    let unknown = browser.sign_in("nobody", "salah-salah-salah").await;
    assert!(unknown.header("location").unwrap().contains("error=wrong"));
    for _ in 0..4 {
        browser.sign_in("dewi", "salah-salah-salah").await;
    }
    // Locked: even the right password is refused for now.
    let locked = browser.sign_in("dewi", "kata-sandi-dewi").await;
    assert!(
        locked.header("location").unwrap().contains("error="),
        "{locked:?}"
    );
    assert_eq!(browser.get("/api/me").await.status, 401);
}

#[tokio::test]
async fn a_form_from_another_browser_is_refused() {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    // The sign-in form's token is tied to the browser that loaded it.
    let mut attacker = Client::anonymous(&server);
    let page = attacker.get("/login").await.text();
    let token = crate::support::between(&page, "name=\"csrf\" value=\"", "\"").unwrap();
    let mut victim = Client::anonymous(&server);
    let body = crate::support::encode(&[
        ("csrf", &token),
        ("username", "dewi"),
        ("password", "kata-sandi-dewi"),
    ]);
    let reply = victim
        .send(
            "POST",
            "/login",
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            &[],
        )
        .await;
    assert!(reply.header("location").unwrap().contains("error=expired"));
    assert_eq!(victim.get("/api/me").await.status, 401);
}

#[tokio::test]
async fn api_tokens_work_until_revoked_and_disabling_a_user_ends_everything() {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    let mut script = Client::script(&server, "dewi").await;
    assert_eq!(script.get("/api/me").await.json()["id"], "dewi");
    let mut browser = Client::browser(&server, "dewi").await;

    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    assert!(storage.disable_user("dewi").await.unwrap());
    storage.close().await.unwrap();
    assert_eq!(script.get("/api/me").await.status, 401);
    assert_eq!(browser.get("/api/me").await.status, 401);
}

#[tokio::test]
async fn the_language_switch_remembers_english_and_only_returns_to_local_pages() {
    let server = TestServer::start().await;
    let mut browser = Client::anonymous(&server);
    let page = browser.get("/login").await.text();
    assert!(page.contains("Kata sandi"));
    // Our own files, under URLs that change with their content.
    let css = crate::support::between(&page, "href=\"/static/app.css?v=", "\"").unwrap();
    let sheet = browser.get(&format!("/static/app.css?v={css}")).await;
    assert_eq!(sheet.status, 200);
    assert!(sheet.header("cache-control").unwrap().contains("max-age"));
    let switch = browser.get("/lang/en?next=%2F%2Fevil.example").await;
    assert_eq!(switch.header("location"), Some("/"));
    browser.cookies.push(("fieldsync_lang".into(), "en".into()));
    let page = browser.get("/login").await.text();
    assert!(page.contains("Password") && page.contains("lang=\"en\""));
}

#[tokio::test]
async fn listing_records_on_the_web_is_audited_once_an_hour() {
    use fieldsync_server::storage::directory::AuditFilter;

    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.01.1001"])
        .await;
    person(&server, "sri", Role::Supervisor, &["32.77"]).await;
    let (phone, _h) = server.phone_as("peksos-budi").await;
    let referral = phone
        .create(crate::common::referral_in("32.77.01.1001", "peksos-budi"))
        .await
        .unwrap();
    phone
        .wait_acknowledged(referral, crate::common::WAIT)
        .await
        .unwrap();

    let reads = || async {
        let storage = fieldsync_server::storage::open(&server.config.database_url)
            .await
            .unwrap();
        let filter = AuditFilter {
            device_id: Some("web:sri".into()),
            limit: 100,
            ..AuditFilter::default()
        };
        let lines = storage.audit(&filter).await.unwrap();
        storage.close().await.unwrap();
        lines
    };
    let mut browser = Client::browser(&server, "sri").await;
    assert!(reads().await.is_empty());
    let queue = browser.get("/api/referrals").await;
    assert_eq!(queue.status, 200);
    let lines = reads().await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].document_id, referral.to_string());
    assert_eq!(
        (lines[0].action.as_str(), lines[0].user_id.as_str()),
        ("read", "sri")
    );
    // The feed lists it too; within the hour it is not written again.
    assert_eq!(browser.get("/api/activity").await.status, 200);
    assert_eq!(browser.get("/activity").await.status, 200);
    assert_eq!(reads().await.len(), 1);
}
