// Self-test of the JS side: two driver.mjs clients (separate storage) against the reference JS
// server, or against any server given with --url (e.g. a running fieldsync).
//
//   node tests/js/selftest.mjs [--url ws://127.0.0.1:PORT/sync]
//
// Prints one line per step and "N passed, N failed"; exits non-zero on any failure. Every wait is
// bounded (driver command timeouts, plus an overall 120 s limit).
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, dirname } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import assert from "node:assert/strict"

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({ options: { url: { type: "string" } } })
const work = mkdtempSync(join(tmpdir(), "fieldsync-js-selftest-"))
const children = []
let passed = 0
let failed = 0

const overall = setTimeout(() => {
  console.error("selftest: overall time limit (120 s) reached")
  cleanup(1)
}, 120_000)

function cleanup(code) {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
  rmSync(work, { recursive: true, force: true })
  clearTimeout(overall)
  process.exit(code)
}

/** Spawns a node script and yields its stdout lines through next(ms). */
function start(script, scriptArgs, label) {
  const child = spawn(process.execPath, [join(here, script), ...scriptArgs], {
    stdio: ["pipe", "pipe", "pipe"],
  })
  children.push(child)
  const lines = []
  const waiters = []
  createInterface({ input: child.stdout }).on("line", line => {
    const waiter = waiters.shift()
    if (waiter) waiter(line)
    else lines.push(line)
  })
  createInterface({ input: child.stderr }).on("line", line => {
    if (process.env.SELFTEST_VERBOSE) console.error(`  [${label}] ${line}`)
  })
  const next = (ms = 30_000) =>
    new Promise((resolve, reject) => {
      if (lines.length) return resolve(lines.shift())
      const timer = setTimeout(() => reject(new Error(`${label}: no output within ${ms} ms`)), ms)
      waiters.push(line => {
        clearTimeout(timer)
        resolve(line)
      })
    })
  return { child, next }
}

async function driver(url, label) {
  const { child, next } = start("driver.mjs", ["--url", url, "--storage", join(work, label)], label)
  const ready = JSON.parse(await next())
  assert.equal(ready.event, "ready")
  const send = async command => {
    child.stdin.write(JSON.stringify(command) + "\n")
    return JSON.parse(await next())
  }
  const ok = async command => {
    const reply = await send(command)
    assert.equal(reply.ok, true, `${label}: ${JSON.stringify(command)} -> ${JSON.stringify(reply)}`)
    return reply
  }
  const exited = new Promise(resolve => child.on("exit", code => resolve(code)))
  return { label, child, send, ok, exited, ready }
}

async function step(name, body) {
  const t0 = Date.now()
  try {
    const note = await body()
    passed++
    console.log(`ok   ${name} (${Date.now() - t0} ms)${note ? `: ${note}` : ""}`)
  } catch (e) {
    failed++
    console.log(`FAIL ${name} (${Date.now() - t0} ms): ${e?.message ?? e}`)
  }
}

let url = args.url
if (!url) {
  const server = start("reference-server.mjs", ["--port", "0", "--storage", join(work, "server")], "server")
  const listening = JSON.parse(await server.next(15_000))
  assert.equal(listening.event, "listening")
  url = `ws://127.0.0.1:${listening.port}/sync?token=selftest` // a query string must pass through
  console.log(`reference server on ${url}`)
}

const a = await driver(url, "a")
const b = await driver(url, "b")
let docUrl
const notes = "Kunjungan pertama."

await step("A creates a document and the server acknowledges it", async () => {
  docUrl = (await a.ok({ cmd: "create", doc: { type: "visit", notes, actions: [] } })).url
  assert.match(docUrl, /^automerge:[1-9A-HJ-NP-Za-km-z]+$/)
  const synced = await a.ok({ cmd: "waitSynced", url: docUrl })
  const { heads } = await a.ok({ cmd: "heads", url: docUrl })
  assert.deepEqual(synced.heads, heads)
  return `via ${synced.via}`
})

await step("B finds it by URL", async () => {
  const { doc } = await b.ok({ cmd: "find", url: docUrl })
  assert.deepEqual(doc, { type: "visit", notes, actions: [] })
})

await step("concurrent splices and sets converge on both clients", async () => {
  await a.ok({ cmd: "splice", url: docUrl, path: ["notes"], index: 0, insert: "[A] " })
  await b.ok({ cmd: "splice", url: docUrl, path: ["notes"], index: notes.length, insert: " [B]" })
  await a.ok({ cmd: "set", url: docUrl, path: ["attendees"], value: 3 })
  await b.ok({ cmd: "set", url: docUrl, path: ["followUp", "on"], value: "2026-12-01" })
  const expected = `[A] ${notes} [B]`
  for (const c of [a, b]) {
    await c.ok({ cmd: "waitFor", url: docUrl, path: ["notes"], equals: expected })
    await c.ok({ cmd: "waitFor", url: docUrl, path: ["notes"], contains: "[B]" })
    await c.ok({ cmd: "waitFor", url: docUrl, path: ["attendees"], equals: 3 })
    await c.ok({ cmd: "waitFor", url: docUrl, path: ["followUp"], equals: { on: "2026-12-01" } })
  }
  const ha = (await a.ok({ cmd: "heads", url: docUrl })).heads.sort()
  const hb = (await b.ok({ cmd: "heads", url: docUrl })).heads.sort()
  assert.deepEqual(ha, hb)
  const da = (await a.ok({ cmd: "get", url: docUrl })).doc
  const db = (await b.ok({ cmd: "get", url: docUrl })).doc
  assert.deepEqual(da, db)
  await a.ok({ cmd: "waitSynced", url: docUrl })
  await b.ok({ cmd: "waitSynced", url: docUrl })
})

await step("an ephemeral broadcast from B reaches A through the server", async () => {
  await b.ok({ cmd: "broadcast", url: docUrl, message: { cursor: 7 } })
  const got = await a.send({ cmd: "waitEphemeral", url: docUrl, equals: { cursor: 7 }, timeoutMs: 3000 })
  if (!got.ok) return `not relayed (${got.error})`
  assert.equal(got.senderId, b.ready.peerId)
  return "relayed"
})

await step("find of a never-created URL answers unavailable, without hanging", async () => {
  const t0 = Date.now()
  const reply = await a.send({ cmd: "find", url: "automerge:PLUD22EtHV6JRMaH8ZvRwb1ejFa", timeoutMs: 20_000 })
  assert.deepEqual(reply, { ok: false, error: "unavailable" })
  return `after ${Date.now() - t0} ms`
})

await step("bad commands fail cleanly and waits time out", async () => {
  assert.equal((await a.send({ cmd: "nope" })).ok, false)
  assert.equal((await a.send({ cmd: "get" })).ok, false)
  const t = await a.send({ cmd: "waitFor", url: docUrl, path: ["attendees"], equals: 99, timeoutMs: 300 })
  assert.deepEqual(t, { ok: false, error: "timeout" })
  assert.equal((await a.ok({ cmd: "peers" })).peers.length, 1)
})

await step("quit flushes, answers and exits 0; a restarted client reads its storage", async () => {
  await a.ok({ cmd: "quit" })
  assert.equal(await a.exited, 0)
  const again = await driver(url, "a") // same storage directory
  const { doc } = await again.ok({ cmd: "get", url: docUrl })
  assert.equal(doc.attendees, 3)
  await again.ok({ cmd: "quit" })
  assert.equal(await again.exited, 0)
})

await step("stdin EOF shuts a driver down with exit 0", async () => {
  b.child.stdin.end()
  assert.equal(await b.exited, 0)
})

await step("with no server listening, find times out (offline: unavailable after ~1 s)", async () => {
  const lone = await driver("ws://127.0.0.1:9/sync", "lone")
  const t0 = Date.now()
  assert.deepEqual(await lone.send({ cmd: "find", url: docUrl, timeoutMs: 1500 }), { ok: false, error: "timeout" })
  const t1 = Date.now()
  const offline = await lone.send({ cmd: "find", url: docUrl, offline: true, timeoutMs: 5000 })
  assert.deepEqual(offline, { ok: false, error: "unavailable" })
  await lone.ok({ cmd: "quit" })
  return `timeout after ${t1 - t0} ms; offline find: unavailable after ${Date.now() - t1} ms`
})

if (!args.url) {
  await step("waitSynced falls back to the sync state against a server without a storageId", async () => {
    const server = start("reference-server.mjs", ["--port", "0", "--no-storage"], "memory-server")
    const { port } = JSON.parse(await server.next(15_000))
    const c = await driver(`ws://127.0.0.1:${port}/sync`, "c")
    const { url: u } = await c.ok({ cmd: "create", doc: { n: 1 } })
    const first = await c.ok({ cmd: "waitSynced", url: u })
    assert.equal(first.via, "syncState")
    await c.ok({ cmd: "set", url: u, path: ["n"], value: 2 })
    const second = await c.ok({ cmd: "waitSynced", url: u })
    assert.notDeepEqual(second.heads, first.heads)
    const { peers } = await c.ok({ cmd: "peers" })
    await c.ok({ cmd: "quit" })
    server.child.kill("SIGTERM")
    return `server peerMetadata ${JSON.stringify(peers[0]?.peerMetadata)}`
  })
}

console.log(`${passed} passed, ${failed} failed`)
cleanup(failed === 0 ? 0 : 1)
