// Photos and scans attached to a visit or a referral (docs/schema.md, "Attachments").
//
// Taking one works with no signal at all: the photo is shrunk here (longest side 1600 px,
// JPEG), hashed (SHA-256, its address on the server), kept in IndexedDB (`fieldsync-blobs`)
// and only then referenced from the document, so a document never names a blob this phone
// has lost. When the phone is online the blobs go to the server one at a time with
// tus-js-client (resumable: a cut connection, or the app closed mid-upload, continues from the
// offset the server reports, found again by a fingerprint made from the hash). Before uploading
// the phone asks whether the server already has the hash. Once the server has a blob, the full
// copy is dropped and a small preview kept for the record page.
//
// The device token never reaches this script: requests carry the device's HttpOnly cookie.

import { Upload } from "tus-js-client"
import { h } from "./dom.js"
import { t } from "./i18n.js"
import { ATTACHMENT_KINDS, DEFAULT_MAX_ATTACHMENT_BYTES, MEDIA_TYPES, authorOf, checkChange, copy, label, nowIso, plainState } from "./schema.js"
import { handleOf, saveSummaries } from "./caseload.js"

export const BLOBS = "fieldsync-blobs"
const STORE = "blobs"
/** A photo's longest side once shrunk: a KTP stays readable, the file a few hundred KB. */
const LONGEST_SIDE = 1600
const PREVIEW_SIDE = 320
const JPEG_QUALITY = 0.85
/** Bytes per PATCH: small enough that a cut on 2G loses little, large enough to be quick. */
const CHUNK = 256 * 1024
/** Answers that mean the server will not take this blob, whatever the retries. */
const REFUSALS = [400, 413, 415, 460]

// ---- IndexedDB: one record per blob, keyed by its hash ----
// {sha256, size, mime, kind, url, blob (the full bytes, until the server has them),
//  preview (a small JPEG as a data: URL, kept: the app's policy allows data: images, not
//  blob: ones), state: "waiting" | "uploaded" | "refused", reason}

let opened
function db() {
  opened ||= new Promise((resolve, reject) => {
    const req = indexedDB.open(BLOBS, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "sha256" })
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
  return opened
}

async function tx(mode, f) {
  const d = await db()
  return new Promise((resolve, reject) => {
    const tr = d.transaction(STORE, mode)
    const out = f(tr.objectStore(STORE))
    tr.oncomplete = () => resolve(out?.result)
    tr.onerror = tr.onabort = () => reject(tr.error)
  })
}
const putRecord = record => tx("readwrite", s => s.put(record))
const allRecords = () => tx("readonly", s => s.getAll())
const deleteRecord = sha256 => tx("readwrite", s => s.delete(sha256))

/** What the record pages show, without the bytes: sha256 → {state, reason, progress, preview URL}. */
const known = new Map()
let appRef = null

function remember(record, progress = record.state === "uploaded" ? 1 : 0) {
  const preview = record.preview || known.get(record.sha256)?.preview || null
  known.set(record.sha256, { state: record.state, reason: record.reason || null, progress, preview })
  appRef?.rerender()
}

/** Reads what this phone holds and starts uploading whenever it is online. */
export async function startAttachments(app) {
  appRef = app
  try {
    for (const r of await allRecords()) remember(r)
  } catch (e) {
    console.warn("fieldsync: attachments not readable", e)
  }
  addEventListener("online", () => pump())
  app.replica.addEventListener("change", () => app.replica.online && pump())
  setInterval(() => pump(), 30_000)
  pump()
}

// ---- shrinking and hashing ----

/** Draws `source` (an ImageBitmap or a video) on a canvas at most `side` px on its longest side. */
function draw(source, width, height, side) {
  const scale = Math.min(1, side / Math.max(width, height))
  const canvas = document.createElement("canvas")
  canvas.width = Math.max(1, Math.round(width * scale))
  canvas.height = Math.max(1, Math.round(height * scale))
  canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height)
  return canvas
}

const jpeg = canvas => new Promise(resolve => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY))

/** A frame (video) or a decoded picture, shrunk: the JPEG to keep and its preview. */
async function shrink(source, width, height) {
  const full = draw(source, width, height, LONGEST_SIDE)
  const preview = draw(full, full.width, full.height, PREVIEW_SIDE)
  const blob = await jpeg(full)
  if (!blob) throw new Error("the photo could not be encoded")
  return { blob, mime: "image/jpeg", preview: preview.toDataURL("image/jpeg", JPEG_QUALITY) }
}

/** A chosen file: an image is decoded once (createImageBitmap, off this thread where the
 * browser can) and shrunk; a PDF is kept as it is. */
async function fromFile(file) {
  if (file.type === "application/pdf") return { blob: file, mime: "application/pdf", preview: null }
  if (!file.type.startsWith("image/")) throw new Refusal(t("Hanya foto atau PDF.", "Only photos or PDFs."))
  let bitmap
  try {
    bitmap = await createImageBitmap(file)
  } catch {
    throw new Refusal(t("Foto ini tidak bisa dibaca.", "This photo cannot be read."))
  }
  try {
    return await shrink(bitmap, bitmap.width, bitmap.height)
  } finally {
    bitmap.close()
  }
}

async function sha256(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer())
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("")
}

class Refusal extends Error {}

/**
 * Keeps the blob, then adds its entry to the document in one change. Returns the violations
 * ([] when attached).
 */
async function attach(app, url, { blob, mime, preview }, kind, caption) {
  const handle = handleOf(url)
  if (!handle?.isReady()) throw new Refusal(t("Catatan belum dimuat.", "The record is not loaded."))
  if (!MEDIA_TYPES.includes(mime)) throw new Refusal(t("Jenis berkas tidak didukung.", "This type of file is not supported."))
  if (blob.size > DEFAULT_MAX_ATTACHMENT_BYTES)
    throw new Refusal(t("Berkas terlalu besar (maks. 20 MB).", "The file is too large (20 MB at most)."))
  const hash = await sha256(blob)
  const entry = { sha256: hash, size: blob.size, mime, kind, takenAt: nowIso() }
  if (caption) entry.caption = caption
  const before = plainState(handle.doc())
  const after = copy(before)
  after.attachments = [...(Array.isArray(after.attachments) ? after.attachments : []), entry]
  const violations = checkChange(before, after, authorOf(app.enrollment.user))
  if (violations.length) return violations
  const had = known.get(hash)
  if (!had || had.state === "refused")
    await putRecord({ sha256: hash, size: blob.size, mime, kind, url, blob, preview, state: "waiting", reason: null })
  handle.change(d => {
    d.attachments ||= []
    d.attachments.push(entry)
  })
  await Promise.all([app.replica.repo.flush([handle.documentId]), saveSummaries()])
  if (!had || had.state === "refused") remember({ sha256: hash, state: "waiting", preview })
  pump()
  return []
}

// ---- uploading ----

let pumping = false
/** Asked to pump while pumping: go round once more. The first round after the signal returns
 * often fails (the network is not quite up); the connection's own event, a moment later,
 * must not be lost, or the upload waits for the 30 s timer. */
let again = false

/** Uploads every waiting blob, one at a time, while the phone is online. */
export async function pump() {
  if (!navigator.onLine) return
  if (pumping) {
    again = true
    return
  }
  pumping = true
  try {
    do {
      again = false
      for (const record of await allRecords()) {
        if (record.state !== "waiting" || !record.blob) continue
        if (!navigator.onLine) break
        await upload(record)
      }
    } while (again && navigator.onLine)
  } catch (e) {
    console.warn("fieldsync: uploads stopped", e?.message)
  } finally {
    pumping = false
  }
}

async function upload(record) {
  const path = `/files/sha256/${record.sha256}`
  try {
    const head = await fetch(path, { method: "HEAD", credentials: "same-origin", cache: "no-store" })
    if (head.status === 200) return uploaded(record)
    // 404: not there yet. Anything else (a 401 when the server does not take the device's
    // cookie without an Origin, which browsers leave out of same-origin HEADs) is no answer:
    // the upload itself says whether the server has the blob (a finished upload at once).
  } catch {
    return
  }
  await new Promise(resolve => {
    const tus = new Upload(record.blob, {
      endpoint: "/files/",
      chunkSize: CHUNK,
      // The upload's URL is stored before its first byte is sent, so a cut at any point resumes.
      uploadDataDuringCreation: false,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata: { sha256: record.sha256, filetype: record.mime, filename: `${record.kind}.${record.mime === "application/pdf" ? "pdf" : "jpg"}` },
      // The same blob resumes the same upload, after a cut or a restart of the app.
      fingerprint: () => Promise.resolve(`fieldsync-${record.sha256}`),
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        const k = known.get(record.sha256)
        if (k) k.progress = total ? sent / total : 0
        appRef?.rerender()
      },
      onSuccess: () => uploaded(record).then(resolve, resolve),
      onError: err => {
        const status = err?.originalResponse?.getStatus?.() || 0
        if (REFUSALS.includes(status)) refused(record, status, err.originalResponse.getBody?.()).then(resolve, resolve)
        else resolve()
      },
    })
    tus
      .findPreviousUploads()
      .then(previous => {
        if (previous.length) tus.resumeFromPreviousUpload(previous[0])
        tus.start()
      })
      .catch(() => resolve())
  })
}

/** The server has it: the full copy goes, the preview stays. */
async function uploaded(record) {
  await putRecord({ ...record, blob: null, state: "uploaded", reason: null })
  remember({ ...record, state: "uploaded" })
}

/** The server will not take it: kept on the phone with the server's reason. */
async function refused(record, status, body) {
  let reason = ""
  try {
    const json = JSON.parse(body)
    reason = String(json.message || json.error || "")
  } catch {
    reason = String(body || "")
  }
  reason = reason.trim().slice(0, 200) || `HTTP ${status}`
  await putRecord({ ...record, state: "refused", reason })
  remember({ ...record, state: "refused", reason })
}

// ---- what the record page shows ----

const STATE = {
  waiting: ["Menunggu diunggah", "Waiting to upload"],
  uploaded: ["Terunggah", "Uploaded"],
  refused: ["Ditolak server", "Refused by the server"],
  pending: ["Belum terunggah", "Scan pending"],
}

/** A document's attachments with their state, and "Tambah foto / dokumen" when `canAdd`. */
export function attachmentList(app, url, doc, canAdd) {
  const list = Array.isArray(doc.attachments) ? doc.attachments : []
  return h(
    "section",
    { class: "attachments", id: "attachments" },
    h("h2", {}, t("Foto dan dokumen", "Photos and documents")),
    list.length
      ? h("ul", { class: "attachments" }, list.map(a => attachmentItem(a)))
      : h("p", { class: "empty-note" }, t("Belum ada foto atau dokumen.", "No photos or documents yet.")),
    canAdd
      ? h("button", { class: "big wide", id: "add-attachment", onclick: () => app.go("attach", url) }, t("Tambah foto / dokumen", "Add photo / document"))
      : null,
  )
}

function attachmentItem(a) {
  const sha = String(a.sha256 ?? "")
  const mine = known.get(sha)
  const kind = label(ATTACHMENT_KINDS, String(a.kind ?? ""))
  const caption = a.caption ? String(a.caption) : null
  const pdf = String(a.mime) === "application/pdf"
  let state = mine?.state || "remote"
  const status = h("span", { class: "attachment-state", "data-state": state })
  const describe = s => {
    state = s
    status.dataset.state = s
    status.textContent = t(...STATE[s])
    if (s === "waiting" && mine?.progress > 0 && mine.progress < 1) status.textContent += ` · ${Math.round(mine.progress * 100)}%`
    if (s === "refused" && mine?.reason) status.textContent += `: ${mine.reason}`
  }
  let picture = null
  if (mine?.preview) picture = h("img", { class: "thumb", src: mine.preview, alt: kind })
  else if (pdf) picture = h("span", { class: "thumb pdf" }, "PDF")
  if (state !== "remote") describe(state)
  else if (!pdf) {
    // A colleague's scan: shown once the server has it; until then it is pending, not an error.
    describe("pending")
    picture = h("img", {
      class: "thumb",
      alt: kind,
      loading: "lazy",
      src: `/files/sha256/${encodeURIComponent(sha)}/thumb`,
      onload: () => status.replaceChildren(),
      onerror: ev => ev.target.remove(),
    })
  } else describe("pending")
  return h(
    "li",
    { class: "attachment", "data-sha256": sha, "data-kind": String(a.kind ?? "") },
    picture,
    h("div", {}, h("strong", {}, kind), caption ? h("p", { class: "caption" }, caption) : null, status),
  )
}

// ---- the screen that takes the photo ----

let stream = null

/** Stops the camera (leaving the screen, or after the photo). */
export function stopCamera() {
  stream?.getTracks().forEach(track => track.stop())
  stream = null
}

export function attachScreen(app, url) {
  const handle = handleOf(url)
  if (!handle?.isReady()) return h("main", { class: "screen" }, h("p", {}, t("Memuat…", "Loading…")))
  const error = h("p", { class: "error", id: "attach-error", role: "alert" })
  const kind = h(
    "select",
    { id: "attach-kind", name: "kind" },
    ATTACHMENT_KINDS.map(([slug, id, en]) => h("option", { value: slug }, t(id, en))),
  )
  const caption = h("input", { id: "attach-caption", name: "caption", maxlength: "200" })
  const video = h("video", { id: "camera", autoplay: true, muted: true, playsinline: true })
  video.muted = true
  const capture = h("button", { class: "primary big", type: "button", id: "capture", disabled: true }, t("Ambil foto", "Take photo"))
  const camera = h("div", { class: "camera", hidden: true }, video, capture)
  const file = h("input", { type: "file", id: "attach-file", accept: "image/*,application/pdf", capture: "environment" })
  const busy = h("p", { class: "busy", id: "attach-busy", "aria-live": "polite" })

  const finish = async prepared => {
    busy.textContent = t("Menyimpan…", "Saving…")
    capture.disabled = true
    try {
      const violations = await attach(app, url, await prepared(), kind.value, caption.value.trim())
      if (violations.length) {
        error.textContent = violations.map(v => `${v.path}: ${v.message}`).join("; ")
        return
      }
      stopCamera()
      app.go("record", url)
    } catch (e) {
      error.textContent = e instanceof Refusal ? e.message : t("Gagal menyimpan foto.", "The photo could not be saved.")
      console.warn("fieldsync: attachment not saved", e?.message)
    } finally {
      busy.textContent = ""
      capture.disabled = !stream
    }
  }
  capture.addEventListener("click", () => finish(() => shrink(video, video.videoWidth, video.videoHeight)))
  file.addEventListener("change", () => file.files[0] && finish(() => fromFile(file.files[0])))

  // The rear camera where there is one; otherwise the file input (which on a phone opens the
  // camera app too) is all there is.
  if (navigator.mediaDevices?.getUserMedia) {
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: { ideal: "environment" }, width: { ideal: 1920 }, height: { ideal: 1080 } }, audio: false })
      .then(s => {
        if (app.screen[0] !== "attach") return s.getTracks().forEach(track => track.stop())
        stream = s
        video.srcObject = s
        camera.hidden = false
        video.addEventListener("loadeddata", () => (capture.disabled = false), { once: true })
      })
      .catch(e => console.info("fieldsync: no camera, choosing a file instead", e?.name))
  }

  return h(
    "main",
    { class: "screen attach" },
    h("h1", {}, t("Tambah foto / dokumen", "Add photo / document")),
    h("label", { for: "attach-kind" }, t("Jenis", "Kind")),
    kind,
    h("label", { for: "attach-caption" }, t("Keterangan (boleh kosong)", "Caption (optional)")),
    caption,
    camera,
    h("label", { for: "attach-file" }, t("Atau pilih foto / PDF", "Or choose a photo / PDF")),
    file,
    busy,
    error,
    h(
      "div",
      { class: "actions" },
      h("button", { class: "big", type: "button", id: "attach-cancel", onclick: () => (stopCamera(), app.go("record", url)) }, t("Batal", "Cancel")),
    ),
  )
}
