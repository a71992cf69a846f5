// Screenshots of the main pages for docs/screenshots/, taken from a server running --demo:
//
//   node tests/js/screenshots.mjs --base http://127.0.0.1:PORT --out docs/screenshots \
//     --coordinator ID:PASSWORD --supervisor ID:PASSWORD [--chromium /usr/bin/chromium]
//
// scripts/screenshots starts the demo server and runs this.
import { parseArgs } from "node:util"
import { join } from "node:path"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    out: { type: "string" },
    coordinator: { type: "string" },
    supervisor: { type: "string" },
    chromium: { type: "string" },
  },
})
const browser = await chromium.launch({
  executablePath: args.chromium ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
})
const url = path => new URL(path, args.base).toString()

async function session([user, password], viewport = { width: 1366, height: 768 }) {
  const context = await browser.newContext({ viewport, locale: "id-ID" })
  const page = await context.newPage()
  await page.goto(url("/login"))
  await page.fill("#username", user)
  await page.fill("#password", password)
  await Promise.all([page.waitForLoadState("load"), page.click("form button[type=submit]")])
  return page
}
async function shot(page, name, path) {
  if (path) await page.goto(url(path))
  await page.waitForLoadState("load")
  await page.screenshot({ path: join(args.out, `${name}.png`) })
  console.log(`${name}.png  ${page.url()}`)
}
const credentials = s => s.split(":")

const login = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage()
await shot(login, "masuk", url("/login"))

const coordinator = await session(credentials(args.coordinator))
await shot(coordinator, "perlu-tindakan", "/workbench")
await shot(coordinator, "peta", "/map")
await coordinator.waitForSelector("#map[data-ready=true]", { timeout: 10000 }).catch(() => {})
await shot(coordinator, "peta")
await shot(coordinator, "cari", "/search?q=siti")
await shot(coordinator, "aktivitas", "/activity")
await coordinator.waitForSelector("#live-status.on", { timeout: 5000 }).catch(() => {})
await shot(coordinator, "aktivitas")
const person = await coordinator.getAttribute("table#feed a[href^='/beneficiaries/']", "href")
await shot(coordinator, "ringkasan", "/summary")
if (person) await shot(coordinator, "penerima", person)
await shot(coordinator, "ekspor", "/exports")
await coordinator.goto(url("/lang/en?next=/activity"))
await shot(coordinator, "activity-en")

const supervisor = await session(credentials(args.supervisor))
await shot(supervisor, "antrian-rujukan", "/referrals")
const referral = await supervisor.getAttribute("table#queue a[href^='/referrals/']", "href")
if (referral) await shot(supervisor, "rujukan", referral)
await shot(supervisor, "statistik", "/stats")

const tablet = await session(credentials(args.supervisor), { width: 820, height: 1180 })
await shot(tablet, "antrian-rujukan-tablet", "/referrals")

// A phone's width: lists as cards, filters folded.
const phone = await session(credentials(args.coordinator), { width: 390, height: 844 })
await shot(phone, "hp-perlu-tindakan", "/workbench")
await shot(phone, "hp-aktivitas", "/activity")
const phoneSupervisor = await session(credentials(args.supervisor), { width: 390, height: 844 })
if (referral) await shot(phoneSupervisor, "hp-rujukan", referral)

await browser.close()
