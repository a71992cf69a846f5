//! Which device owns an actor id: every document judging a change with a new actor id asks
//! (the authorship rule, `fieldsync_core::actor::judge`), and in a storm that is one lookup per
//! new document. Asked one by one, each was a statement of its own, handed to a database
//! connection and back. Here the lookups of every document that waits for one go out together:
//! one task asks storage for all of them while the next ones gather, and answers each document
//! with its own actor ids. Nothing is cached: a binding written by another process sharing
//! the database is seen at the next lookup, as before.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::storage::{Storage, StorageError, StorageResult};

/// The most actor ids one round asks about; more wait for the next round.
const MAX_ROUND: usize = 1_000;

type Answer = StorageResult<Vec<(String, String)>>;

struct Lookup {
    actors: Vec<String>,
    answer: oneshot::Sender<Answer>,
}

/// The handle documents ask through; the task ends when the hub is dropped.
#[derive(Debug)]
pub(super) struct Owners(mpsc::UnboundedSender<Lookup>);

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lookup({} actor ids)", self.actors.len())
    }
}

impl Owners {
    /// Starts the task that asks `storage` (needs a Tokio runtime).
    pub(super) fn start(storage: Arc<dyn Storage>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(rounds(storage, rx));
        Self(tx)
    }

    /// The devices that own these actor ids, where bound.
    pub(super) async fn of(&self, actors: Vec<String>) -> Answer {
        let (answer, answered) = oneshot::channel();
        let gone = || StorageError(Arc::from("the server is shutting down"));
        self.0.send(Lookup { actors, answer }).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

async fn rounds(storage: Arc<dyn Storage>, mut lookups: mpsc::UnboundedReceiver<Lookup>) {
    let mut round = Vec::new();
    while let Some(first) = lookups.recv().await {
        let mut asked = first.actors.len();
        round.push(first);
        while asked < MAX_ROUND {
            let Ok(next) = lookups.try_recv() else { break };
            asked += next.actors.len();
            round.push(next);
        }
        let mut actors: Vec<String> = round.iter().flat_map(|l| l.actors.clone()).collect();
        actors.sort_unstable();
        actors.dedup();
        let found = storage.actor_owners(&actors).await;
        let owners: HashMap<&str, &str> = match &found {
            Ok(rows) => rows.iter().map(|(a, d)| (a.as_str(), d.as_str())).collect(),
            Err(_) => HashMap::new(),
        };
        for lookup in round.drain(..) {
            let answer = match &found {
                Ok(_) => Ok(lookup
                    .actors
                    .iter()
                    .filter_map(|a| owners.get(a.as_str()).map(|d| (a.clone(), d.to_string())))
                    .collect()),
                Err(e) => Err(e.clone()),
            };
            // A document that stopped waiting (its actor ended) needs no answer.
            let _ = lookup.answer.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Write;

    #[tokio::test]
    async fn each_document_hears_about_its_own_actor_ids_only() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let storage = crate::storage::open(&url).await.unwrap();
        let actor = |i: usize| format!("{i:032x}");
        storage
            .write(&[Write::BindActors {
                device: "phone-even".into(),
                actors: (0..200).step_by(2).map(actor).collect(),
            }])
            .await
            .unwrap();
        let owners = Arc::new(Owners::start(storage.clone()));
        // 100 documents ask at once, each about three actor ids, some shared, half unbound:
        // they go out in a few rounds, and each hears exactly what it asked about.
        let asks = (0..100).map(|d| {
            let owners = owners.clone();
            tokio::spawn(async move {
                let asked = vec![actor(d), actor(d + 1), actor(d + 50)];
                let mut found = owners.of(asked.clone()).await.unwrap();
                found.sort();
                let want: Vec<(String, String)> = asked
                    .into_iter()
                    .filter(|a| u128::from_str_radix(a, 16).unwrap() % 2 == 0)
                    .map(|a| (a, "phone-even".to_owned()))
                    .collect();
                assert_eq!(found, want, "document {d}");
            })
        });
        for ask in asks.collect::<Vec<_>>() {
            ask.await.unwrap();
        }
        assert!(owners.of(Vec::new()).await.unwrap().is_empty());
        storage.close().await.unwrap();
        // Storage gone: the next documents are told, not left waiting.
        assert!(owners.of(vec![actor(0)]).await.is_err());
    }
}
