// The workbench and the activity feed in a real browser (Debian's Chromium, headless) driven
// by Playwright with JSON lines on stdin/stdout, for tests/tests/browser_workbench.rs.
//
//   node tests/js/workbench.mjs --base http://127.0.0.1:PORT [--chromium /usr/bin/chromium]
//
// Prints {"event":"ready"}, then answers each command line with one line (commands.mjs).
// Commands:
//   {"cmd":"login","user":U,"password":P}   -> {"url": page after sign-in}
//   {"cmd":"goto","path":"/workbench"}      -> {"url","status"}
//   {"cmd":"viewport","width":W,"height":H} -> {}
//   {"cmd":"waitFor","selector":S}          -> {"text"} once S is visible
//   {"cmd":"counts"}                        -> {"counts": {list id: data-count}, "shown": {list id:
//                                              the shown count badge's text}}
//   {"cmd":"overflow"}                      -> {"scrollWidth", "innerWidth", "widest": the element
//                                              reaching furthest right, described}
//   {"cmd":"smallTargets","selector":S}     -> {"small": [links or buttons under S under 44 px high]}
//   {"cmd":"screenshot","path":F}           -> {}
//   {"cmd":"quit"}                          -> {} then exit 0
import { chromiumOptions, serveCommands, signIn } from "./commands.mjs"
import { parseArgs } from "node:util"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: { base: { type: "string" }, chromium: { type: "string" } },
})
if (!args.base) {
  console.error("usage: node workbench.mjs --base http://HOST:PORT [--chromium PATH]")
  process.exit(2)
}
const log = (...parts) => console.error("[workbench]", ...parts)

const browser = await chromium.launch(chromiumOptions(args.chromium))
const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "id-ID" })
const page = await context.newPage()
page.on("console", m => log("console:", m.type(), m.text()))
page.on("pageerror", e => log("page error:", e.message))
const url = path => new URL(path, args.base).toString()

const commands = {
  async login({ user, password }) {
    return await signIn(page, args.base, user, password)
  },
  async goto({ path }) {
    const response = await page.goto(url(path))
    return { url: page.url(), status: response?.status() }
  },
  async viewport({ width, height }) {
    await page.setViewportSize({ width, height })
    return {}
  },
  async waitFor({ selector }, timeout) {
    const element = page.locator(selector).first()
    await element.waitFor({ state: "visible", timeout })
    return { text: (await element.innerText()).trim() }
  },
  async counts() {
    return await page.evaluate(() => {
      const counts = {}
      const shown = {}
      for (const card of document.querySelectorAll("section.worklist[data-count]")) {
        counts[card.id] = Number(card.dataset.count)
        shown[card.id] = Number(card.querySelector("h2 .count")?.innerText ?? "NaN")
      }
      return { counts, shown }
    })
  },
  // What the page's main part says, as a reader sees it.
  async mainText() {
    return { text: await page.locator("main").innerText() }
  },
  async overflow() {
    return await page.evaluate(() => {
      let widest = null
      let right = 0
      for (const e of document.body.querySelectorAll("*")) {
        const r = e.getBoundingClientRect()
        if (r.width && r.right > right) {
          right = r.right
          widest = `${e.tagName.toLowerCase()}#${e.id}.${e.className} right=${Math.round(r.right)}`
        }
      }
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        widest,
      }
    })
  },
  async smallTargets({ selector }) {
    return await page.evaluate(selector => {
      const small = []
      for (const e of document.querySelectorAll(`${selector} a[href], ${selector} button`)) {
        const r = e.getBoundingClientRect()
        if (r.width && r.height < 44) small.push(`${e.innerText.trim().slice(0, 30)} ${Math.round(r.height)}px`)
      }
      return { small }
    }, selector)
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: false })
    return {}
  },
  async quit() {
    await browser.close()
    return {}
  },
}

await serveCommands(commands, { page: () => page, log })
await browser.close()
