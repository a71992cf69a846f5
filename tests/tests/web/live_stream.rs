//! The live activity stream ends within seconds once its viewer may no longer hear it: their
//! user disabled, their areas changed, their session ended or their API token revoked.

use std::time::Duration;

use fieldsync_core::schema::{RegionCode, Role};
use tokio::io::AsyncReadExt;

use crate::common::TestServer;
use crate::support::{Client, person, read_until};

/// How soon an open stream must end after the change.
const PROMPTLY: Duration = Duration::from_secs(4);

/// What ends the viewer's right to the stream.
#[derive(Debug, Clone, Copy)]
enum Ending {
    UserDisabled,
    AreasChanged,
    SignedOut,
    TokenRevoked,
}

#[tokio::test]
async fn an_open_stream_ends_soon_after_its_viewer_loses_access() {
    for ending in [
        Ending::UserDisabled,
        Ending::AreasChanged,
        Ending::SignedOut,
        Ending::TokenRevoked,
    ] {
        stream_ends(ending).await;
    }
}

async fn stream_ends(ending: Ending) {
    let server = TestServer::start().await;
    person(&server, "dewi", Role::Coordinator, &["32.77.01"]).await;
    let storage = fieldsync_server::storage::open(&server.config.database_url)
        .await
        .unwrap();
    let (mut client, token_id) = match ending {
        Ending::TokenRevoked => {
            let (token, secret) = fieldsync_server::web::session::issue_api_token(
                storage.as_ref(),
                "dewi",
                "feed",
                None,
            )
            .await
            .unwrap();
            let mut script = Client::anonymous(&server);
            script.bearer = Some(secret);
            (script, Some(token.id))
        }
        _ => (Client::browser(&server, "dewi").await, None),
    };
    let (status, mut stream, mut seen) = client.open_stream("/api/activity/stream").await;
    assert_eq!(status, 200, "{ending:?}");
    read_until(&mut stream, &mut seen, "retry:", Duration::from_secs(5)).await;

    match ending {
        Ending::UserDisabled => assert!(storage.disable_user("dewi").await.unwrap()),
        Ending::AreasChanged => {
            let areas = [RegionCode::parse_prefix("32.77.02").unwrap()];
            fieldsync_server::admin::set_areas(storage.as_ref(), "dewi", &areas)
                .await
                .unwrap();
        }
        Ending::SignedOut => assert_eq!(client.post_form("/logout", &[]).await.status, 303),
        Ending::TokenRevoked => assert!(
            storage
                .revoke_api_token(token_id.as_deref().unwrap())
                .await
                .unwrap()
        ),
    }
    storage.close().await.unwrap();

    let mut rest = Vec::new();
    let ended = tokio::time::timeout(PROMPTLY, stream.read_to_end(&mut rest)).await;
    assert!(
        ended.is_ok(),
        "{ending:?}: the stream is still open after {PROMPTLY:?}"
    );
}
