// The field app: enrollment, the caseload, new visits and referrals, offline first.
//
// Boot: register the service worker (the shell works offline), then either the enrollment
// screen (no device yet) or the caseload, listed from its summaries, and then the replica
// (automerge-repo in this page, documents in IndexedDB). The device token is an HttpOnly
// cookie set by the server at enrollment: this script never sees it, and it is never in a URL.

import "./app.css"
import { h, mount } from "./dom.js"
import { t, setLang, currentLang } from "./i18n.js"
import { Replica } from "./sync.js"
import { caseloadScreen, waitingCount, listDrawn } from "./caseload.js"
import { visitForm, referralForm, outreachForm } from "./forms.js"
import { recordScreen } from "./record.js"
import { editScreen } from "./edit.js"
import { wipe } from "./wipe.js"
import { attachScreen, startAttachments, stopCamera } from "./attachments.js"

const ENROLLMENT = "fieldsync.enrollment"
const root = document.getElementById("app")

export const app = {
  enrollment: null,
  replica: null,
  /** The screen to show: ["caseload"] | ["visit"] | ["referral", visitUrl?] | ["outreach"] | ["record", url] | ["edit", url] | ["attach", url] */
  screen: ["caseload"],
  persisted: null,
  revoked: null,
  go(...screen) {
    if (screen[0] !== "attach") stopCamera()
    this.screen = screen
    render()
    window.scrollTo(0, 0)
  },
  // Batched to one render per frame: a first sync brings hundreds of documents, each of which
  // asks for a render (rendering the list per document made that quadratic).
  rerender: () => scheduleRender(),
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(e => console.warn("service worker", e))
}

boot()

async function boot() {
  try {
    app.enrollment = JSON.parse(localStorage.getItem(ENROLLMENT) || "null")
  } catch {
    app.enrollment = null
  }
  // Not enrolled: the wasm is not fetched here, the service worker is already fetching it for
  // its cache (twice would cost another 1.1 MB over a weak link).
  if (!app.enrollment) return render()
  await startReplica()
}

async function startReplica() {
  app.replica = new Replica()
  app.replica.addEventListener("change", scheduleRender)
  // The caseload is listed from its summaries first: compiling Automerge's wasm holds this
  // thread for a while on a slow phone, and the list needs none of it. Should the summaries
  // not answer (IndexedDB can hang, automerge-repo #701), the repo starts anyway.
  render()
  await Promise.race([listDrawn, new Promise(resolve => setTimeout(resolve, 2000))])
  // After the browser has painted the list.
  await new Promise(resolve => setTimeout(resolve, 0))
  await app.replica.start()
  startAttachments(app)
  if (navigator.storage?.persist) {
    app.persisted = await navigator.storage.persisted()
    if (!app.persisted) app.persisted = await navigator.storage.persist().catch(() => false)
  }
  setInterval(checkDevice, 15_000)
  checkDevice()
  renderStatusBar()
}

let pending = false
function scheduleRender() {
  if (pending) return
  pending = true
  requestAnimationFrame(() => {
    pending = false
    // A form being filled in is never redrawn under the user's thumb.
    if (app.screen[0] === "caseload" || app.screen[0] === "record") render()
    else renderStatusBar()
  })
}

/**
 * At start, and while the socket is down and the network is up, asks the server whether this
 * device may still sync: a browser cannot read why a WebSocket upgrade failed, and a revoked
 * device must delete what it holds. The answer also carries the user's current areas.
 */
async function checkDevice() {
  if (!app.replica || app.replica.online || !navigator.onLine) return
  let answer
  try {
    const res = await fetch("/sync/device", { method: "POST", credentials: "same-origin" })
    answer = { status: res.status, body: await res.json().catch(() => ({})) }
  } catch {
    return
  }
  if (answer.status === 200 && answer.body.user?.id === app.enrollment.user.id) {
    // Reassigned or renamed since enrollment: new records use the areas the server has now.
    app.enrollment = { ...app.enrollment, user: answer.body.user }
    localStorage.setItem(ENROLLMENT, JSON.stringify(app.enrollment))
    app.revoked = null
  } else if (answer.status === 401 && answer.body.error === "device-revoked") {
    await wipe(app.replica)
    location.replace("/app/?wiped=1")
  } else if (answer.status === 401) {
    app.revoked = answer.body.error || "unauthorized"
    renderStatusBar()
  }
}

function render() {
  if (!app.enrollment) return mount(root, langSwitch(), enrollScreen())
  if (!app.replica) return mount(root, h("p", { class: "boot" }, t("Memuat…", "Loading…")))
  const [name, arg] = app.screen
  const body =
    name === "visit"
      ? visitForm(app, arg)
      : name === "referral"
        ? referralForm(app, arg)
        : name === "outreach"
          ? outreachForm(app)
          : name === "record"
            ? recordScreen(app, arg)
            : name === "edit"
              ? editScreen(app, arg)
              : name === "attach"
                ? attachScreen(app, arg)
                : caseloadScreen(app)
  // Records arriving while someone types a search must not take the keyboard away.
  const active = document.activeElement
  const typing = active?.id === "search" ? [active.selectionStart, active.selectionEnd] : null
  mount(root, header(), h("div", { id: "status" }, statusBar()), body)
  const search = typing && document.getElementById("search")
  if (search) {
    search.focus()
    search.setSelectionRange(...typing)
  }
}

function renderStatusBar() {
  const bar = document.getElementById("status")
  if (bar) mount(bar, statusBar())
}

function header() {
  const e = app.enrollment
  return h(
    "header",
    { class: "top" },
    h("button", { class: "brand", onclick: () => app.go("caseload") }, "fieldsync"),
    h("span", { class: "who" }, e.user.name),
    langSwitch(),
  )
}

function langSwitch() {
  const other = currentLang() === "id" ? "en" : "id"
  return h(
    "button",
    {
      class: "lang",
      "aria-label": t("Ganti bahasa", "Change language"),
      onclick: () => {
        setLang(other)
        render()
      },
    },
    other.toUpperCase(),
  )
}

function statusBar() {
  const r = app.replica
  const waiting = waitingCount(app)
  return h(
    "div",
    { class: "statusbar", "data-online": String(r.online) },
    h("span", { class: r.online ? "ok" : "off", id: "online" }, r.online ? t("Daring", "Online") : t("Luring", "Offline")),
    h(
      "span",
      { id: "last-sync" },
      t("Sinkron terakhir: ", "Last sync: "),
      r.lastSync ? new Date(r.lastSync).toLocaleString(currentLang() === "en" ? "en-GB" : "id-ID") : t("belum pernah", "never"),
    ),
    h("span", { id: "waiting", "data-count": String(waiting) }, t(`${waiting} menunggu dikirim`, `${waiting} waiting to sync`)),
    app.persisted === false
      ? h("p", { class: "warn" }, t(
          "Penyimpanan tetap ditolak browser: data bisa terhapus bila ruang penuh. Pasang aplikasi ke layar utama.",
          "Persistent storage was refused: data may be cleared when space runs out. Add the app to the home screen.",
        ))
      : null,
    app.revoked
      ? h("p", { class: "warn" }, t(
          "Server tidak menerima perangkat ini lagi. Hubungi admin untuk kode pendaftaran baru.",
          "The server no longer accepts this device. Ask an administrator for a new enrollment code.",
        ))
      : null,
  )
}

function enrollScreen() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("enroll") || ""
  const wiped = new URLSearchParams(location.search).get("wiped")
  const message = h("p", { class: "error", role: "alert", id: "enroll-error" })
  const code = h("input", {
    id: "code",
    name: "code",
    value: fromLink,
    autocapitalize: "characters",
    autocomplete: "off",
    spellcheck: "false",
    inputmode: "text",
    maxlength: "12",
    placeholder: "XXXX-XXXX",
    required: true,
  })
  const label = h("input", { id: "label", name: "label", maxlength: "80", placeholder: t("mis. HP Samsung A05", "e.g. Samsung A05 phone") })
  const submit = h("button", { class: "primary big", type: "submit" }, t("Daftarkan perangkat", "Enroll this device"))
  const form = h(
    "form",
    {
      class: "enroll",
      onsubmit: async ev => {
        ev.preventDefault()
        submit.disabled = true
        message.textContent = ""
        try {
          const res = await fetch("/api/enroll", {
            method: "POST",
            credentials: "same-origin",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ code: code.value, label: label.value }),
          })
          const body = await res.json().catch(() => ({}))
          if (!res.ok) {
            message.textContent =
              res.status === 429
                ? t("Terlalu banyak percobaan. Coba lagi sebentar lagi.", "Too many attempts. Try again in a minute.")
                : t("Kode tidak berlaku (salah, sudah dipakai, atau kedaluwarsa).", "The code is not valid (wrong, used, or expired).")
            return
          }
          localStorage.setItem(ENROLLMENT, JSON.stringify(body))
          history.replaceState(null, "", "/app/")
          app.enrollment = body
          await startReplica()
        } catch {
          message.textContent = t("Tidak ada sambungan ke server. Pendaftaran perlu sinyal.", "No connection to the server. Enrollment needs a signal.")
        } finally {
          submit.disabled = false
        }
      },
    },
    h("h1", {}, t("Daftarkan perangkat", "Enroll this device")),
    wiped ? h("p", { class: "warn" }, t("Perangkat ini dicabut; datanya sudah dihapus.", "This device was revoked; its data was deleted.")) : null,
    h("p", {}, t(
      "Masukkan kode pendaftaran dari admin atau koordinator Anda. Kode hanya berlaku sekali.",
      "Type the enrollment code from your administrator or coordinator. A code works once.",
    )),
    h("label", { for: "code" }, t("Kode pendaftaran", "Enrollment code")),
    code,
    h("label", { for: "label" }, t("Nama perangkat (boleh kosong)", "Device name (optional)")),
    label,
    message,
    submit,
  )
  return h("main", { class: "screen" }, form)
}
