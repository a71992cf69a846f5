// The field documents as docs/schema.md defines them (version 1): labels, the referral status
// rule, the shape checks the app makes before it writes, and the builders of new documents.
// The server judges every change again with the Rust rules (sync-core/src/schema); what it
// refuses is shown on the record, never lost.

import { t } from "./i18n.js"

export const PPKS = [
  ["anak-balita-terlantar", "Anak balita terlantar", "Neglected toddler"],
  ["anak-terlantar", "Anak terlantar", "Neglected child"],
  ["anak-berhadapan-hukum", "Anak berhadapan dengan hukum", "Child in conflict with the law"],
  ["anak-jalanan", "Anak jalanan", "Street child"],
  ["anak-disabilitas", "Anak dengan kedisabilitasan", "Child with disability"],
  ["anak-korban-kekerasan", "Anak korban kekerasan", "Child victim of violence"],
  ["anak-perlindungan-khusus", "Anak memerlukan perlindungan khusus", "Child needing special protection"],
  ["lansia-terlantar", "Lanjut usia terlantar", "Neglected elderly"],
  ["penyandang-disabilitas", "Penyandang disabilitas", "Person with disability"],
  ["tuna-susila", "Tuna susila", "Sex worker"],
  ["gelandangan", "Gelandangan", "Homeless"],
  ["pengemis", "Pengemis", "Beggar"],
  ["pemulung", "Pemulung", "Scavenger"],
  ["kelompok-minoritas", "Kelompok minoritas", "Minority group"],
  ["bekas-warga-binaan", "Bekas warga binaan lapas", "Former prisoner"],
  ["odha", "Orang dengan HIV/AIDS", "Person with HIV/AIDS"],
  ["korban-napza", "Korban penyalahgunaan NAPZA", "Victim of drug abuse"],
  ["korban-trafficking", "Korban trafficking", "Trafficking victim"],
  ["korban-kekerasan", "Korban tindak kekerasan", "Victim of violence"],
  ["pekerja-migran-bermasalah", "Pekerja migran bermasalah sosial", "Migrant worker with social problems"],
  ["korban-bencana-alam", "Korban bencana alam", "Natural disaster victim"],
  ["korban-bencana-sosial", "Korban bencana sosial", "Social disaster victim"],
  ["perempuan-rawan-sosial-ekonomi", "Perempuan rawan sosial ekonomi", "Socio-economically vulnerable woman"],
  ["fakir-miskin", "Fakir miskin", "Destitute"],
  ["keluarga-bermasalah-sosial-psikologis", "Keluarga bermasalah sosial psikologis", "Family with psychosocial problems"],
  ["komunitas-adat-terpencil", "Komunitas adat terpencil", "Remote indigenous community"],
]

export const PROGRAMS = [
  ["kis-pbi", "KIS-PBI", "KIS-PBI"],
  ["pbi-apbd", "PBI-APBD", "PBI-APBD"],
  ["gakinda", "Gakinda", "Gakinda"],
  ["pkh", "PKH", "PKH"],
  ["bpnt", "BPNT / sembako", "BPNT / food aid"],
  ["rehabilitasi", "Rehabilitasi", "Rehabilitation"],
  ["lainnya", "Lainnya", "Other"],
]

export const STATUS = {
  draft: ["Draf", "Draft"],
  submitted: ["Diajukan", "Submitted"],
  accepted: ["Diterima", "Accepted"],
  "needs-documents": ["Perlu dokumen", "Needs documents"],
  approved: ["Disetujui", "Approved"],
  rejected: ["Ditolak", "Rejected"],
  enrolled: ["Terdaftar", "Enrolled"],
  withdrawn: ["Ditarik", "Withdrawn"],
  closed: ["Ditutup", "Closed"],
}

/** What an attachment shows (docs/schema.md), in the order the app offers them. */
export const ATTACHMENT_KINDS = [
  ["ktp", "KTP", "ID card (KTP)"],
  ["kk", "KK", "Family card (KK)"],
  ["sktm", "SKTM", "Certificate of low income (SKTM)"],
  ["surat-puskesmas", "Surat puskesmas", "Letter from the puskesmas"],
  ["rumah", "Foto rumah", "Photo of the house"],
  ["lainnya", "Lainnya", "Other"],
]
export const MEDIA_TYPES = ["image/jpeg", "image/png", "image/webp", "application/pdf"]
/** The largest attachment the rules accept unless the server says otherwise (Tus-Max-Size). */
export const DEFAULT_MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
/** The referral checklist: its key in `documents`, the kind of scan that satisfies it. */
export const CHECKLIST = [
  ["ktp", "ktp"],
  ["kk", "kk"],
  ["sktm", "sktm"],
  ["suratPuskesmas", "surat-puskesmas"],
]

/**
 * The referral checklist item by item: [{item, checked, scans, satisfied}], each satisfied by
 * its box or by an attached scan of its kind (`Referral::checklist` in Rust).
 */
export function checklist(referral) {
  const attachments = Array.isArray(referral.attachments) ? referral.attachments : []
  return CHECKLIST.map(([item, kind]) => {
    const checked = referral.documents?.[item] === true
    const scans = attachments.filter(a => isMap(a) && a.kind === kind)
    return { item, checked, scans, satisfied: checked || scans.length > 0 }
  })
}

export const label = (list, slug) => {
  const found = list.find(([s]) => s === slug)
  return found ? t(found[1], found[2]) : slug
}
export const statusLabel = s => (STATUS[s] ? t(...STATUS[s]) : s)

/** Field names people read, for the paths of a refusal. */
const FIELDS = {
  "beneficiary.nik": ["NIK", "NIK"],
  "beneficiary.kk": ["No. KK", "Family card no."],
  "beneficiary.name": ["Nama", "Name"],
  "beneficiary.ppks": ["Kategori PPKS", "PPKS categories"],
  area: ["Wilayah", "Area"],
  createdBy: ["Pembuat", "Author"],
  visitedAt: ["Waktu kunjungan", "Visit time"],
  followUpOn: ["Tindak lanjut", "Follow-up"],
  program: ["Program", "Program"],
  reason: ["Alasan", "Reason"],
  consent: ["Persetujuan", "Consent"],
  events: ["Riwayat", "History"],
  attachments: ["Foto / dokumen", "Photos / documents"],
}
export const fieldName = path => {
  const key = Object.keys(FIELDS).find(k => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`))
  return key ? t(...FIELDS[key]) : path
}

// The referral status rule (docs/schema.md), in list order from `draft`.
const RULES = {
  submitted: [["draft", "withdrawn", "rejected"], "submitted"],
  withdrawn: [["draft", "submitted", "accepted", "needs-documents"], "withdrawn"],
  accepted: [["submitted", "needs-documents"], "accepted"],
  "needs-documents": [["submitted", "accepted"], "needs-documents"],
  approved: [["submitted", "accepted", "needs-documents"], "approved"],
  rejected: [["submitted", "accepted", "needs-documents"], "rejected"],
  enrolled: [["approved"], "enrolled"],
  closed: [["approved", "rejected", "enrolled", "withdrawn"], "closed"],
}
export function deriveStatus(events = []) {
  let status = "draft"
  for (const e of events) {
    const kind = String(e.kind)
    if (kind === "documents-added") {
      if (status === "needs-documents") status = "submitted"
      continue
    }
    const rule = RULES[kind]
    if (rule && rule[0].includes(status)) status = rule[1]
  }
  return status
}

// ---- The rules, as sync-core/src/schema (document.rs, values.rs, rules.rs, history.rs) has
// them. sync-core/conformance/vectors.json, generated from the Rust rules, holds documents and
// edits with the violations the server finds; tests/tests/app.rs runs this code on them
// (tests/js/app-rules.mjs), so the two cannot drift unnoticed. Paths are the server's.

export const AREA = /^\d{2}\.\d{2}\.\d{2}\.\d{4}$/
const REGION_PREFIX = /^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$/
const MAX_SCHEMA = 2 ** 32 - 1
const MAX_ATTENDEES = 1_000_000_000
/** The schema version these rules know. */
const SCHEMA = 1
const FIELD_WORKER_EVENTS = ["submitted", "withdrawn", "documents-added"]
const EVENT_FIELDS = ["kind", "at", "by", "note"]
const ATTACHMENT_FIELDS = ["sha256", "size", "mime", "kind", "takenAt", "caption"]
const slugs = list => list.map(([slug]) => slug)

const M = {
  required: ["wajib diisi", "is required"],
  string: ["harus berupa teks", "must be a string"],
  nik: ["NIK harus 16 angka dengan tanggal lahir yang sah", "NIK must be 16 digits with a valid birth date"],
  kk: ["No. KK harus 16 angka", "Family card no. must be 16 digits"],
  area: ["Kode kelurahan/desa: PP.KK.CC.DDDD", "Village code: PP.KK.CC.DDDD"],
  date: ["Tanggal tidak sah", "Not a date"],
  time: ["Waktu tidak sah", "Not a time"],
  slug: ["bukan pilihan yang dikenal", "not a known choice"],
  shape: ["bentuknya tidak sah", "has the wrong shape"],
  number: ["angka di luar batas", "number out of range"],
  locked: ["tidak boleh diubah", "cannot change once the document exists"],
  scope: ["di luar wilayah Anda", "outside your areas"],
  role: ["tidak boleh dilakukan oleh peran Anda", "your role may not do this"],
  by: ["harus pengguna Anda sendiri", "must be your own user id"],
  appendOnly: ["riwayat hanya boleh ditambah di akhir", "events are append-only"],
  sha256: ["harus SHA-256 (64 heksadesimal kecil)", "must be a SHA-256 (64 lowercase hex digits)"],
  size: ["ukuran berkas di luar batas", "file size out of range"],
  attachmentLocked: ["lampiran tidak boleh diubah: hapus lalu tambah yang baru", "attachments are never changed: remove it and add a new one"],
  noAttachments: ["catatan penyuluhan tidak punya lampiran", "only visits and referrals hold attachments"],
}
const msg = key => t(...M[key])

const allDigits = s => /^\d*$/.test(s)
const two = (s, at) => Number(s.slice(at, at + 2)) || 0

function nikError(s) {
  if (s.length !== 16 || !allDigits(s)) return "nik"
  const day = two(s, 6)
  const month = two(s, 8)
  if (!((day >= 1 && day <= 31) || (day >= 41 && day <= 71)) || month < 1 || month > 12) return "nik"
}
const kkError = s => (s.length === 16 && allDigits(s) ? undefined : "kk")
const areaError = s => (AREA.test(s) ? undefined : "area")

export function dateError(s) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return "date"
  const [year, month, day] = [Number(s.slice(0, 4)), two(s, 5), two(s, 8)]
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
  if (!days || day === 0 || day > days) return "date"
}
function timeError(s) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/.exec(s)
  if (!m || dateError(m[1]) || Number(m[2]) > 23 || Number(m[3]) > 59 || Number(m[4]) > 60) return "time"
}
const oneOf = list => s => (list.includes(s) ? undefined : "slug")
const isMap = x => x !== null && typeof x === "object" && !Array.isArray(x)
const join = (path, key) => (path ? `${path}.${key}` : key)

/**
 * Violations of the schema in a document's state, each {path, message}: what
 * `FieldDocument::read` reports. Strings are read as Automerge text (JS automerge's default),
 * which the server's scalar checks (booleans, numbers) do not look at.
 */
export function validate(doc, limits = {}) {
  const maxBytes = limits.maxAttachmentBytes ?? DEFAULT_MAX_ATTACHMENT_BYTES
  const v = []
  const fail = (path, key) => v.push({ path, message: msg(key) })
  const string = (obj, path, key, required) => {
    const x = obj[key]
    if (x === undefined) return void (required && fail(join(path, key), "required"))
    if (typeof x !== "string") return void fail(join(path, key), "string")
    return x
  }
  const parsed = (obj, path, key, required, error) => {
    const s = string(obj, path, key, required)
    const e = s === undefined ? undefined : error(s)
    if (e) fail(join(path, key), e)
    return e ? undefined : s
  }
  const object = (obj, path, key, list, required) => {
    const x = obj[key]
    if (x === undefined) return void (required && fail(join(path, key), "required"))
    if (list ? !Array.isArray(x) : !isMap(x)) return void fail(join(path, key), "shape")
    return x
  }
  // A scalar: a number, a boolean or null (a string is text, an object).
  const scalar = x => x === null || typeof x === "number" || typeof x === "boolean"
  const wholeNumber = (x, min, max) => typeof x === "number" && Number.isInteger(x) && x >= min && x <= max

  const type = string(doc, "", "type", true)
  const kind = ["visit", "referral", "outreach"].includes(type) ? type : undefined
  if (type !== undefined && !kind) fail("type", "slug")
  if (!wholeNumber(doc.schema, 1, MAX_SCHEMA)) fail("schema", "number")
  parsed(doc, "", "area", true, areaError)
  string(doc, "", "createdBy", true)
  parsed(doc, "", "createdAt", true, timeError)
  if (wholeNumber(doc.schema, 1, MAX_SCHEMA) && doc.schema > SCHEMA) return v

  const beneficiary = () => {
    const b = object(doc, "", "beneficiary", false, true)
    if (!b) return
    parsed(b, "beneficiary", "nik", true, nikError)
    parsed(b, "beneficiary", "kk", false, kkError)
    string(b, "beneficiary", "name", true)
    string(b, "beneficiary", "address", false)
    const ppks = object(b, "beneficiary", "ppks", true, true)
    ppks?.forEach((c, i) => {
      if (typeof c !== "string" || !slugs(PPKS).includes(c)) fail(`beneficiary.ppks[${i}]`, "slug")
    })
  }
  const attachments = () =>
    object(doc, "", "attachments", true, false)?.forEach((a, i) => {
      const path = `attachments[${i}]`
      if (!isMap(a)) return fail(path, "shape")
      parsed(a, path, "sha256", true, s => (/^[0-9a-f]{64}$/.test(s) ? undefined : "sha256"))
      if (a.size === undefined) fail(`${path}.size`, "required")
      else if (!wholeNumber(a.size, 1, maxBytes)) fail(`${path}.size`, "size")
      parsed(a, path, "mime", true, oneOf(MEDIA_TYPES))
      parsed(a, path, "kind", true, oneOf(slugs(ATTACHMENT_KINDS)))
      parsed(a, path, "takenAt", true, timeError)
      string(a, path, "caption", false)
      if (Object.keys(a).some(k => !ATTACHMENT_FIELDS.includes(k))) fail(path, "shape")
    })
  const bool = (obj, path, key) => {
    const x = obj[key]
    if (scalar(x) && typeof x !== "boolean") fail(join(path, key), "shape")
  }
  if (kind === "visit") {
    beneficiary()
    parsed(doc, "", "visitedAt", true, timeError)
    string(doc, "", "purpose", false)
    string(doc, "", "notes", true)
    object(doc, "", "actions", true, true)?.forEach((a, i) => typeof a === "string" || fail(`actions[${i}]`, "string"))
    parsed(doc, "", "followUpOn", false, dateError)
    const loc = object(doc, "", "location", false, false)
    if (loc)
      for (const [key, limit] of [["lat", 90], ["lon", 180]])
        if (!(typeof loc[key] === "number" && Math.abs(loc[key]) <= limit)) fail(`location.${key}`, "number")
    attachments()
  } else if (kind === "referral") {
    beneficiary()
    parsed(doc, "", "program", true, oneOf(slugs(PROGRAMS)))
    string(doc, "", "reason", true)
    const documents = object(doc, "", "documents", false, true)
    if (documents) for (const key of ["ktp", "kk", "sktm", "suratPuskesmas"]) bool(documents, "documents", key)
    const consent = object(doc, "", "consent", false, true)
    if (consent) {
      bool(consent, "consent", "given")
      if (consent.given === undefined) fail("consent.given", "required")
      parsed(consent, "consent", "at", true, timeError)
      string(consent, "consent", "by", true)
    }
    parsed(doc, "", "visit", false, s => (/^automerge:[1-9A-HJ-NP-Za-km-z]+$/.test(s) ? undefined : "shape"))
    object(doc, "", "events", true, true)?.forEach((e, i) => {
      const path = `events[${i}]`
      if (!isMap(e)) return fail(path, "shape")
      parsed(e, path, "kind", true, oneOf(Object.keys(STATUS).filter(k => k !== "draft").concat("documents-added")))
      parsed(e, path, "at", true, timeError)
      string(e, path, "by", true)
      string(e, path, "note", false)
      if (Object.keys(e).some(k => !EVENT_FIELDS.includes(k))) fail(path, "shape")
    })
    attachments()
  } else if (kind === "outreach") {
    string(doc, "", "topic", true)
    parsed(doc, "", "heldAt", true, timeError)
    string(doc, "", "place", true)
    if (!wholeNumber(doc.attendees, 0, MAX_ATTENDEES - 1)) fail("attendees", "number")
    string(doc, "", "notes", true)
    if (doc.attachments !== undefined) fail("attachments", "noAttachments")
  }
  return v
}

/** A referral event's identity across an edit: events of `before` keep theirs in `after`. */
export const EVENT_ID = Symbol("event")

/** An attachment entry's identity across an edit, like EVENT_ID. */
export const ATTACHMENT_ID = Symbol("attachment")

/** A deep copy of plain values that keeps each event's and attachment's identity. */
export function copy(x) {
  if (Array.isArray(x)) return x.map(copy)
  if (!isMap(x)) return x
  const out = Object.fromEntries(Object.entries(x).map(([k, v]) => [k, copy(v)]))
  for (const id of [EVENT_ID, ATTACHMENT_ID]) if (x[id] !== undefined) out[id] = x[id]
  return out
}

/** Numbers the events and attachments of plain state: their identities for an edit. */
export function numberItems(state) {
  if (Array.isArray(state.events)) state.events.forEach((e, i) => isMap(e) && (e[EVENT_ID] = i))
  if (Array.isArray(state.attachments)) state.attachments.forEach((a, i) => isMap(a) && (a[ATTACHMENT_ID] = i))
  return state
}

/** Plain values of an Automerge document, its events and attachments numbered: the `before` of an edit. */
export function plainState(doc) {
  return numberItems(JSON.parse(JSON.stringify(doc)))
}

const covers = (scope, area) => area === scope || area.startsWith(`${scope}.`)
const inScope = (author, area) => author.areas.some(scope => covers(scope, area))
const mayEdit = (role, kind) => role === "peksos" || (role === "coordinator" && kind === "outreach")
const mayAddEvent = (role, kind) =>
  role === "peksos" ? FIELD_WORKER_EVENTS.includes(kind) : role === "supervisor" && !FIELD_WORKER_EVENTS.includes(kind)
const sameEvent = (a, b) => ["kind", "at", "by", "note"].every(k => a[k] === b[k])

/**
 * Whether `author` ({role, user, areas}) may take a document from `before` (null: a new
 * document) to `after`: `check_applied` of the server for plain states. Returns the
 * violations, [] when the change may be written.
 */
export function checkChange(before, after, author, limits = {}) {
  const read = validate(after, limits)
  if (read.length) return read
  const v = []
  const fail = (path, key) => v.push({ path, message: msg(key) })
  const newEvent = (i, e) => {
    if (!mayAddEvent(author.role, e.kind)) fail(`events[${i}].kind`, "role")
    if (e.by !== author.user) fail(`events[${i}].by`, "by")
  }
  const events = after.events || []
  const old = before?.events || []
  const known = new Set(old.map(e => e[EVENT_ID]))
  rules()
  // A new event goes after every event its author had seen (history.rs).
  const lastSeen = Math.max(-1, ...events.flatMap((e, i) => (known.has(e[EVENT_ID]) ? [i] : [])))
  events.forEach((e, i) => {
    if (!known.has(e[EVENT_ID]) && i < lastSeen) fail(`events[${i}]`, "appendOnly")
  })
  return v

  function rules() {
    if (after.schema > SCHEMA) fail("schema", "number")
    else if (!before) {
      if (!mayEdit(author.role, after.type)) return fail("type", "role")
      if (after.createdBy !== author.user) fail("createdBy", "by")
      if (!inScope(author, after.area)) fail("area", "scope")
      events.forEach((e, i) => newEvent(i, e))
    } else {
      if (after.type !== before.type) return fail("type", "locked")
      if (after.createdBy !== before.createdBy) fail("createdBy", "locked")
      if (after.createdAt !== before.createdAt) fail("createdAt", "locked")
      if (after.schema < before.schema) fail("schema", "locked")
      if (!inScope(author, before.area)) return fail("area", "scope")
      if (after.area !== before.area && !inScope(author, after.area)) fail("area", "scope")
      // An attachment is never changed in place (rules.rs).
      const oldAttachments = new Map((Array.isArray(before.attachments) ? before.attachments : []).map(a => [a[ATTACHMENT_ID], a]))
      ;(Array.isArray(after.attachments) ? after.attachments : []).forEach((a, i) => {
        const old = a[ATTACHMENT_ID] === undefined ? undefined : oldAttachments.get(a[ATTACHMENT_ID])
        if (old && !ATTACHMENT_FIELDS.every(k => old[k] === a[k])) fail(`attachments[${i}]`, "attachmentLocked")
      })
      const at = new Map(events.map((e, i) => [e[EVENT_ID], i]))
      old.forEach((e, i) => {
        const j = at.get(e[EVENT_ID])
        if (j === undefined) fail(`events[${i}]`, "appendOnly")
        else if (!sameEvent(events[j], e)) fail(`events[${j}]`, "appendOnly")
      })
      let added = 0
      events.forEach((e, i) => {
        if (e[EVENT_ID] !== undefined && known.has(e[EVENT_ID])) return
        added++
        newEvent(i, e)
      })
      const rest = d => JSON.stringify({ ...d, events: [] })
      if (!(added > 0 && rest(before) === rest(after)) && !mayEdit(author.role, after.type)) fail("", "role")
    }
  }
}

/** The enrolled user as the rules see an author. */
export const authorOf = user => ({ role: user.role, user: user.id, areas: user.areas })

/**
 * What the app checks before it writes: the server's rules for this user, and what the forms
 * ask beyond them (a name, a reason, the beneficiary's consent, a topic).
 */
export function check(after, author, before = null, limits = {}) {
  const v = checkChange(before, after, author, limits)
  const blank = x => typeof x !== "string" || !x.trim()
  const ask = (path, id, en) => v.some(x => x.path === path) || v.push({ path, message: t(id, en) })
  if (after.beneficiary && blank(after.beneficiary.name)) ask("beneficiary.name", "Nama wajib diisi", "Name is required")
  if (after.type === "referral") {
    if (blank(after.reason)) ask("reason", "Alasan wajib diisi", "Reason is required")
    if (after.consent?.given !== true) ask("consent", "Persetujuan penerima manfaat diperlukan", "The beneficiary's consent is required")
  }
  if (after.type === "outreach" && blank(after.topic)) ask("topic", "Topik wajib diisi", "Topic is required")
  return v
}

/** Now, as the schema writes times: RFC 3339 in UTC, whole seconds. */
export const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z")
