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
//   {"cmd":"textOf","selector":S}                  -> {"text"} of S, shown or not
//   {"cmd":"focus","selector":S}                   -> {"focused"}
//   {"cmd":"press","key":K}                        -> {"focused"} after the key (e.g. "Tab")
//   {"cmd":"focused"}                              -> {"focused"}: {tag, id, cls, href, text, doc}
//                                                     of the focused element (doc: its row's data-doc)
//   {"cmd":"scrollY"}                              -> {"value"}: how far the page is scrolled
//   {"cmd":"contrast"}                             -> {"checked", "failures": [{text, fg, bg, ratio, need}]}:
//                                                     every shown text on the page against WCAG AA
//   {"cmd":"viewport","width":W,"height":H}        -> {}
//   {"cmd":"screenshot","path":F,"width":W,"height":H,"fullPage":B} -> {}
//   {"cmd":"quit"}                                 -> {} then exit 0
import { chromiumOptions, serveCommands, signIn } from "./commands.mjs"
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

const browser = await chromium.launch(chromiumOptions(args.chromium))
const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "id-ID" })
const page = await context.newPage()
const errors = []
page.on("console", m => {
  log("console:", m.type(), m.text())
  if (m.type() === "error") errors.push(m.text())
})
page.on("pageerror", e => {
  log("page error:", e.message)
  errors.push(e.message)
})
const url = path => new URL(path, args.base).toString()

const commands = {
  async login({ user, password }) {
    return await signIn(page, args.base, user, password)
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
  async textOf({ selector }, timeout) {
    const element = page.locator(selector).first()
    await element.waitFor({ state: "attached", timeout })
    return { text: ((await element.textContent()) ?? "").trim() }
  },
  async focus({ selector }) {
    await page.focus(selector)
    return { focused: await focused() }
  },
  async press({ key }) {
    await page.keyboard.press(key)
    return { focused: await focused() }
  },
  async focused() {
    return { focused: await focused() }
  },
  async scrollY() {
    return { value: await page.evaluate(() => window.scrollY) }
  },
  async contrast() {
    return await page.evaluate(contrastOfPage)
  },
  async viewport({ width, height }) {
    await page.setViewportSize({ width, height })
    return {}
  },
  async screenshot({ path, width, height, fullPage }) {
    if (width && height) await page.setViewportSize({ width, height })
    await page.screenshot({ path, fullPage: fullPage ?? false })
    return {}
  },
  // How many elements match, with their texts; and whether the page scrolls sideways.
  async count({ selector }) {
    const texts = await page.locator(selector).allTextContents()
    const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    return { count: texts.length, texts: texts.map(t => t.trim()), wide }
  },
  // The console errors and uncaught exceptions since the last call.
  async errors() {
    return { errors: errors.splice(0) }
  },
  async quit() {
    await browser.close()
    return {}
  },
}

/** What has keyboard focus, described. */
function focused() {
  return page.evaluate(() => {
    const e = document.activeElement
    if (!e) return null
    return {
      tag: e.tagName.toLowerCase(),
      id: e.id || null,
      cls: e.className || null,
      href: e.getAttribute("href"),
      text: (e.innerText ?? "").trim().slice(0, 80),
      doc: e.closest("tr[data-doc]")?.dataset.doc ?? null,
    }
  })
}

/**
 * Runs in the page: the contrast of every element that shows text of its own (its colour, or
 * an SVG text's fill, over the first opaque background behind it, semi-transparent ones
 * composited on the way) against WCAG 2 AA: 4.5:1, or 3:1 for large text (24 px, or 18.67 px
 * bold). Animations are finished first, so a row just highlighted is judged as it rests.
 */
function contrastOfPage() {
  for (const a of document.getAnimations()) a.finish()
  const parse = c => {
    const m = c.match(/rgba?\(([^)]+)\)/)
    if (!m) return null
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number)
    return { r, g, b, a }
  }
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  })
  const background = element => {
    const layers = []
    for (let e = element; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor)
      if (c && c.a > 0) {
        layers.push(c)
        if (c.a >= 1) break
      }
    }
    let colour = { r: 255, g: 255, b: 255, a: 1 }
    for (const layer of layers.reverse()) colour = over(layer, colour)
    return colour
  }
  const channel = v => {
    const s = v / 255
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
  }
  const luminance = c => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)
  const hex = c => "#" + [c.r, c.g, c.b].map(v => Math.round(v).toString(16).padStart(2, "0")).join("")
  const failures = []
  let checked = 0
  for (const element of document.body.querySelectorAll("*")) {
    const own = [...element.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
    if (!own) continue
    const style = getComputedStyle(element)
    if (style.visibility === "hidden" || style.display === "none" || !element.getClientRects().length) continue
    if (element.closest(".visually-hidden, [hidden]")) continue
    const svg = element instanceof SVGElement
    const fg0 = parse(svg ? style.fill : style.color)
    if (!fg0 || fg0.a === 0) continue
    const bg = background(svg ? element.closest("svg") : element)
    const fg = over(fg0, bg)
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((x, y) => y - x)
    const ratio = (hi + 0.05) / (lo + 0.05)
    const size = parseFloat(style.fontSize)
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700)
    const need = large ? 3 : 4.5
    checked++
    if (ratio < need) {
      failures.push({
        text: element.textContent.trim().slice(0, 40),
        fg: hex(fg),
        bg: hex(bg),
        ratio: Math.round(ratio * 100) / 100,
        need,
      })
    }
  }
  return { checked, failures }
}

await serveCommands(commands, { page: () => page, log })
await browser.close()
