//! `/api/openapi.json` is kept true: every documented operation is called, signed in and
//! not, and answers with a status the document lists for it, and a 200 JSON answer has the
//! properties its schema requires. (The router and the document are built from one list, so
//! no route can be missing from the document.)

use fieldsync_core::schema::{RegionCode, Role, examples};
use serde_json::{Value, json};

use crate::common::{TestServer, WAIT};
use crate::support::{Client, person};

/// `required` properties of a schema (following one `$ref` into components).
fn required<'a>(doc: &'a Value, schema: &'a Value) -> Vec<&'a str> {
    let schema = match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    };
    schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let server = TestServer::start().await;
    server
        .add_user("peksos-budi", Role::Peksos, &["32.77.01.1001"])
        .await;
    person(&server, "supervisor-sri", Role::Supervisor, &["32.77"]).await;
    let (phone, _h) = server.phone_as("peksos-budi").await;
    let referral = phone
        .create(crate::common::referral_in("32.77.01.1001", "peksos-budi"))
        .await
        .unwrap();
    phone.wait_acknowledged(referral, WAIT).await.unwrap();
    let nik = examples::referral(&RegionCode::parse("32.77.01.1001").unwrap(), "x")
        .beneficiary
        .nik
        .to_string();

    let mut anonymous = Client::anonymous(&server);
    let document = anonymous.get("/api/openapi.json").await.json();
    assert_eq!(document["openapi"], json!("3.1.0"));
    let mut script = Client::script(&server, "supervisor-sri").await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{} paths", paths.len());
    let mut called = 0;
    for (template, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {template} documents its responses"));
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {template} has a summary"
            );
            let path = template
                .replace("{id}", &referral.to_string())
                .replace("{nik}", &nik)
                .replace("{kk}", "3277010101200001");
            assert!(
                !path.contains('{'),
                "a parameter this test does not know: {template}"
            );
            let streaming = responses
                .get("200")
                .and_then(|r| r["content"].as_object())
                .is_some_and(|c| c.contains_key("text/event-stream"));
            let (status, reply) = if streaming {
                let (status, _, _) = script.open_stream(&path).await;
                (status, None)
            } else if method == "post" {
                let reply = script.post_json(&path, &json!({"kind": "accepted"})).await;
                (reply.status, Some(reply))
            } else {
                let reply = script.get(&path).await;
                (reply.status, Some(reply))
            };
            assert!(
                responses.contains_key(&status.to_string()),
                "{method} {path} answered {status}, not among {:?}: {}",
                responses.keys().collect::<Vec<_>>(),
                reply.as_ref().map(|r| r.text()).unwrap_or_default()
            );
            if let Some(reply) = reply.filter(|r| r.status == 200) {
                let content = &responses["200"]["content"];
                let declared = content.as_object().unwrap().keys().next().unwrap().clone();
                let got = reply.header("content-type").unwrap_or_default();
                assert!(
                    got.starts_with(&declared),
                    "{method} {path}: {got} is not {declared}"
                );
                if declared == "application/json" {
                    let body = reply.json();
                    let schema = &content["application/json"]["schema"];
                    for key in required(&document, schema) {
                        assert!(
                            body.get(key).is_some(),
                            "{method} {path}: no {key} in {body}"
                        );
                    }
                }
            }
            // Without signing in: 401, and documented.
            if template != "/api/openapi.json" {
                let reply = if method == "post" {
                    anonymous.post_json(&path, &json!({})).await
                } else {
                    anonymous.get(&path).await
                };
                assert_eq!(reply.status, 401, "{method} {path} without a token");
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} documents 401"
                );
                assert_eq!(reply.json()["error"], json!("unauthorized"));
            }
            called += 1;
        }
    }
    assert!(called >= 15, "called {called} operations");
    // A route outside the document is a JSON 404.
    let missing = script.get("/api/no-such-thing").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], json!("not-found"));
}
