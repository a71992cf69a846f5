// The office pages at phone size and at desk size, in a real browser (Debian's Chromium,
// headless) driven by Playwright with JSON lines on stdin/stdout, for tests/tests/browser_phone.rs:
// whether a page scrolls sideways, whether its lists are cards, whether what is tapped is big
// enough, and a supervisor's walk through the decision form.
//
//   node tests/js/phone.mjs --base http://127.0.0.1:PORT [--chromium /usr/bin/chromium]
//
// Prints {"event":"ready"}, then answers each command line with one line (commands.mjs).
// Every command times out after 15 s (or its "timeoutMs"). Commands:
//   {"cmd":"login","user":U,"password":P}     -> {"url"}: signs in in a fresh browser context
//   {"cmd":"viewport","width":W,"height":H}   -> {}
//   {"cmd":"goto","path":"/referrals"}        -> {"url","status"}
//   {"cmd":"click","selector":S}              -> {"url"} (after any navigation settles)
//   {"cmd":"fill","selector":S,"value":V}     -> {}
//   {"cmd":"waitFor","selector":S}            -> {"text"} once S is visible
//   {"cmd":"textOf","selector":S}             -> {"text"} of S, shown or not
//   {"cmd":"layout"}                          -> {"scrollWidth","innerWidth","rows","cards",
//       "small": [{tag, text, width, height}], "checked", "tinyText": [{text, size}]}:
//       the page's width against the window's; how many list rows (tbody tr) are shown and
//       how many of them as cards (a block with a border, not a table row); every shown link,
//       button and form field in a list or a form (radio buttons and checkboxes by their
//       label) less than 44 px high; text in charts smaller than 12 px; "unlabelled": the
//       text of card cells (but the first, and those of buttons) without a data-label
//   {"cmd":"screenshot","path":F}             -> {}: the whole page
//   {"cmd":"quit"}                            -> {} then exit 0
import { chromiumOptions, serveCommands, signIn } from "./commands.mjs"
import { parseArgs } from "node:util"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: { base: { type: "string" }, chromium: { type: "string" } },
})
if (!args.base) {
  console.error("usage: node phone.mjs --base http://HOST:PORT [--chromium PATH]")
  process.exit(2)
}
const log = (...parts) => console.error("[phone]", ...parts)

const browser = await chromium.launch(chromiumOptions(args.chromium))
let viewport = { width: 390, height: 844 }
let context = null
let page = null
async function fresh() {
  if (context) await context.close()
  context = await browser.newContext({ viewport, locale: "id-ID", hasTouch: true })
  page = await context.newPage()
  page.on("console", m => log("console:", m.type(), m.text()))
  page.on("pageerror", e => log("page error:", e.message))
}
await fresh()
const url = path => new URL(path, args.base).toString()

const commands = {
  async login({ user, password }) {
    await fresh()
    return await signIn(page, args.base, user, password)
  },
  async viewport({ width, height }) {
    viewport = { width, height }
    await page.setViewportSize(viewport)
    return {}
  },
  async goto({ path }) {
    const response = await page.goto(url(path))
    return { url: page.url(), status: response?.status() }
  },
  async click({ selector }) {
    await page.click(selector)
    await page.waitForLoadState("load")
    return { url: page.url() }
  },
  async fill({ selector, value }) {
    await page.fill(selector, value)
    return {}
  },
  async waitFor({ selector }, timeout) {
    const element = page.locator(selector).first()
    await element.waitFor({ state: "visible", timeout })
    return { text: (await element.innerText()).trim() }
  },
  async textOf({ selector }, timeout) {
    const element = page.locator(selector).first()
    await element.waitFor({ state: "attached", timeout })
    return { text: ((await element.textContent()) ?? "").trim() }
  },
  async layout() {
    return await page.evaluate(layoutOfPage)
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true })
    return {}
  },
  async quit() {
    await browser.close()
    return {}
  },
}

/** Runs in the page: see `layout` above. */
function layoutOfPage() {
  const shown = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden"
  const rows = [...document.querySelectorAll("main table tbody tr")].filter(shown)
  const cards = rows.filter(tr => {
    const s = getComputedStyle(tr)
    return (s.display === "block" || s.display === "flex") && parseFloat(s.borderTopWidth) > 0
  })
  // Cells of a card that do not say what they are (the first names the row).
  const unlabelled = []
  for (const tr of cards) {
    for (const td of [...tr.cells].slice(1)) {
      // A cell of actions (buttons) says what it does itself.
      if (td.colSpan > 1 || td.hasAttribute("data-label") || td.querySelector("button")) continue
      if (!td.textContent.trim()) continue
      unlabelled.push(td.textContent.trim().slice(0, 30))
    }
  }
  const targets = new Set()
  const lists = "main table, main form, main .pager, main details > summary, main .notice, main p.links"
  for (const e of document.querySelectorAll(
    "main table a, main table button, main form a, main form button, main form select, " +
    "main form input, main form textarea, main .pager a, main details > summary, " +
    "main .notice a, main p.links a",
  )) {
    if (!e.closest(lists) || e.type === "hidden") continue
    // A radio button or checkbox is tapped through its label.
    const target = e.type === "radio" || e.type === "checkbox"
      ? (e.labels?.[0] ?? e.closest("label") ?? e)
      : e
    if (shown(target)) targets.add(target)
  }
  const small = []
  for (const e of targets) {
    const r = e.getBoundingClientRect()
    if (r.height < 44 - 0.5) {
      small.push({
        tag: e.tagName.toLowerCase(),
        text: (e.innerText || e.value || e.name || "").trim().slice(0, 40),
        width: Math.round(r.width),
        height: Math.round(r.height),
      })
    }
  }
  const tinyText = []
  for (const t of document.querySelectorAll("svg.chart text")) {
    if (!shown(t)) continue
    const size = t.getBoundingClientRect().height
    // A text box is a little taller than its font; its font size on screen is the
    // computed size times the chart's scale.
    const svg = t.closest("svg")
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width
    const px = parseFloat(getComputedStyle(t).fontSize) * scale
    if (px < 12) tinyText.push({ text: t.textContent.trim().slice(0, 30), size: Math.round(px * 10) / 10, box: size })
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    rows: rows.length,
    cards: cards.length,
    checked: targets.size,
    unlabelled,
    small,
    tinyText,
  }
}

await serveCommands(commands, { page: () => page, log })
await browser.close()
