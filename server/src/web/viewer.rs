//! Who is asking: the signed-in person a request comes from, as the pages, the API and the
//! rules see them. [`super::session`] finds them from a session cookie or an API token.

use std::sync::Arc;

use fieldsync_core::schema::Author;

use crate::areas::AreaNames;

use super::i18n::Lang;
use crate::hub::Editor;
use crate::storage::directory::User;
use crate::storage::{Storage, StorageError, now_millis};

/// Who is asking, by session cookie or API token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub lang: Lang,
    /// The session's CSRF token; `None` when the request came with an API token.
    pub csrf: Option<String>,
    /// What they proved who they are with.
    pub credential: Credential,
    /// The names of areas, for every page that shows one.
    pub area_names: Arc<AreaNames>,
}

/// What a viewer signed in with, kept so that a long answer (the live stream) can check that
/// it still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session, by the SHA-256 of its token.
    Session(String),
    /// An API token, by the SHA-256 of its secret.
    ApiToken(String),
}

impl Viewer {
    /// Whether what the viewer signed in with still holds, for the same person with the same
    /// role and areas: `false` once the session has ended or expired, the token has been
    /// revoked or has expired, or the user has been disabled or given other areas. Reads
    /// only, so that it can run every second.
    pub async fn still_holds(&self, storage: &dyn Storage) -> Result<bool, StorageError> {
        let now = now_millis();
        let user = match &self.credential {
            Credential::Session(hash) => storage.session(hash, now).await?.map(|s| s.user),
            Credential::ApiToken(hash) => storage.api_token_holder(hash, now).await?,
        };
        Ok(user.is_some_and(|u| u == self.user))
    }

    /// The viewer as the read and write rules see them.
    pub fn author(&self) -> Author {
        Author::user(
            self.user.id.clone(),
            self.user.role,
            self.user.areas.clone(),
        )
    }

    /// The viewer as the author of server-side edits and reads.
    pub fn editor(&self) -> Editor {
        Editor::web(self.author())
    }
}
