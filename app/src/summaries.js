// The caseload's list without Automerge: one small row per document (what the list shows of
// it, and the heads it was made from), in an IndexedDB database of its own beside the
// replica's. Opening the caseload reads this one store; a document is loaded through
// Automerge only when it is opened, when it has no row yet, or to sync it (caseload.js).
// A row is written whenever the app writes or receives a change of its document.

import { deriveStatus } from "./schema.js"

export const SUMMARIES = "fieldsync-summaries"
const STORE = "rows"

let opening = null

function open() {
  opening ||= new Promise((resolve, reject) => {
    const req = indexedDB.open(SUMMARIES, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "url" })
    req.onsuccess = () => {
      const db = req.result
      // A wipe deletes this database: let it.
      db.onversionchange = () => {
        db.close()
        opening = null
      }
      resolve(db)
    }
    req.onerror = () => reject(req.error)
  })
  return opening
}

const done = req =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })

/** Every row, or none if the store cannot be read (the documents are then loaded instead). */
export async function readAll() {
  try {
    const db = await open()
    return await done(db.transaction(STORE).objectStore(STORE).getAll())
  } catch (e) {
    console.warn("fieldsync: the caseload summaries cannot be read", e?.message)
    return []
  }
}

/** Writes rows and deletes the rows of `gone` urls, in one transaction. */
export async function write(rows, gone = []) {
  if (!rows.length && !gone.length) return
  try {
    const db = await open()
    const tx = db.transaction(STORE, "readwrite")
    const store = tx.objectStore(STORE)
    for (const row of rows) store.put(row)
    for (const url of gone) store.delete(url)
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve
      tx.onerror = tx.onabort = () => reject(tx.error)
    })
  } catch (e) {
    // Only the list's speed depends on it: a missing row makes the document load next time.
    console.warn("fieldsync: a caseload summary was not saved", e?.message)
  }
}

/** What the list shows of a document (as the app shows it: the NIK in full), or null. */
export function summarize(handle) {
  const doc = handle.doc()
  if (!doc || !doc.type) return null
  const b = doc.beneficiary || {}
  const row = {
    url: handle.url,
    heads: handle.heads(),
    type: String(doc.type),
    area: String(doc.area ?? ""),
    name: String(b.name ?? doc.topic ?? ""),
    nik: String(b.nik ?? ""),
    at: String(doc.visitedAt ?? doc.createdAt ?? doc.heldAt ?? ""),
    followUpOn: doc.followUpOn ? String(doc.followUpOn) : null,
  }
  if (row.type === "referral") {
    row.referralStatus = deriveStatus(doc.events || [])
    row.program = String(doc.program ?? "")
  }
  return row
}
