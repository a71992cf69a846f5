// The caseload: every document the user's index lists (the server keeps one index document
// per user: `documents[id] = {url, type, area}`), plus the records made on this phone, which
// the index lists only once the server has them. Follow-ups due or overdue come first.

import { h } from "./dom.js"
import { t, when, day } from "./i18n.js"
import { deriveStatus, statusLabel, label, PROGRAMS } from "./schema.js"

const MINE = "fieldsync.mine"
const handles = new Map() // url → DocHandle
const loading = new Set()
let indexHandle = null
let query = ""

export const mine = () => {
  try {
    return JSON.parse(localStorage.getItem(MINE) || "[]")
  } catch {
    return []
  }
}
export function addMine(url) {
  const list = mine()
  if (!list.includes(url)) list.push(url)
  localStorage.setItem(MINE, JSON.stringify(list))
}

export const handleOf = url => handles.get(url)

export function adopt(app, handle) {
  handles.set(handle.url, handle)
  app.replica.watch(handle)
}

function open(app, url) {
  if (handles.has(url) || loading.has(url)) return
  loading.add(url)
  app.replica.repo
    .find(url, { allowableStates: ["ready", "unavailable"] })
    .then(async handle => {
      // What the caseload shows is in IndexedDB, so it is still there after a restart
      // offline (automerge-repo saves a fetched document only after a debounce).
      if (handle.isReady()) await app.replica.repo.flush([handle.documentId])
      adopt(app, handle)
      app.rerender()
    })
    .catch(e => console.debug("fieldsync: not available yet", url, e?.message))
    .finally(() => loading.delete(url))
}

/** Starts loading what the caseload lists; cheap to call on every render. */
function refresh(app) {
  const url = app.enrollment.indexUrl
  if (url && !indexHandle && !loading.has(url)) {
    loading.add(url)
    app.replica.repo
      .find(url, { allowableStates: ["ready", "unavailable"] })
      .then(handle => {
        indexHandle = handle
        handle.on("change", () => app.rerender())
        app.rerender()
      })
      .catch(() => {})
      .finally(() => loading.delete(url))
  }
  const listed = Object.values(indexHandle?.doc()?.documents || {}).map(e => String(e.url))
  for (const u of new Set([...mine(), ...listed])) open(app, u)
}

/** What a list row shows of a document. */
export function summary(app, handle) {
  const doc = handle.doc()
  if (!doc || !doc.type) return null
  const b = doc.beneficiary || {}
  const row = {
    url: handle.url,
    type: String(doc.type),
    name: String(b.name ?? doc.topic ?? ""),
    nik: String(b.nik ?? ""),
    at: String(doc.visitedAt ?? doc.createdAt ?? doc.heldAt ?? ""),
    followUpOn: doc.followUpOn ? String(doc.followUpOn) : null,
    status: app.replica.status(handle),
    doc,
  }
  if (row.type === "referral") {
    row.referralStatus = deriveStatus(doc.events || [])
    row.program = String(doc.program ?? "")
  }
  return row
}

export function caseloadScreen(app) {
  refresh(app)
  const now = new Date()
  const pad = n => String(n).padStart(2, "0")
  // Today on the phone's own calendar (WIB, WITA, WIT), not in UTC.
  const today = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`
  const rows = [...handles.values()].map(hd => summary(app, hd)).filter(Boolean)
  app.waitingCount = rows.filter(r => r.status !== "stored").length
  const q = query.trim().toLowerCase()
  const shown = rows
    .filter(r => !q || r.name.toLowerCase().includes(q) || r.nik.includes(q))
    .sort((a, b) => {
      const dueA = a.followUpOn && a.followUpOn <= today
      const dueB = b.followUpOn && b.followUpOn <= today
      if (dueA !== dueB) return dueA ? -1 : 1
      if (dueA && dueB) return a.followUpOn.localeCompare(b.followUpOn)
      return b.at.localeCompare(a.at)
    })
  const search = h("input", {
    type: "search",
    id: "search",
    value: query,
    placeholder: t("Cari nama atau NIK", "Search name or NIK"),
    oninput: ev => {
      query = ev.target.value
      app.rerender()
    },
  })
  return h(
    "main",
    { class: "screen" },
    h(
      "div",
      { class: "actions" },
      h("button", { class: "primary big", id: "new-visit", onclick: () => app.go("visit") }, t("+ Kunjungan", "+ Visit")),
      h("button", { class: "big", id: "new-referral", onclick: () => app.go("referral") }, t("+ Rujukan", "+ Referral")),
    ),
    h("button", { class: "big wide", id: "new-outreach", onclick: () => app.go("outreach") }, t("+ Catatan penyuluhan", "+ Outreach note")),
    search,
    recordList(app, shown, today),
  )
}

export const STATE_TEXT = {
  stored: ["Tersimpan di server", "Stored on the server"],
  waiting: ["Menunggu dikirim", "Waiting to sync"],
  refused: ["Ditolak server", "Refused by the server"],
}

function recordList(app, rows, today) {
  if (!rows.length)
    return h("p", { id: "records", class: "empty" }, t("Belum ada catatan.", "No records yet."))
  return h(
    "ul",
    { id: "records", class: "records" },
    rows.map(r =>
      h(
        "li",
        {},
        h(
          "button",
          { class: "record", "data-status": r.status, "data-type": r.type, onclick: () => app.go("record", r.url) },
          h("span", { class: "kind" }, typeName(r.type)),
          h("strong", { class: "name" }, r.name || "—"),
          r.nik ? h("span", { class: "nik" }, r.nik) : null,
          h("span", { class: "when" }, when(r.at)),
          r.referralStatus
            ? h("span", { class: "referral-status", "data-referral-status": r.referralStatus }, `${label(PROGRAMS, r.program)} · ${statusLabel(r.referralStatus)}`)
            : null,
          r.followUpOn
            ? h("span", { class: r.followUpOn <= today ? "due" : "follow" }, t("Tindak lanjut ", "Follow-up "), day(r.followUpOn))
            : null,
          h("span", { class: `sync ${r.status}` }, t(...STATE_TEXT[r.status])),
        ),
      ),
    ),
  )
}

export const typeName = type =>
  type === "visit" ? t("Kunjungan", "Visit") : type === "referral" ? t("Rujukan", "Referral") : type === "outreach" ? t("Penyuluhan", "Outreach") : type
