//! Who may start an export now, and how long a download may stall.
//!
//! Two slow downloads used to starve everybody else's exports: the two places among running
//! exports were held until the last byte had left, and a CSV export held a pooled database
//! connection all that time too, so a reader that stopped reading kept both for as long as
//! its connection stayed open. Now an export holds shared capacity only while it reads the
//! database, at the server's pace, into a temporary file ([`Admission::reading`], at most
//! [`READING`] at once). Sending that file to the client holds nothing shared: it counts
//! against the person's own limit ([`PER_USER`] downloads at once, a 429 beyond it) and ends
//! when the client takes no data for [`SEND_TIMEOUT`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::web::error::ApiError;

/// Exports reading the database at once: each holds a pooled connection meanwhile, and the
/// SQLite pool has four, which phones' changes need too.
pub const READING: usize = 2;
/// Exports one person may have running at once, from the request to the last byte sent:
/// enough for a CSV and an XLSX side by side.
pub const PER_USER: usize = 2;
/// How long an export waits for another to finish reading before it is turned away.
pub const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How long a download may wait for its client to take the next chunk before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The exports of one server.
#[derive(Debug)]
pub struct Admission {
    reading: Semaphore,
    per_user: Mutex<HashMap<String, usize>>,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            reading: Semaphore::new(READING),
            per_user: Mutex::new(HashMap::new()),
        }
    }
}

/// One of a person's running exports; the place is given back when this is dropped.
#[derive(Debug)]
pub struct UserSlot {
    admission: Arc<Admission>,
    user: String,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut per_user = self
            .admission
            .per_user
            .lock()
            .expect("export slots lock poisoned");
        if let Some(n) = per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

impl Admission {
    /// A place among `user`'s running exports, or a 429 at once.
    pub fn user_slot(self: &Arc<Self>, user: &str) -> Result<UserSlot, ApiError> {
        let mut per_user = self.per_user.lock().expect("export slots lock poisoned");
        let n = per_user.entry(user.to_owned()).or_insert(0);
        if *n >= PER_USER {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!(
                    "{PER_USER} ekspor Anda masih berjalan; tunggu sampai selesai / \
                     {PER_USER} exports of yours are still running; wait for one to finish"
                ),
            ));
        }
        *n += 1;
        Ok(UserSlot {
            admission: self.clone(),
            user: user.to_owned(),
        })
    }

    /// A place among the exports reading the database, or a 503 after waiting
    /// [`QUEUE_WAIT`].
    pub async fn reading(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(QUEUE_WAIT, self.reading.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "ekspor lain sedang berjalan; coba lagi sebentar lagi / \
                 other exports are running; try again in a minute",
            )),
        }
    }

    /// How many exports `user` has running.
    #[cfg(test)]
    fn running(&self, user: &str) -> usize {
        let per_user = self.per_user.lock().expect("export slots lock poisoned");
        per_user.get(user).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_has_at_most_their_share_and_gets_it_back() {
        let admission = Arc::new(Admission::default());
        let first = admission.user_slot("dewi").unwrap();
        let _second = admission.user_slot("dewi").unwrap();
        let refused = admission.user_slot("dewi").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.message.contains("ekspor") && refused.message.contains("exports"));
        assert!(admission.user_slot("sri").is_ok(), "others are not held up");
        drop(first);
        assert_eq!(admission.running("dewi"), 1);
        assert!(admission.user_slot("dewi").is_ok());
    }
}
