// The caseload: every document the user's index lists, plus the records made on this phone,
// which the index lists only once the server has them. Follow-ups due or overdue come first.
// The server keeps one index per user, in pages: its root (the URL the enrollment gives)
// lists a page per kelurahan (`pages[area] = url`), and each page its documents
// (`documents[id] = {url, type, area}`). An index of schema 1 had the documents in its root.
//
// The list is drawn from the summary store (summaries.js), not from the documents: loading
// 500 documents through Automerge took 30 s on a slow phone. It is drawn before the repo
// starts (main.js waits for `listDrawn`), as the wasm's compilation holds the page's only
// thread for a while, and nothing is drawn meanwhile. Documents are loaded in the
// background, a few at a time: those without a row, this phone's records not yet stored on
// the server (to send them), every listed one once the phone is online (to sync them: a
// supervisor's decision arrives only for a loaded document), and the one being opened first.

import { h } from "./dom.js"
import { t, when, day, currentLang } from "./i18n.js"
import { statusLabel, label, PROGRAMS } from "./schema.js"
import { readAll, write, summarize } from "./summaries.js"

const MINE = "fieldsync.mine"
/** Documents loaded at once in the background: enough to keep IndexedDB busy, few enough
 * that a tap is answered between two of them. */
const PARALLEL = 2
const handles = new Map() // url → DocHandle
const rows = new Map() // url → summary row
const unsaved = new Map() // url → summary row not yet written
const queue = []
const queued = new Set()
let running = 0
let started = false
let summariesRead = false
let drawn
/** Resolves once the list has been drawn from the summaries (main.js starts the repo then). */
export const listDrawn = new Promise(resolve => (drawn = resolve))
/** The screen last drawn and what it showed: most renders (the status bar's, the index
 * loaded, a document synced unchanged) change nothing in the list, and drawing 500 rows
 * anew costs the browser styling and laying them all out again. */
let drawnFrom = null
let syncedOnline = false
let indexHandle = null
/** The index's pages by url: their handles, `null` while being found. */
const pages = new Map()
/** The urls the index lists, once it is loaded (from the pages loaded so far). */
let listed = null
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
const idOf = url => url.replace(/^automerge:/, "")

/** Runs `f` once the handle has settled after a "change" event. A document that was
 * unavailable when asked for (an index the server creates at the phone's first connection,
 * a colleague's record not yet stored) and then arrives emits "change" while still
 * unavailable, and becomes ready just after: read then, or it is never listed. */
const afterChange = f => queueMicrotask(f)

/** Follows a loaded document: its row, its acknowledgements and refusals. */
export function adopt(app, handle) {
  if (handles.has(handle.url)) return
  handles.set(handle.url, handle)
  handle.on("change", () => afterChange(() => note(handle)))
  note(handle)
  app.replica.watch(handle)
}

/** Keeps the document's row up to date (written within 250 ms, with the rows changed
 * meanwhile, in one transaction). */
function note(handle) {
  if (!handle.isReady()) return
  const old = rows.get(handle.url)
  const heads = handle.heads()
  if (old && old.heads.length === heads.length && old.heads.every(x => heads.includes(x))) return
  const row = summarize(handle)
  if (!row) return
  rows.set(row.url, row)
  unsaved.set(row.url, row)
  // Not pushed back by the next change: during a first sync the changes come faster than
  // that, and rows that waited for the end were lost when the app was closed before it (the
  // next start then loaded every one of those documents through Automerge).
  note.timer ??= setTimeout(saveSummaries, 250)
}

/** Writes the rows changed since the last write; a new record waits for its row. */
export function saveSummaries() {
  clearTimeout(note.timer)
  note.timer = null
  const batch = [...unsaved.values()]
  unsaved.clear()
  return write(batch)
}

/** Loads `url` before anything queued (a record being opened). */
export function want(app, url) {
  if (handles.has(url)) return
  const at = queue.indexOf(url)
  if (at >= 0) queue.splice(at, 1)
  queued.add(url)
  queue.unshift(url)
  pump(app)
}

function enqueue(app, url) {
  if (handles.has(url) || queued.has(url)) return
  queued.add(url)
  queue.push(url)
  pump(app)
}

function pump(app) {
  // Before the repo runs, what is asked for waits in the queue (start() pumps once it does).
  if (!app.replica.repo) return
  while (running < PARALLEL && queue.length) {
    const url = queue.shift()
    running++
    app.replica.repo
      .find(url, { allowableStates: ["ready", "unavailable"] })
      .then(async handle => {
        // What the caseload shows is in IndexedDB, so it is still there after a restart
        // offline (automerge-repo saves a fetched document only after a debounce).
        if (handle.isReady()) await app.replica.repo.flush([handle.documentId])
        adopt(app, handle)
        app.rerender()
      })
      .catch(e => {
        queued.delete(url)
        console.debug("fieldsync: not available yet", url, e?.message)
      })
      .finally(() => {
        running--
        pump(app)
      })
  }
}

/** Reads the summaries once; then decides what to load. Cheap to call on every render. */
function start(app) {
  if (started) return
  started = true
  readAll().then(found => {
    for (const row of found) if (!rows.has(row.url)) rows.set(row.url, row)
    summariesRead = true
    app.rerender()
    plan(app)
  })
  // The index and every document need the repo, which starts after the list is drawn.
  app.replica.ready.then(() => {
    pump(app)
    const indexUrl = app.enrollment.indexUrl
    if (indexUrl)
      app.replica.repo
        .find(indexUrl, { allowableStates: ["ready", "unavailable"] })
        .then(handle => {
          indexHandle = handle
          const update = () => {
            if (!handle.isReady()) return
            keep(app, handle)
            for (const url of pageUrls()) followPage(app, url)
            relist(app)
          }
          handle.on("change", () => afterChange(update))
          // Its server heads say when it is current (prune).
          app.replica.watch(handle)
          update()
        })
        .catch(() => {})
  })
  // Online for the first time since the start: sync every listed document. The index's
  // server heads heard: prune against it.
  app.replica.addEventListener("change", () => {
    if (!syncedOnline && app.replica.online) plan(app)
    else prune(app)
  })
}

/** The urls of the pages the index's root lists. */
const pageUrls = () => Object.values((indexHandle?.isReady() && indexHandle.doc()?.pages) || {}).map(String)

/** Finds a page of the index and follows its changes. */
function followPage(app, url) {
  if (pages.has(url)) return
  pages.set(url, null)
  app.replica.repo
    .find(url, { allowableStates: ["ready", "unavailable"] })
    .then(handle => {
      pages.set(url, handle)
      handle.on("change", () =>
        afterChange(() => {
          keep(app, handle)
          relist(app)
        }),
      )
      app.replica.watch(handle)
      keep(app, handle)
      relist(app)
    })
    .catch(() => pages.delete(url))
}

const kept = new Set()
/** Saves a fetched part of the index at once, the first time it is ready: automerge-repo saves
 * a fetched document only after a debounce, and an app closed sooner starts offline without
 * the page, so without the records only it lists. */
function keep(app, handle) {
  if (!handle.isReady() || kept.has(handle.url)) return
  kept.add(handle.url)
  app.replica.repo.flush([handle.documentId]).catch(() => kept.delete(handle.url))
}

/** Reads what the index lists from its root and the pages loaded. */
function relist(app) {
  const root = indexHandle?.isReady() && indexHandle.doc()
  if (!root) return
  const all = new Set(Object.values(root.documents || {}).map(e => String(e.url)))
  for (const url of pageUrls()) {
    const page = pages.get(url)
    if (!page?.isReady()) continue
    for (const entry of Object.values(page.doc()?.documents || {})) all.add(String(entry.url))
  }
  listed = all
  plan(app)
  app.rerender()
}

function plan(app) {
  if (!summariesRead) return
  const own = mine()
  const all = new Set([...own, ...(listed || [])])
  for (const url of own) {
    const row = rows.get(url)
    if (!row || app.replica.statusOf(idOf(url), row.heads) !== "stored") enqueue(app, url)
  }
  for (const url of all) if (!rows.has(url)) enqueue(app, url)
  if (app.replica.online && listed) {
    syncedOnline = true
    for (const url of all) enqueue(app, url)
  }
  prune(app)
}

/** Documents the server no longer lists (the user was moved elsewhere) leave the list; but
 * only by an index, root and every page, as new as the server's (`listed` is read again at
 * every change of either). A copy saved before the server's latest change (read offline, or
 * just after a restart) lacks records the phone already lists, and would drop them. */
function prune(app) {
  if (!listed || !indexHandle || !app.replica.current(indexHandle)) return
  for (const url of pageUrls()) {
    const page = pages.get(url)
    if (!page || !app.replica.current(page)) return
  }
  const own = new Set(mine())
  const gone = [...rows.keys()].filter(url => !listed.has(url) && !own.has(url))
  if (!gone.length) return
  for (const url of gone) rows.delete(url)
  write([], gone)
  app.rerender()
}

/** What a list row shows of a document, with its sync status. */
function shown(app, row) {
  const handle = handles.get(row.url)
  const status = handle?.isReady() ? app.replica.status(handle) : app.replica.statusOf(idOf(row.url), row.heads)
  return { ...row, status }
}

/** Records on this phone the server has not stored yet; refused ones need a correction and
 * are not counted. Worked out afresh for every status bar, whatever the screen, so that a
 * record refused while it is open is not still counted as waiting. */
export function waitingCount(app) {
  let waiting = 0
  for (const row of rows.values()) if (shown(app, row).status === "waiting") waiting++
  return waiting
}

export function caseloadScreen(app) {
  start(app)
  const now = new Date()
  const pad = n => String(n).padStart(2, "0")
  // Today on the phone's own calendar (WIB, WITA, WIT), not in UTC.
  const today = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`
  const list = [...rows.values()].map(r => shown(app, r))
  const q = query.trim().toLowerCase()
  const visible = list
    .filter(r => !q || r.name.toLowerCase().includes(q) || r.nik.includes(q))
    .sort((a, b) => {
      const dueA = a.followUpOn && a.followUpOn <= today
      const dueB = b.followUpOn && b.followUpOn <= today
      if (dueA !== dueB) return dueA ? -1 : 1
      if (dueA && dueB) return a.followUpOn.localeCompare(b.followUpOn)
      return b.at.localeCompare(a.at)
    })
  const from = {
    lang: currentLang(),
    today,
    query,
    summariesRead,
    rows: visible.map(r => rows.get(r.url)),
    statuses: visible.map(r => r.status),
  }
  if (drawnFrom && sameList(drawnFrom.from, from)) return drawnFrom.screen
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
  const screen = h(
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
    summariesRead ? recordList(app, visible, today) : h("p", { id: "records", class: "empty" }, t("Memuat…", "Loading…")),
  )
  if (summariesRead && drawn) {
    // In the browser's performance timeline, for profiles and tests/tests/app.rs.
    performance.mark("fieldsync:caseload-listed", { detail: { rows: visible.length } })
    drawn()
    drawn = null
  }
  drawnFrom = { from, screen }
  return screen
}

/** Whether the list would show the same: the same rows (a changed document gets a new row
 * object) in the same order with the same statuses, in the same language, on the same day. */
function sameList(a, b) {
  return (
    a.lang === b.lang &&
    a.today === b.today &&
    a.query === b.query &&
    a.summariesRead === b.summariesRead &&
    a.rows.length === b.rows.length &&
    a.rows.every((row, i) => row === b.rows[i] && a.statuses[i] === b.statuses[i])
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
          { class: "record", "data-status": r.status, "data-type": r.type, "data-url": r.url, onclick: () => app.go("record", r.url) },
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
