// A real browser (Debian's Chromium, headless) driven by Playwright with JSON lines on
// stdin/stdout, so Rust tests can walk through the pages as a coordinator or supervisor would
// while phones sync in the same test.
//
//   node tests/js/browser.mjs --base http://127.0.0.1:PORT [--chromium /usr/bin/chromium]
//
// Prints {"event":"ready"} once the browser runs, then answers each command line with one line,
// {"ok":true,...} or {"ok":false,"error":"..."}. Every command times out after 15 s (or its
// "timeoutMs"). Commands:
//   {"cmd":"login","user":U,"password":P}          -> {"url": page after sign-in}
//   {"cmd":"goto","path":"/activity"}              -> {"url","status"}
//   {"cmd":"select","selector":S,"value":V}        -> {}
//   {"cmd":"fill","selector":S,"value":V}          -> {}
//   {"cmd":"click","selector":S}                   -> {"url"} (after any navigation settles)
//   {"cmd":"waitFor","selector":S}                 -> {"text"} once S is visible
//   {"cmd":"attr","selector":S,"name":A}           -> {"value"}
//   {"cmd":"screenshot","path":F,"width":W,"height":H,"fullPage":B} -> {}
//   {"cmd":"quit"}                                 -> {} then exit 0
import { serveCommands } from "./commands.mjs"
import { parseArgs } from "node:util"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: { base: { type: "string" }, chromium: { type: "string" } },
})
if (!args.base) {
  console.error("usage: node browser.mjs --base http://HOST:PORT [--chromium PATH]")
  process.exit(2)
}
const log = (...parts) => console.error("[browser]", ...parts)

const browser = await chromium.launch({
  executablePath: args.chromium ?? process.env.FIELDSYNC_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Root in a container has no sandbox to use; the closed network needs Chromium quiet.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
})
const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "id-ID" })
const page = await context.newPage()
page.on("console", m => log("console:", m.type(), m.text()))
page.on("pageerror", e => log("page error:", e.message))
const url = path => new URL(path, args.base).toString()

const commands = {
  async login({ user, password }) {
    await page.goto(url("/login"))
    await page.fill("#username", user)
    await page.fill("#password", password)
    await Promise.all([page.waitForLoadState("load"), page.click("form button[type=submit]")])
    if (new URL(page.url()).pathname === "/login") throw new Error("sign-in failed")
    return { url: page.url() }
  },
  async goto({ path }) {
    const response = await page.goto(url(path))
    return { url: page.url(), status: response?.status() }
  },
  async select({ selector, value }) {
    await page.selectOption(selector, value)
    return {}
  },
  async fill({ selector, value }) {
    await page.fill(selector, value)
    return {}
  },
  async click({ selector }) {
    await page.click(selector)
    await page.waitForLoadState("load")
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
  async screenshot({ path, width, height, fullPage }) {
    if (width && height) await page.setViewportSize({ width, height })
    await page.screenshot({ path, fullPage: fullPage ?? false })
    return {}
  },
  async quit() {
    await browser.close()
    return {}
  },
}

await serveCommands(commands, { page: () => page, log })
await browser.close()
