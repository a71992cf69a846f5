// Changing a record after it was saved, as far as the rules let a field worker
// (docs/schema.md, sync-core/src/schema/rules.rs): a visit's purpose, notes, actions and
// follow-up date; an outreach note's place, attendees and notes; a referral only by appending
// events, `documents-added` (with the checklist ticked further) or `withdrawn`, never by
// changing what a supervisor decided on. The app checks the record as it would be before
// writing; the server judges the change again, and a refusal shows on the record as for a new
// one. Each change is saved in IndexedDB before the screen says so.

import { h } from "./dom.js"
import { t } from "./i18n.js"
import { Automerge } from "@automerge/automerge-repo/slim"
import { check, authorOf, copy, plainState, deriveStatus, nowIso } from "./schema.js"
import { handleOf, saveSummaries } from "./caseload.js"
import { field, input, showViolations, buttons, documentChecks, DOCUMENTS } from "./forms.js"

/** The statuses from which a field worker's events apply (docs/schema.md). */
export const MAY_WITHDRAW = ["draft", "submitted", "accepted", "needs-documents"]
export const MAY_ADD_DOCUMENTS = MAY_WITHDRAW

/** Writes `edit` as one change, if `check` accepts the result; returns the violations. */
async function save(app, handle, form, edit) {
  const before = plainState(handle.doc())
  const after = copy(before)
  edit(after, false)
  const violations = check(after, authorOf(app.enrollment.user), before)
  if (violations.length) return showViolations(form, violations)
  document.getElementById("save").disabled = true
  handle.change(d => edit(d, true))
  await Promise.all([app.replica.repo.flush([handle.documentId]), saveSummaries()])
  app.go("record", handle.url)
}

/**
 * Sets a field of `d` to `value`; an optional field (`keep` false) is left out when empty.
 * Text already there is updated in place, so an edit made meanwhile on another device to
 * another part of it is kept.
 */
function set(d, key, value, live, keep = false) {
  if (!keep && (value === "" || (Array.isArray(value) && !value.length))) {
    if (key in d) delete d[key]
  } else if (live && typeof value === "string" && typeof d[key] === "string") {
    if (d[key] !== value) Automerge.updateText(d, [key], value)
  } else if (JSON.stringify(d[key]) !== JSON.stringify(value)) {
    d[key] = value
  }
}

export function editScreen(app, url) {
  const handle = handleOf(url)
  const doc = handle?.isReady() ? handle.doc() : null
  if (!doc) return h("main", { class: "screen" }, h("p", {}, t("Memuat…", "Loading…")))
  const type = String(doc.type)
  if (type === "referral") return documentsForm(app, handle, doc)
  const text = key => (doc[key] === undefined ? "" : String(doc[key]))
  const fields =
    type === "visit"
      ? [
          field("purpose", t("Tujuan (boleh kosong)", "Purpose (optional)"), input("purpose", { value: text("purpose") })),
          field("notes", t("Catatan", "Notes"), h("textarea", { id: "notes", name: "notes", rows: "4" }, text("notes"))),
          field(
            "actions",
            t("Tindakan (satu per baris)", "Actions (one per line)"),
            h("textarea", { id: "actions", name: "actions", rows: "3" }, (doc.actions || []).map(String).join("\n")),
          ),
          field("followUpOn", t("Tanggal tindak lanjut (boleh kosong)", "Follow-up date (optional)"), input("followUpOn", { type: "date", value: text("followUpOn") })),
        ]
      : [
          field("place", t("Tempat", "Place"), input("place", { value: text("place") })),
          field("attendees", t("Jumlah peserta", "Attendees"), input("attendees", { type: "number", min: "0", inputmode: "numeric", value: text("attendees") })),
          field("notes", t("Catatan", "Notes"), h("textarea", { id: "notes", name: "notes", rows: "4" }, text("notes"))),
        ]
  const form = h(
    "form",
    {
      class: "record-form",
      id: "edit-form",
      onsubmit: ev => {
        ev.preventDefault()
        const v = name => form.elements[name].value.trim()
        save(app, handle, form, (d, live) => {
          // A visit always has `notes` and `actions`, an outreach note `notes` and `attendees`.
          set(d, "notes", v("notes"), live, true)
          if (type === "visit") {
            set(d, "purpose", v("purpose"), live)
            set(d, "actions", v("actions").split("\n").map(s => s.trim()).filter(Boolean), live, true)
            set(d, "followUpOn", v("followUpOn"), live)
          } else {
            set(d, "place", v("place"), live)
            const attendees = Number.parseInt(v("attendees") || "0", 10)
            set(d, "attendees", Number.isFinite(attendees) && attendees >= 0 ? attendees : 0, live, true)
          }
        })
      },
    },
    h("h1", {}, t("Ubah catatan", "Edit record")),
    fields,
    h("p", { class: "error", id: "form-error", role: "alert" }),
    buttons(app, url),
  )
  return h("main", { class: "screen" }, form)
}

/** A referral: the documents now at hand, appended as a `documents-added` event. */
function documentsForm(app, handle, doc) {
  const have = plainState(doc).documents || {}
  const form = h(
    "form",
    {
      class: "record-form",
      id: "edit-form",
      onsubmit: ev => {
        ev.preventDefault()
        const note = form.elements.note.value.trim()
        const event = { kind: "documents-added", at: nowIso(), by: app.enrollment.user.id }
        if (note) event.note = note
        save(app, handle, form, d => {
          d.documents ||= {}
          for (const [key] of DOCUMENTS) {
            const ticked = form.elements[`doc-${key}`].checked
            if (ticked && d.documents[key] !== true) d.documents[key] = true
          }
          d.events ||= []
          d.events.push(event)
        })
      },
    },
    h("h1", {}, t("Dokumen dilengkapi", "Documents supplied")),
    h("fieldset", { class: "field" }, h("legend", {}, t("Dokumen yang ada", "Documents at hand")), documentChecks(have)),
    field("note", t("Keterangan (boleh kosong)", "Note (optional)"), input("note")),
    h("p", { class: "error", id: "form-error", role: "alert" }),
    buttons(app, handle.url),
  )
  return h("main", { class: "screen" }, form)
}

/** Withdraws a referral: one `withdrawn` event, after the worker confirms. */
export async function withdraw(app, url) {
  const handle = handleOf(url)
  if (!handle?.isReady()) return
  if (!confirm(t("Tarik rujukan ini?", "Withdraw this referral?"))) return
  const status = deriveStatus(handle.doc().events || [])
  if (!MAY_WITHDRAW.includes(status)) return
  handle.change(d => {
    d.events ||= []
    d.events.push({ kind: "withdrawn", at: nowIso(), by: app.enrollment.user.id })
  })
  await Promise.all([app.replica.repo.flush([handle.documentId]), saveSummaries()])
  app.rerender()
}
