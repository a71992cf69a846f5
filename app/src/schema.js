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

const NIK = /^\d{6}(0[1-9]|[12]\d|3[01]|4[1-9]|[56]\d|7[01])(0[1-9]|1[0-2])\d{6}$/
const DIGITS16 = /^\d{16}$/
export const AREA = /^\d{2}\.\d{2}\.\d{2}\.\d{4}$/

/** Violations of the shape rules, each {path, message}; empty when the record may be written. */
export function check(doc) {
  const v = []
  const add = (path, id, en) => v.push({ path, message: t(id, en) })
  if (!AREA.test(doc.area || "")) add("area", "Kode kelurahan/desa: PP.KK.CC.DDDD", "Village code: PP.KK.CC.DDDD")
  const b = doc.beneficiary
  if (b) {
    if (!NIK.test(b.nik || "")) add("beneficiary.nik", "NIK harus 16 angka dengan tanggal lahir yang sah", "NIK must be 16 digits with a valid birth date")
    if (b.kk !== undefined && !DIGITS16.test(b.kk)) add("beneficiary.kk", "No. KK harus 16 angka", "Family card no. must be 16 digits")
    if (!b.name?.trim()) add("beneficiary.name", "Nama wajib diisi", "Name is required")
  }
  if (doc.type === "visit" && doc.followUpOn && !/^\d{4}-\d{2}-\d{2}$/.test(doc.followUpOn))
    add("followUpOn", "Tanggal tidak sah", "Not a date")
  if (doc.type === "referral") {
    if (!doc.reason?.trim()) add("reason", "Alasan wajib diisi", "Reason is required")
    if (!doc.consent?.given) add("consent", "Persetujuan penerima manfaat diperlukan", "The beneficiary's consent is required")
  }
  if (doc.type === "outreach") {
    if (!doc.topic?.trim()) v.push({ path: "topic", message: t("Topik wajib diisi", "Topic is required") })
  }
  return v
}

/** Now, as the schema writes times: RFC 3339 in UTC, whole seconds. */
export const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z")
