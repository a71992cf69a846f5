// Bahasa Indonesia first, English on request. Every text is written at its call site in both
// languages, t("Kunjungan", "Visit"), as on the server's pages.

const KEY = "fieldsync.lang"
let lang = localStorage.getItem(KEY) === "en" ? "en" : "id"

export const t = (id, en) => (lang === "en" ? en : id)
export const currentLang = () => lang
export function setLang(code) {
  lang = code === "en" ? "en" : "id"
  localStorage.setItem(KEY, lang)
  document.documentElement.lang = lang
}

/** A date and time as people read it here (the phone's own time zone). */
export function when(iso) {
  if (!iso) return ""
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return format("when", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" }).format(d)
}

export function day(ymd) {
  if (!ymd) return ""
  const d = new Date(`${ymd}T00:00:00`)
  if (Number.isNaN(d.getTime())) return ymd
  return format("day", { day: "numeric", month: "short", year: "numeric" }).format(d)
}

// One formatter per language and kind, made once: `toLocaleString(locale, options)` builds a
// new one on every call, which took over half a second of drawing a 486-record list on a CPU
// slowed to a cheap phone's (docs/benchmarks.md).
const formats = new Map()
function format(kind, options) {
  const key = `${lang} ${kind}`
  let f = formats.get(key)
  if (!f) formats.set(key, (f = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "id-ID", options)))
  return f
}
