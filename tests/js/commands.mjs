// What the browser drivers (browser.mjs, app-browser.mjs, phone.mjs, workbench.mjs) share: how
// Chromium is started, signing in, and the JSON-lines loop, which says `{"event":"ready"}`,
// then answers each request line `{"cmd": …}` on stdin with one line, `{"ok": true, …}` or
// `{"ok": false, "error": …}`; `quit` ends the process.
import { createInterface } from "node:readline"

/**
 * Launch options for Debian's Chromium, headless: no sandbox (root in a container has none to
 * use) and quiet, since the network is closed.
 * @param path the executable (`--chromium`), else FIELDSYNC_CHROMIUM, else /usr/bin/chromium
 * @param extraArgs more command-line switches
 */
export function chromiumOptions(path, extraArgs = []) {
  return {
    executablePath: path ?? process.env.FIELDSYNC_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  }
}

/** Signs in on the web's form at `base`; throws if the server sends the page back. */
export async function signIn(page, base, user, password) {
  await page.goto(new URL("/login", base).toString())
  await page.fill("#username", user)
  await page.fill("#password", password)
  await Promise.all([page.waitForLoadState("load"), page.click("form button[type=submit]")])
  if (new URL(page.url()).pathname === "/login") throw new Error("sign-in failed")
  return { url: page.url() }
}

/**
 * @param commands name → async (request, timeoutMs) => result object
 * @param page () => the Playwright page the commands act on (its default timeout is set
 *   from each request's `timeoutMs`, 15 s when absent)
 * @param log where a failed command is described (kept by the test, shown if it fails)
 * @param onFailure what to do besides, when a command failed (e.g. a screenshot)
 */
export async function serveCommands(commands, { page, log, onFailure = async () => {} }) {
  console.log(JSON.stringify({ event: "ready" }))
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue
    let request
    try {
      request = JSON.parse(line)
    } catch {
      console.log(JSON.stringify({ ok: false, error: "not JSON" }))
      continue
    }
    const run = commands[request.cmd]
    const timeout = request.timeoutMs ?? 15000
    page().setDefaultTimeout(timeout)
    try {
      if (!run) throw new Error(`unknown command ${request.cmd}`)
      const result = await run(request, timeout)
      console.log(JSON.stringify({ ok: true, ...result }))
    } catch (e) {
      log(`${request.cmd} failed at ${page().url()}: ${e?.message ?? e}`)
      await onFailure(request).catch(() => {})
      console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e).split("\n")[0] }))
    }
    if (request.cmd === "quit") process.exit(0)
  }
}
