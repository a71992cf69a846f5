//! Writes the documents of the v0.1.0 upgrade fixture into a database that already has
//! v0.1.0's schema: `server/tests/fixtures/v0.1.0/make.sh` runs it. The documents go through
//! `Storage::write(Write::Append)` with `Projection::of`, the path (unchanged since v0.1.0)
//! by which the server stores a phone's changes and their query rows.

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use fieldsync_core::schema::{FieldDocument, RegionCode, examples};
use fieldsync_protocol::DocumentId;
use fieldsync_server::projection::Projection;
use fieldsync_server::storage::{self, Write};

/// The fixture's documents: two visits and an outreach note, by these ids.
const DOCUMENTS: [(u8, &str); 3] = [(0x10, "visit"), (0x11, "visit"), (0x12, "outreach")];

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: fixture_v0_1_0 sqlite://PATH"))?;
    let storage = storage::open(&url).await?;
    let area = RegionCode::parse("32.77.01.1001").map_err(|e| anyhow::anyhow!("{e}"))?;
    for (byte, kind) in DOCUMENTS {
        let id = DocumentId::from_bytes([byte; 16]);
        let document = match kind {
            "visit" => FieldDocument::Visit(examples::visit(&area, "peksos-ani")),
            _ => FieldDocument::Outreach(examples::outreach(&area, "peksos-ani")),
        };
        // Two change chunks, as a phone that created the document and then edited it sends.
        let mut doc = Automerge::new();
        doc.transact(|tx| document.write(tx))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let created = doc.save();
        let heads = doc.get_heads();
        doc.transact(|tx| tx.put(ROOT, "counter", 1).map(|_| ()))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let edited = doc.save_after(&heads);
        let state = FieldDocument::read_state(&doc).map_err(|v| anyhow::anyhow!("{v:?}"))?;
        for bytes in [created, edited] {
            storage
                .write(&[Write::Append {
                    doc: id,
                    bytes,
                    projection: Projection::of(state.as_ref()),
                }])
                .await?;
        }
        println!("{id} {kind}");
    }
    storage.close().await?;
    Ok(())
}
