// Measures the field app's start in headless Chromium at 360×640 (figures in
// docs/benchmarks.md): the first start over emulated 3G, and a warm start offline from the
// service worker, with the CPU at full speed and throttled 4×.
//
//   node tests/js/app-bench.mjs --base http://127.0.0.1:PORT --code XXXX-XXXX [--records N] [--chromium PATH]
//
// The code is a fresh enrollment code (fieldsync device code --user ID). With --records N (the
// size of that user's caseload, e.g. koordinator-kota of `serve --demo`: 486 documents), also
// the time until the whole caseload is listed: first over the network, then warm, offline,
// with the CPU throttled 4×. Prints one JSON line.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    code: { type: "string" },
    records: { type: "string" },
    chromium: { type: "string" },
  },
})
const profile = mkdtempSync(join(tmpdir(), "fieldsync-app-bench-"))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 360, height: 640 },
  isMobile: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic"],
})
const page = context.pages()[0] ?? (await context.newPage())
const cdp = await context.newCDPSession(page)
const url = new URL("/app/", args.base).toString()
const result = {}

// "Fast 3G" as Chrome DevTools defines it: 562.5 ms RTT, 1.44 Mbit/s down, 675 kbit/s up.
await cdp.send("Network.enable")
await cdp.send("Network.emulateNetworkConditions", {
  offline: false,
  latency: 562.5,
  downloadThroughput: (1.44 * 1024 * 1024) / 8,
  uploadThroughput: (675 * 1024) / 8,
})
let t0 = performance.now()
await page.goto(url)
await page.locator("#code").waitFor()
result.first_start_3g_enroll_screen_ms = Math.round(performance.now() - t0)
await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 120_000 })
result.first_start_3g_shell_cached_ms = Math.round(performance.now() - t0)
await page.fill("#code", args.code)
t0 = performance.now()
await page.click("form.enroll button[type=submit]")
await page.locator("#online.ok").waitFor({ timeout: 60_000 })
result.enroll_to_online_3g_ms = Math.round(performance.now() - t0)
await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })

// Each start is timed from a page at rest: a reload while the previous page is still busy
// (compiling the wasm, loading the index) waits for it first, which no real start does.
const settle = async () => {
  await page.waitForTimeout(1000)
  await page.evaluate(() => new Promise(resolve => requestIdleCallback(resolve, { timeout: 5000 })))
}
async function warmOffline() {
  const times = []
  for (let i = 0; i < 5; i++) {
    await settle()
    const start = performance.now()
    await page.reload()
    await page.locator("#new-visit").waitFor()
    times.push(performance.now() - start)
  }
  times.sort((a, b) => a - b)
  return Math.round(times[2])
}
const records = Number(args.records || 0)
const listed = () =>
  page.waitForFunction(n => document.querySelectorAll("button.record").length >= n, records, { timeout: 300_000 })
// The rows the list is drawn from, as stored (app/src/summaries.js).
const stored = () =>
  page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("fieldsync-summaries")
        open.onerror = () => reject(open.error)
        open.onsuccess = () => {
          const count = open.result.transaction("rows").objectStore("rows").count()
          count.onsuccess = () => {
            open.result.close()
            resolve(count.result)
          }
        }
      }),
  )
if (records) {
  t0 = performance.now()
  await listed()
  result.caseload_first_sync_ms = Math.round(performance.now() - t0)
  // Warm means the phone has stored what it listed: the app writes a row within 250 ms of
  // receiving its document, and a page reloaded before then loads that document again.
  while ((await stored()) < records) await page.waitForTimeout(100)
}
await context.setOffline(true)
result.warm_offline_start_median_ms = await warmOffline()
await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 })
result.warm_offline_start_cpu4x_median_ms = await warmOffline()
if (records) {
  const times = []
  for (let i = 0; i < 5; i++) {
    await settle()
    const start = performance.now()
    await page.reload()
    await listed()
    times.push(performance.now() - start)
  }
  result[`caseload_${records}_warm_offline_cpu4x_runs_ms`] = times.map(Math.round)
  times.sort((a, b) => a - b)
  result[`caseload_${records}_warm_offline_cpu4x_median_ms`] = Math.round(times[2])
}
await context.close()
rmSync(profile, { recursive: true, force: true })
console.log(JSON.stringify(result))
