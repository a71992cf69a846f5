//! Storage reads that every document makes on its own, asked for many documents at once.
//!
//! In a storm each new document is loaded (usually to find nothing stored) and, for the
//! authorship rule (`fieldsync_core::actor::judge`), looks up who owns its new actor id.
//! Asked one by one, each was a statement of its own, handed to a database connection and back
//! (a SQLite worker thread woken, or a PostgreSQL round trip). Here one task per kind of read
//! asks storage for every document waiting while the next ones gather, and answers each with
//! its own keys. Nothing is cached: what another process sharing the database wrote is read
//! as before.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;

use fieldsync_protocol::DocumentId;
use tokio::sync::{mpsc, oneshot};

use crate::storage::{Storage, StorageError, StorageResult, StoredDocument};

/// The most keys one round asks about; more wait for the next round.
const MAX_ROUND: usize = 1_000;

type Fetched<'a, K, V> = Pin<Box<dyn Future<Output = StorageResult<Vec<(K, V)>>> + Send + 'a>>;

/// Reads the values of many keys from storage; keys without a value are left out.
pub(super) trait Fetch: Send + 'static {
    type Key: Clone + Eq + Hash + Send + 'static;
    type Value: Clone + Send + 'static;
    fn fetch<'a>(
        storage: &'a dyn Storage,
        keys: &'a [Self::Key],
    ) -> Fetched<'a, Self::Key, Self::Value>;
}

/// Which device owns each actor id, where bound.
pub(super) struct Owners;

impl Fetch for Owners {
    type Key = String;
    type Value = String;
    fn fetch<'a>(storage: &'a dyn Storage, keys: &'a [String]) -> Fetched<'a, String, String> {
        storage.actor_owners(keys)
    }
}

/// What is stored of each document ([`Storage::load_many`]).
pub(super) struct Loads;

impl Fetch for Loads {
    type Key = DocumentId;
    type Value = StoredDocument;
    fn fetch<'a>(
        storage: &'a dyn Storage,
        keys: &'a [DocumentId],
    ) -> Fetched<'a, DocumentId, StoredDocument> {
        Box::pin(async move {
            let loaded = storage.load_many(keys).await?;
            Ok(keys
                .iter()
                .zip(loaded)
                .filter_map(|(k, v)| Some((*k, v?)))
                .collect())
        })
    }
}

type Answer<F> = StorageResult<Vec<(<F as Fetch>::Key, <F as Fetch>::Value)>>;

struct Ask<F: Fetch> {
    keys: Vec<F::Key>,
    answer: oneshot::Sender<Answer<F>>,
}

/// The handle documents ask through; its task ends when the hub is dropped.
pub(super) struct Rounds<F: Fetch>(mpsc::UnboundedSender<Ask<F>>);

impl<F: Fetch> std::fmt::Debug for Rounds<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rounds")
    }
}

impl<F: Fetch> Rounds<F> {
    /// Starts the task that asks `storage` (needs a Tokio runtime).
    pub(super) fn start(storage: Arc<dyn Storage>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(rounds::<F>(storage, rx));
        Self(tx)
    }

    /// The values of these keys, where stored.
    pub(super) async fn of(&self, keys: Vec<F::Key>) -> Answer<F> {
        let (answer, answered) = oneshot::channel();
        let gone = || StorageError(Arc::from("the server is shutting down"));
        self.0.send(Ask { keys, answer }).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

async fn rounds<F: Fetch>(storage: Arc<dyn Storage>, mut asks: mpsc::UnboundedReceiver<Ask<F>>) {
    let mut round: Vec<Ask<F>> = Vec::new();
    while let Some(first) = asks.recv().await {
        let mut asked = first.keys.len();
        round.push(first);
        while asked < MAX_ROUND {
            let Ok(next) = asks.try_recv() else { break };
            asked += next.keys.len();
            round.push(next);
        }
        // How many asks want each key: the last one takes the value, the others a copy.
        let mut wanted: HashMap<F::Key, usize> = HashMap::new();
        for key in round.iter().flat_map(|a| &a.keys) {
            *wanted.entry(key.clone()).or_default() += 1;
        }
        let keys: Vec<F::Key> = wanted.keys().cloned().collect();
        let (mut found, failed): (HashMap<F::Key, F::Value>, _) =
            match F::fetch(&*storage, &keys).await {
                Ok(rows) => (rows.into_iter().collect(), None),
                Err(e) => (HashMap::new(), Some(e)),
            };
        for ask in round.drain(..) {
            let answer = match &failed {
                Some(e) => Err(e.clone()),
                None => Ok(ask
                    .keys
                    .iter()
                    .filter_map(|key| {
                        let left = wanted.get_mut(key)?;
                        *left -= 1;
                        let value = if *left == 0 {
                            found.remove(key)?
                        } else {
                            found.get(key)?.clone()
                        };
                        Some((key.clone(), value))
                    })
                    .collect()),
            };
            // A document that stopped waiting (its actor ended) needs no answer.
            let _ = ask.answer.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Write;

    #[tokio::test]
    async fn each_document_hears_about_its_own_keys_only() {
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
        let owners = Arc::new(Rounds::<Owners>::start(storage.clone()));
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

        // Loads: documents stored or not, asked together, some twice.
        let doc = |n: u8| DocumentId::from_bytes([n; 16]);
        let mut automerge = fieldsync_core::automerge::AutoCommit::new();
        let bytes = automerge.save();
        for n in [2, 4] {
            storage
                .write(&[Write::Append {
                    doc: doc(n),
                    bytes: bytes.clone(),
                    projection: crate::projection::Projection::Nothing,
                }])
                .await
                .unwrap();
        }
        let loads = Arc::new(Rounds::<Loads>::start(storage.clone()));
        let asks = [1, 2, 3, 4, 2].map(|n| {
            let loads = loads.clone();
            tokio::spawn(async move { (n, loads.of(vec![doc(n)]).await.unwrap()) })
        });
        for ask in asks {
            let (n, found) = ask.await.unwrap();
            if n % 2 == 0 {
                assert_eq!(found.len(), 1, "document {n}");
                assert_eq!(found[0].0, doc(n));
                assert_eq!(found[0].1.bytes, bytes, "document {n}");
            } else {
                assert!(found.is_empty(), "document {n} was never stored");
            }
        }

        storage.close().await.unwrap();
        // Storage gone: the next documents are told, not left waiting.
        assert!(owners.of(vec![actor(0)]).await.is_err());
        assert!(loads.of(vec![doc(2)]).await.is_err());
    }
}
