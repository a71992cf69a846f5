// The field app (/app/) in a real phone-sized browser: Debian's Chromium, headless, driven by
// Playwright with JSON lines on stdin/stdout, like browser.mjs, but with a persistent profile
// (so IndexedDB, the service worker and the device cookie survive a restart) and commands to
// go offline and to restart the browser.
//
//   node tests/js/app-browser.mjs --base http://127.0.0.1:PORT --profile DIR [--chromium PATH]
//
// Prints {"event":"ready"}, then answers each command line with one line, {"ok":true,...} or
// {"ok":false,"error":"..."}. Every command times out after 15 s (or its "timeoutMs"):
//   {"cmd":"goto","path":"/app/"}               -> {"url","status"}
//   {"cmd":"fill","selector":S,"value":V}       -> {}
//   {"cmd":"select","selector":S,"value":V}     -> {}
//   {"cmd":"check","selector":S}                -> {}
//   {"cmd":"click","selector":S}                -> {"url"}
//   {"cmd":"waitFor","selector":S}              -> {"text"} once S is visible
//   {"cmd":"attr","selector":S,"name":A}        -> {"value"}
//   {"cmd":"count","selector":S}                -> {"count"}
//   {"cmd":"waitCount","selector":S,"count":N}  -> {} once exactly N elements match S
//   {"cmd":"offline","offline":true|false}      -> {}
//   {"cmd":"throttle","uploadBytesPerSecond":N} -> {} (a slow uplink, until "offline" is next set)
//   {"cmd":"reload"}                            -> {"url"}
//   {"cmd":"restart"}                           -> {} (closes the browser, opens the same profile)
//   {"cmd":"serviceWorker"}                     -> {"controlled": bool} once the page is controlled
//   {"cmd":"storage"}                           -> {"databases": [names], "localStorage": n,
//                                                  "uploads": n (tus-js-client's stored upload URLs)}
//   {"cmd":"marks","names":[N,…]}               -> {"marks": [{name, startTime, detail}]} once
//                                                  the app has made a performance mark of each name
//   {"cmd":"screenshot","path":F}               -> {}
//   {"cmd":"quit"}                              -> {} then exit 0
import { chromiumOptions, serveCommands } from "./commands.mjs"
import { parseArgs } from "node:util"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: { base: { type: "string" }, profile: { type: "string" }, chromium: { type: "string" } },
})
if (!args.base || !args.profile) {
  console.error("usage: node app-browser.mjs --base http://HOST:PORT --profile DIR [--chromium PATH]")
  process.exit(2)
}
const log = (...parts) => console.error("[app-browser]", ...parts)
const url = path => new URL(path, args.base).toString()

let context
let page
let offline = false

async function open() {
  context = await chromium.launchPersistentContext(args.profile, {
    // A camera that shows a test pattern, allowed without asking: the app's photos.
    ...chromiumOptions(args.chromium, [
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
    ]),
    viewport: { width: 360, height: 640 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: "id-ID",
  })
  if (offline) await context.setOffline(true)
  page = context.pages()[0] ?? (await context.newPage())
  page.on("console", m => log("console:", m.type(), m.text()))
  page.on("pageerror", e => log("page error:", e.message))
}

await open()

const commands = {
  async goto({ path }) {
    const response = await page.goto(url(path))
    return { url: page.url(), status: response?.status() }
  },
  async fill({ selector, value }) {
    await page.fill(selector, value)
    return {}
  },
  async select({ selector, value }) {
    await page.selectOption(selector, value)
    return {}
  },
  async check({ selector }) {
    await page.check(selector)
    return {}
  },
  async click({ selector }) {
    await page.click(selector)
    return { url: page.url() }
  },
  async waitFor({ selector }, timeout) {
    const element = page.locator(selector).first()
    await element.waitFor({ state: "visible", timeout })
    return { text: (await element.innerText()).trim() }
  },
  async attr({ selector, name }, timeout) {
    const element = page.locator(selector).first()
    await element.waitFor({ state: "attached", timeout })
    return { value: await element.getAttribute(name) }
  },
  async count({ selector }) {
    return { count: await page.locator(selector).count() }
  },
  async waitCount({ selector, count }, timeout) {
    await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length === n, [selector, count], { timeout })
    return {}
  },
  async offline({ offline: value }) {
    offline = !!value
    await context.setOffline(offline)
    return {}
  },
  async throttle({ uploadBytesPerSecond }) {
    const cdp = await context.newCDPSession(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 100,
      downloadThroughput: -1,
      uploadThroughput: uploadBytesPerSecond,
    })
    return {}
  },
  async reload() {
    await page.reload()
    return { url: page.url() }
  },
  async restart() {
    await context.close()
    await open()
    return {}
  },
  async serviceWorker(_, timeout) {
    await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout })
    return { controlled: true }
  },
  async storage() {
    return await page.evaluate(async () => ({
      databases: (await indexedDB.databases()).map(d => d.name),
      localStorage: Object.keys(localStorage).filter(k => k.startsWith("fieldsync.") && k !== "fieldsync.lang").length,
      uploads: Object.keys(localStorage).filter(k => k.startsWith("tus::")).length,
    }))
  },
  async marks({ names }, timeout) {
    await page.waitForFunction(wanted => wanted.every(n => performance.getEntriesByName(n, "mark").length), names, { timeout })
    const marks = await page.evaluate(() =>
      performance
        .getEntriesByType("mark")
        .filter(m => m.name.startsWith("fieldsync:"))
        .map(({ name, startTime, detail }) => ({ name, startTime, detail })),
    )
    return { marks }
  },
  // Waits until the caseload's summary store (app/src/summaries.js) holds at least `count`
  // rows: the app writes a row within 250 ms of a document's change. Polled from here:
  // page.waitForFunction takes the promise an async predicate returns for a truthy answer,
  // so it never waited for the store (and a reload right after lost the row unnoticed).
  async summaries({ count }, timeout) {
    const rows = () =>
      page.evaluate(async () => {
        if (!(await indexedDB.databases()).some(d => d.name === "fieldsync-summaries")) return 0
        return await new Promise(resolve => {
          const open = indexedDB.open("fieldsync-summaries")
          open.onerror = () => resolve(0)
          open.onsuccess = () => {
            const db = open.result
            if (!db.objectStoreNames.contains("rows")) return db.close(), resolve(0)
            const req = db.transaction("rows").objectStore("rows").count()
            req.onsuccess = () => (db.close(), resolve(req.result))
            req.onerror = () => (db.close(), resolve(0))
          }
        })
      })
    const deadline = Date.now() + timeout
    for (;;) {
      const held = await rows()
      if (held >= count) return { rows: held }
      if (Date.now() > deadline) throw new Error(`the summary store holds ${held} rows, not ${count}, after ${timeout} ms`)
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  },
  async screenshot({ path }) {
    await page.screenshot({ path })
    return {}
  },
  async quit() {
    await context.close()
    return {}
  },
}

await serveCommands(commands, {
  page: () => page,
  log,
  // With FIELDSYNC_SCREENSHOTS set, what the page showed when a command failed.
  onFailure: async request => {
    if (process.env.FIELDSYNC_SCREENSHOTS)
      await page.screenshot({ path: `${process.env.FIELDSYNC_SCREENSHOTS}/failed-${request.cmd}.png`, fullPage: true })
  },
})
await context.close()
