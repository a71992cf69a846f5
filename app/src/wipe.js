// A revoked device deletes what it holds: every IndexedDB database of this origin (the
// replica's and any automerge-repo made), the app's local records, and every cache but the
// shell's, then starts again at enrollment. The server has already refused the token.

import { DATABASE } from "./sync.js"
import { SUMMARIES } from "./summaries.js"
import { BLOBS } from "./attachments.js"

export async function wipe(replica) {
  try {
    await replica?.repo?.shutdown()
  } catch {}
  // The photos and scans not yet uploaded, and the previews of those that were.
  const names = new Set([DATABASE, SUMMARIES, BLOBS])
  try {
    for (const db of (await indexedDB.databases?.()) || []) if (db.name) names.add(db.name)
  } catch {}
  await Promise.all(
    [...names].map(
      name =>
        new Promise(resolve => {
          const req = indexedDB.deleteDatabase(name)
          req.onsuccess = req.onerror = req.onblocked = () => resolve()
        }),
    ),
  )
  // tus-js-client keeps each unfinished upload's URL under `tus::<fingerprint>::…`.
  const ours = key => (key.startsWith("fieldsync.") && key !== "fieldsync.lang") || key.startsWith("tus::") || key === "tusSupport"
  for (const key of Object.keys(localStorage)) if (ours(key)) localStorage.removeItem(key)
  for (const name of await caches.keys()) if (!name.startsWith("fieldsync-shell-")) await caches.delete(name)
}
