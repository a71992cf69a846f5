// New visit and new referral. Each record is its own Automerge document, written in one
// change with the keys of docs/schema.md; JS automerge 3 writes every string as text, as the
// Rust side does (sync-core/src/schema/write.rs). Optional fields that are empty are left out.

import { h } from "./dom.js"
import { t } from "./i18n.js"
import { PPKS, PROGRAMS, AREA, check, authorOf, nowIso, fieldName } from "./schema.js"
import { addMine, adopt, handleOf, saveSummaries } from "./caseload.js"

export function field(id, text, input, hint) {
  return h("div", { class: "field", "data-field": id }, h("label", { for: id }, text), input, hint ? h("small", {}, hint) : null, h("p", { class: "error", id: `${id}-error` }))
}

export const input = (id, attrs = {}) => h("input", { id, name: id, ...attrs })
const area = user => {
  const full = user.areas.filter(a => AREA.test(a))
  if (full.length && full.length === user.areas.length)
    return h("select", { id: "area", name: "area" }, full.map(a => h("option", { value: a }, a)))
  return input("area", { required: true, inputmode: "decimal", placeholder: `${user.areas[0] || "32.77.01"}.1001`, pattern: "\\d{2}\\.\\d{2}\\.\\d{2}\\.\\d{4}" })
}

function beneficiaryFields(prefill = {}) {
  return [
    field("nik", "NIK", input("nik", { required: true, inputmode: "numeric", maxlength: "16", value: prefill.nik })),
    field("kk", t("No. KK (boleh kosong)", "Family card no. (optional)"), input("kk", { inputmode: "numeric", maxlength: "16", value: prefill.kk })),
    field("name", t("Nama penerima manfaat", "Beneficiary's name"), input("name", { required: true, value: prefill.name })),
    field("address", t("Alamat (boleh kosong)", "Address (optional)"), input("address", { value: prefill.address })),
    h(
      "details",
      { class: "field", id: "ppks" },
      h("summary", {}, t("Kategori PPKS", "PPKS categories")),
      PPKS.map(([slug, id, en]) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "ppks", value: slug, checked: (prefill.ppks || []).includes(slug) }), t(id, en)),
      ),
    ),
  ]
}

function readBeneficiary(form) {
  const v = name => form.elements[name].value.trim()
  const b = { nik: v("nik"), name: v("name"), ppks: [...form.querySelectorAll("input[name=ppks]:checked")].map(c => c.value) }
  if (v("kk")) b.kk = v("kk")
  if (v("address")) b.address = v("address")
  return b
}

export function showViolations(form, violations) {
  form.querySelectorAll("p.error").forEach(p => (p.textContent = ""))
  const general = form.querySelector("#form-error")
  general.textContent = violations.length ? t("Periksa isian yang ditandai.", "Check the marked fields.") : ""
  for (const v of violations) {
    const id = v.path.replace(/^beneficiary\./, "")
    const slot = form.querySelector(`#${CSS.escape(id)}-error`)
    if (slot) slot.textContent = v.message
    else general.textContent += ` ${fieldName(v.path)}: ${v.message}`
  }
  form.querySelector("p.error:not(:empty)")?.scrollIntoView({ block: "center" })
}

/**
 * Creates the document, remembers it as this phone's, and opens it once it is in IndexedDB:
 * automerge-repo saves after a short debounce, and a phone closed right after "Simpan" must
 * not lose the record.
 */
async function create(app, doc) {
  // One tap, one record, however slow the phone.
  document.getElementById("save").disabled = true
  // The form may be filled in before Automerge's wasm has loaded.
  await app.replica.ready
  const handle = app.replica.repo.create(doc)
  addMine(handle.url)
  adopt(app, handle)
  await Promise.all([app.replica.repo.flush([handle.documentId]), saveSummaries()])
  app.go("record", handle.url)
}

const envelope = (app, type, form) => ({
  type,
  schema: 1,
  area: form.elements.area.value.trim(),
  createdBy: app.enrollment.user.id,
  createdAt: nowIso(),
})

export function visitForm(app) {
  const followUp = input("followUpOn", { type: "date" })
  let gps = null
  const locButton = h(
    "button",
    {
      type: "button",
      class: "big",
      onclick: () => {
        locButton.textContent = t("Mencari lokasi…", "Finding location…")
        navigator.geolocation.getCurrentPosition(
          pos => {
            gps = { lat: pos.coords.latitude, lon: pos.coords.longitude }
            locButton.textContent = `${gps.lat.toFixed(5)}, ${gps.lon.toFixed(5)}`
          },
          () => (locButton.textContent = t("Lokasi tidak tersedia", "Location not available")),
          { enableHighAccuracy: true, timeout: 20_000 },
        )
      },
    },
    t("Tambah lokasi GPS", "Add GPS location"),
  )
  const form = h(
    "form",
    {
      class: "record-form",
      id: "visit-form",
      onsubmit: ev => {
        ev.preventDefault()
        const v = name => form.elements[name].value.trim()
        const doc = {
          ...envelope(app, "visit", form),
          beneficiary: readBeneficiary(form),
          visitedAt: nowIso(),
          notes: v("notes"),
          actions: v("actions").split("\n").map(s => s.trim()).filter(Boolean),
        }
        if (v("purpose")) doc.purpose = v("purpose")
        if (v("followUpOn")) doc.followUpOn = v("followUpOn")
        if (gps) doc.location = gps
        const violations = check(doc, authorOf(app.enrollment.user))
        if (violations.length) return showViolations(form, violations)
        create(app, doc)
      },
    },
    h("h1", {}, t("Kunjungan baru", "New visit")),
    field("area", t("Kelurahan/desa (kode)", "Village (code)"), area(app.enrollment.user)),
    beneficiaryFields(),
    field("purpose", t("Tujuan (boleh kosong)", "Purpose (optional)"), input("purpose")),
    field("notes", t("Catatan", "Notes"), h("textarea", { id: "notes", name: "notes", rows: "4" })),
    field("actions", t("Tindakan (satu per baris)", "Actions (one per line)"), h("textarea", { id: "actions", name: "actions", rows: "3" })),
    field("followUpOn", t("Tanggal tindak lanjut (boleh kosong)", "Follow-up date (optional)"), followUp),
    h("div", { class: "field" }, locButton),
    h("p", { class: "error", id: "form-error", role: "alert" }),
    buttons(app),
  )
  return h("main", { class: "screen" }, form)
}

export function referralForm(app, visitUrl) {
  const visit = visitUrl ? handleOf(visitUrl)?.doc() : null
  const b = visit?.beneficiary || {}
  const prefill = { nik: b.nik && String(b.nik), kk: b.kk && String(b.kk), name: b.name && String(b.name), address: b.address && String(b.address), ppks: (b.ppks || []).map(String) }
  const areaInput = area(app.enrollment.user)
  if (visit?.area) areaInput.value = String(visit.area)
  const form = h(
    "form",
    {
      class: "record-form",
      id: "referral-form",
      onsubmit: ev => {
        ev.preventDefault()
        const v = name => form.elements[name].value.trim()
        const now = nowIso()
        const documents = {}
        for (const [key] of DOCUMENTS) documents[key] = form.elements[`doc-${key}`].checked
        const beneficiary = readBeneficiary(form)
        const doc = {
          ...envelope(app, "referral", form),
          beneficiary,
          program: v("program"),
          reason: v("reason"),
          documents,
          consent: { given: form.elements.consent.checked, at: now, by: v("consentBy") || beneficiary.name },
          events: [{ kind: "submitted", at: now, by: app.enrollment.user.id }],
        }
        if (visitUrl) doc.visit = visitUrl
        const violations = check(doc, authorOf(app.enrollment.user))
        if (violations.length) return showViolations(form, violations)
        create(app, doc)
      },
    },
    h("h1", {}, t("Rujukan baru", "New referral")),
    field("area", t("Kelurahan/desa (kode)", "Village (code)"), areaInput),
    beneficiaryFields(prefill),
    field("program", t("Program", "Program"), h("select", { id: "program", name: "program" }, PROGRAMS.map(([slug, id, en]) => h("option", { value: slug }, t(id, en))))),
    field("reason", t("Alasan rujukan", "Reason for the referral"), h("textarea", { id: "reason", name: "reason", rows: "3", required: true })),
    h(
      "fieldset",
      { class: "field" },
      h("legend", {}, t("Dokumen yang ada", "Documents at hand")),
      documentChecks(),
    ),
    h(
      "div",
      { class: "field", "data-field": "consent" },
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "consent", id: "consent" }), t("Penerima manfaat setuju dirujuk", "The beneficiary consents to the referral")),
      h("p", { class: "error", id: "consent-error" }),
    ),
    field("consentBy", t("Persetujuan diberikan oleh (boleh kosong: penerima manfaat)", "Consent given by (empty: the beneficiary)"), input("consentBy")),
    h("p", { class: "error", id: "form-error", role: "alert" }),
    buttons(app),
  )
  return h("main", { class: "screen" }, form)
}

/** A referral's document checklist (docs/schema.md: missing entries count as not there). */
export const DOCUMENTS = [
  ["ktp", "KTP", "ID card (KTP)"],
  ["kk", "Kartu Keluarga", "Family card"],
  ["sktm", "SKTM", "Hardship letter (SKTM)"],
  ["suratPuskesmas", "Surat puskesmas", "Health centre letter"],
]
export const documentChecks = (have = {}) =>
  DOCUMENTS.map(([key, id, en]) => h("label", { class: "check" }, h("input", { type: "checkbox", name: `doc-${key}`, id: `doc-${key}`, checked: have[key] === true }), t(id, en)))

/** Save, and Cancel back to the record being changed (`back`) or to the caseload. */
export const buttons = (app, back) =>
  h(
    "div",
    { class: "actions" },
    h("button", { class: "primary big", type: "submit", id: "save" }, t("Simpan", "Save")),
    h("button", { class: "big", type: "button", onclick: () => (back ? app.go("record", back) : app.go("caseload")) }, t("Batal", "Cancel")),
  )

export function outreachForm(app) {
  const form = h(
    "form",
    {
      class: "record-form",
      id: "outreach-form",
      onsubmit: ev => {
        ev.preventDefault()
        const v = name => form.elements[name].value.trim()
        const attendees = Number.parseInt(v("attendees") || "0", 10)
        const held = v("heldAt") ? new Date(v("heldAt")).toISOString().replace(/\.\d{3}Z$/, "Z") : nowIso()
        const doc = {
          ...envelope(app, "outreach", form),
          topic: v("topic"),
          heldAt: held,
          place: v("place"),
          attendees: Number.isFinite(attendees) && attendees >= 0 ? attendees : 0,
          notes: v("notes"),
        }
        const violations = check(doc, authorOf(app.enrollment.user))
        if (violations.length) return showViolations(form, violations)
        create(app, doc)
      },
    },
    h("h1", {}, t("Catatan penyuluhan baru", "New outreach note")),
    field("area", t("Kelurahan/desa (kode)", "Village (code)"), area(app.enrollment.user)),
    field("topic", t("Topik", "Topic"), input("topic", { required: true })),
    field("heldAt", t("Waktu (kosong: sekarang)", "When (empty: now)"), input("heldAt", { type: "datetime-local" })),
    field("place", t("Tempat", "Place"), input("place")),
    field("attendees", t("Jumlah peserta", "Attendees"), input("attendees", { type: "number", min: "0", inputmode: "numeric", value: "0" })),
    field("notes", t("Catatan", "Notes"), h("textarea", { id: "notes", name: "notes", rows: "4" })),
    h("p", { class: "error", id: "form-error", role: "alert" }),
    buttons(app),
  )
  return h("main", { class: "screen" }, form)
}
