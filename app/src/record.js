// One record: its fields, whether the server has it, a refusal with the field and the
// server's message, and for a referral its status and history as supervisors decide.

import { h } from "./dom.js"
import { t, when, day } from "./i18n.js"
import { deriveStatus, statusLabel, label, PROGRAMS, PPKS, fieldName, checklist } from "./schema.js"
import { handleOf, want, typeName, STATE_TEXT } from "./caseload.js"
import { MAY_ADD_DOCUMENTS, MAY_WITHDRAW, withdraw } from "./edit.js"
import { attachmentList } from "./attachments.js"
import { DOCUMENTS } from "./forms.js"

/** The referral's checklist: each item ticked, backed by a scan, or missing. */
function checklistRow(doc) {
  const items = checklist(doc).map(({ item, checked, scans }) => {
    const [, id, en] = DOCUMENTS.find(([key]) => key === item)
    const how = scans.length ? t(" (scan)", " (scan)") : checked ? "" : null
    return how === null ? null : `${t(id, en)} ✓${how}`
  })
  return items.filter(Boolean).join(", ") || "—"
}

const plainDoc = doc => JSON.parse(JSON.stringify(doc))
const row = (name, value) => (value === undefined || value === null || value === "" ? null : h("div", { class: "row" }, h("dt", {}, name), h("dd", {}, value)))

export function recordScreen(app, url) {
  const handle = handleOf(url)
  if (!handle) want(app, url)
  const doc = handle?.isReady() ? handle.doc() : null
  if (!doc) return h("main", { class: "screen" }, h("p", {}, t("Memuat…", "Loading…")))
  const status = app.replica.status(handle)
  const refusal = status === "refused" ? app.replica.refusal(handle.documentId) : null
  const b = doc.beneficiary || {}
  const type = String(doc.type)
  const events = (doc.events || []).map(e => ({ kind: String(e.kind), at: String(e.at), by: String(e.by), note: e.note ? String(e.note) : null }))
  const referralStatus = deriveStatus(events)
  return h(
    "main",
    { class: "screen record-view", "data-url": url },
    h("h1", {}, typeName(type), ": ", String(b.name ?? doc.topic ?? "")),
    h("p", { class: `sync ${status}`, id: "record-status", "data-status": status }, t(...STATE_TEXT[status])),
    refusal
      ? h(
          "div",
          { class: "refusal", role: "alert" },
          h("p", {}, t("Server menolak perubahan ini. Perbaiki isian berikut:", "The server refused this change. Fix the following:")),
          h("ul", {}, refusal.violations.map(v => h("li", {}, h("strong", {}, fieldName(v.path)), ` (${v.path}): ${v.message}`))),
        )
      : null,
    type === "referral"
      ? h("p", { class: "referral-status", id: "referral-status", "data-referral-status": referralStatus }, t("Status: ", "Status: "), statusLabel(referralStatus))
      : null,
    h(
      "dl",
      {},
      row("NIK", b.nik && String(b.nik)),
      row(t("No. KK", "Family card no."), b.kk && String(b.kk)),
      row(t("Alamat", "Address"), b.address && String(b.address)),
      row(t("Kategori PPKS", "PPKS categories"), (b.ppks || []).map(p => label(PPKS, String(p))).join(", ")),
      row(t("Wilayah", "Area"), String(doc.area ?? "")),
      row(t("Waktu kunjungan", "Visited"), doc.visitedAt && when(String(doc.visitedAt))),
      row(t("Tujuan", "Purpose"), doc.purpose && String(doc.purpose)),
      row(t("Catatan", "Notes"), doc.notes && String(doc.notes)),
      row(t("Tindakan", "Actions"), (doc.actions || []).map(String).join("; ")),
      row(t("Tindak lanjut", "Follow-up"), doc.followUpOn && day(String(doc.followUpOn))),
      row(t("Program", "Program"), doc.program && label(PROGRAMS, String(doc.program))),
      row(t("Alasan", "Reason"), doc.reason && String(doc.reason)),
      type === "referral" ? row(t("Dokumen", "Documents"), checklistRow(plainDoc(doc))) : null,
      row(t("Waktu", "When"), doc.heldAt && when(String(doc.heldAt))),
      row(t("Tempat", "Place"), doc.place && String(doc.place)),
      row(t("Peserta", "Attendees"), doc.attendees !== undefined ? String(doc.attendees) : null),
      row(t("Dibuat", "Created"), when(String(doc.createdAt ?? ""))),
    ),
    type === "visit" || type === "referral"
      ? attachmentList(app, url, doc, app.enrollment.user.role === "peksos")
      : null,
    events.length
      ? h(
          "section",
          {},
          h("h2", {}, t("Riwayat", "History")),
          h("ol", { class: "events" }, events.map(e => h("li", {}, h("strong", {}, statusLabel(e.kind)), ` · ${when(e.at)} · ${e.by}`, e.note ? h("p", {}, e.note) : null))),
        )
      : null,
    h(
      "div",
      { class: "actions" },
      type === "visit" ? h("button", { class: "primary big", id: "refer", onclick: () => app.go("referral", url) }, t("Rujuk dari kunjungan ini", "Refer from this visit")) : null,
      h("button", { class: "big", onclick: () => app.go("caseload") }, t("Kembali", "Back")),
    ),
    h(
      "div",
      { class: "actions" },
      type === "referral"
        ? [
            MAY_ADD_DOCUMENTS.includes(referralStatus)
              ? h("button", { class: "big", id: "add-documents", onclick: () => app.go("edit", url) }, t("Dokumen dilengkapi", "Documents supplied"))
              : null,
            MAY_WITHDRAW.includes(referralStatus) ? h("button", { class: "big", id: "withdraw", onclick: () => withdraw(app, url) }, t("Tarik rujukan", "Withdraw")) : null,
          ]
        : h("button", { class: "big", id: "edit", onclick: () => app.go("edit", url) }, t("Ubah", "Edit")),
    ),
  )
}
