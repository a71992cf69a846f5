//! Reads of beneficiaries' records on the web are audited like a phone's: a page or an API
//! answer that lists documents (the activity feed, the review queue) writes one `read` line
//! per document, as device `web:<user>`, before it is sent. Within the same hour a document
//! already recorded for a user is not recorded again, so a feed refreshing live as phones
//! sync does not write its fifty lines at every change.

use std::collections::HashSet;
use std::sync::Mutex;

use super::session::Viewer;
use crate::storage::{AuditEntry, Storage, StorageResult, Write, now_millis};

const HOUR_MS: i64 = 3_600_000;

/// What this process recorded in the current hour: (user id, document id).
#[derive(Debug, Default)]
pub struct ReadLog {
    seen: Mutex<(i64, HashSet<(String, String)>)>,
}

impl ReadLog {
    /// Audits `viewer` reading these documents (id, type); returns once the lines are stored.
    pub async fn record<'a>(
        &self,
        storage: &dyn Storage,
        viewer: &Viewer,
        docs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> StorageResult<()> {
        let now = now_millis();
        let fresh: Vec<(&str, &str)> = {
            let mut seen = self.seen.lock().expect("read log lock poisoned");
            if seen.0 != now / HOUR_MS {
                *seen = (now / HOUR_MS, HashSet::new());
            }
            docs.into_iter()
                .filter(|(doc, _)| {
                    !seen
                        .1
                        .contains(&(viewer.user.id.clone(), (*doc).to_owned()))
                })
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        let device = viewer.editor().device.to_string();
        let lines: Vec<Write> = fresh
            .iter()
            .map(|(doc, kind)| {
                Write::Audit(AuditEntry {
                    at: now,
                    device_id: device.clone(),
                    user_id: viewer.user.id.clone(),
                    document_id: (*doc).to_owned(),
                    action: "read".into(),
                    detail: (*kind).to_owned(),
                })
            })
            .collect();
        storage.write(&lines).await?;
        let mut seen = self.seen.lock().expect("read log lock poisoned");
        for (doc, _) in fresh {
            seen.1.insert((viewer.user.id.clone(), doc.to_owned()));
        }
        Ok(())
    }
}
