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

/// The message a sign-in page shows, if any.
fn alert(reply: &crate::support::Reply) -> Option<String> {
    crate::support::between(&reply.text(), "role=\"alert\">", "<")
}

#[tokio::test]
async fn a_stranger_can_neither_lock_a_user_out_nor_learn_which_ids_exist() {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    // A stranger at another address guesses Dewi's password, and a user id nobody has, from
    // a third address: every answer is the same for both, attempt by attempt.
    let mut guesser = Client::anonymous_from(&server, "127.0.0.2");
    let mut prober = Client::anonymous_from(&server, "127.0.0.3");
    let mut answers = Vec::new();
    for attempt in 1..=6 {
        let known = guesser.sign_in("dewi", "salah-salah-salah").await;
        let unknown = prober.sign_in("nobody", "salah-salah-salah").await;
        assert_eq!(known.status, unknown.status, "attempt {attempt}");
        assert_eq!(known.header("location"), unknown.header("location"));
        assert_eq!(alert(&known), alert(&unknown), "attempt {attempt}");
        assert!(alert(&known).is_some(), "attempt {attempt} says why");
        answers.push(alert(&known).unwrap());
    }
    assert_ne!(
        answers[0], answers[5],
        "after five failures the address is held back"
    );
    // The guesser's address stays locked for Dewi even with her password ...
    let held = guesser.sign_in("dewi", "kata-sandi-dewi").await;
    assert_eq!(alert(&held).as_deref(), Some(answers[5].as_str()));
    assert_eq!(guesser.get("/api/me").await.status, 401);
    // ... while Dewi at her own desk signs in as always.
    let mut dewi = Client::anonymous(&server);
    dewi.sign_in("dewi", "kata-sandi-dewi").await;
    assert_eq!(dewi.get("/api/me").await.json()["id"], "dewi");
}

#[tokio::test]
async fn user_ids_are_not_case_sensitive_and_the_field_is_not_capitalised() {
    let server = TestServer::start().await;
    person(&server, "ani-suryani", Role::Coordinator, &["32.77.01"]).await;
    let mut browser = Client::anonymous(&server);
    let page = browser.get("/login").await.text();
    let field = crate::support::between(&page, "<input id=\"username\"", ">")
        .or_else(|| crate::support::between(&page, "id=\"username\"", ">"))
        .expect("a user id field");
    for attribute in [
        "autocapitalize=\"none\"",
        "autocorrect=\"off\"",
        "spellcheck=\"false\"",
        "autocomplete=\"username\"",
    ] {
        assert!(field.contains(attribute), "{field} has {attribute}");
    }
    // A wrong password keeps what was typed in the field.
    let wrong = browser.sign_in("Ani-Suryani", "salah-salah-salah").await;
    assert!(
        wrong.text().contains("value=\"Ani-Suryani\""),
        "{}",
        wrong.text()
    );
    assert_eq!(browser.get("/api/me").await.status, 401);
    browser
        .sign_in("Ani-Suryani", "kata-sandi-ani-suryani")
        .await;
    assert_eq!(browser.get("/api/me").await.json()["id"], "ani-suryani");
}

/// However an id is capitalised, failures count in one bucket, and an id nobody has is
/// answered the same in any capitalisation: a capital letter neither escapes the lockout nor
/// tells which ids exist.
#[tokio::test]
async fn a_capitalised_id_shares_the_lockout_of_the_id() {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    let mut guesser = Client::anonymous_from(&server, "127.0.0.2");
    let mut prober = Client::anonymous_from(&server, "127.0.0.3");
    let mut answers = Vec::new();
    for (attempt, typed) in ["Dewi", "DEWI", "dewi", "dEwI", "Dewi", "dewi"]
        .into_iter()
        .enumerate()
    {
        let known = guesser.sign_in(typed, "salah-Rahasia-9").await;
        let unknown = prober
            .sign_in(&typed.replace(['d', 'D'], "N"), "salah-Rahasia-9")
            .await;
        assert_eq!(alert(&known), alert(&unknown), "attempt {attempt}");
        let page = known.text();
        assert!(page.contains(&format!("value=\"{typed}\"")), "{page}");
        assert!(
            !page.contains("salah-Rahasia-9"),
            "the password is never shown"
        );
        answers.push(alert(&known).unwrap());
    }
    assert_eq!(answers[0], answers[3]);
    assert_ne!(
        answers[3], answers[4],
        "the fifth failure, in any capitalisation, holds the address back"
    );
    let held = guesser.sign_in("dewi", "kata-sandi-dewi").await;
    assert_eq!(alert(&held).as_deref(), Some(answers[4].as_str()));
    assert_eq!(guesser.get("/api/me").await.status, 401);
}

#[tokio::test]
async fn next_is_only_ever_a_path_on_this_site() {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    // Each of these, followed by a browser, leaves the site (browsers drop tabs and line
    // breaks from URLs and read a backslash as a slash).
    let hostile = [
        "//evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        "\t//evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "%09//evil.example",
        "/%09/evil.example",
        " //evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/ /evil.example",
        "",
    ];
    let q = |next: &str| crate::support::encode(&[("next", next)]);
    let mut browser = Client::anonymous(&server);
    for next in hostile {
        let switch = browser.get(&format!("/lang/en?{}", q(next))).await;
        assert_eq!(switch.status, 303, "{next:?}");
        assert_eq!(switch.header("location"), Some("/"), "{next:?}");
        let form = browser.get(&format!("/login?{}", q(next))).await.text();
        let kept = crate::support::between(&form, "name=\"next\" value=\"", "\"");
        assert_eq!(kept.as_deref(), Some("/"), "{next:?}");
    }
    // Signing in with a hostile next in the posted form goes home.
    for next in ["/\t/evil.example", "/\\evil.example"] {
        let mut browser = Client::anonymous(&server);
        let page = browser.get("/login").await.text();
        let csrf = crate::support::between(&page, "name=\"csrf\" value=\"", "\"").unwrap();
        let reply = browser
            .send(
                "POST",
                "/login",
                "application/x-www-form-urlencoded",
                crate::support::encode(&[
                    ("csrf", &csrf),
                    ("username", "dewi"),
                    ("password", "kata-sandi-dewi"),
                    ("next", next),
                ])
                .into_bytes(),
                &[],
            )
            .await;
        assert_eq!(reply.status, 303, "{next:?}");
        assert_eq!(reply.header("location"), Some("/"), "{next:?}");
    }
    // A path of ours is kept, query and all.
    let local = browser
        .get(&format!("/lang/id?{}", q("/referrals?status=submitted")))
        .await;
    assert_eq!(
        local.header("location"),
        Some("/referrals?status=submitted")
    );
}

#[tokio::test]
async fn pages_under_tls_carry_hsts_and_plain_http_pages_do_not() {
    let plain = TestServer::start().await;
    let reply = Client::anonymous(&plain).get("/login").await;
    assert_eq!(reply.header("strict-transport-security"), None);
    // `secure_cookies` is on behind a TLS proxy, and whenever the server serves TLS itself.
    let secure = TestServer::start_with(|c| c.secure_cookies = true).await;
    let mut client = Client::anonymous(&secure);
    // The field app's files and `/sync`'s refusals too: the app's device cookie is as
    // worth taking as a session cookie.
    for path in [
        "/login",
        "/api/me",
        "/static/app.css",
        "/nowhere",
        "/app/",
        "/sync",
        "/healthz",
    ] {
        let reply = client.get(path).await;
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
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
    assert!(alert(&reply).unwrap().contains("kedaluwarsa"), "{reply:?}");
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
