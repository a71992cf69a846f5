// A real automerge-repo client, driven with JSON lines on stdin/stdout, so Rust tests can run
// multi-step scenarios against fieldsync with the JS client exactly as apps use it.
//
//   node driver.mjs --url ws://127.0.0.1:PORT/sync --storage DIR
//
// Prints {"event":"ready"} once, then answers each command line with exactly one line:
// {"ok":true,...} or {"ok":false,"error":"..."}. Every command times out (10 s, or
// "timeoutMs"), so a test never hangs on a client. Diagnostics go to stderr.
import { createInterface } from "node:readline"
import { parseArgs } from "node:util"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import * as A from "@automerge/automerge"

const { values: args } = parseArgs({
  options: { url: { type: "string" }, storage: { type: "string" } },
})
if (!args.url || !args.storage) {
  console.error("usage: node driver.mjs --url ws://HOST:PORT/sync --storage DIR")
  process.exit(2)
}

const network = new WebSocketClientAdapter(args.url)
const repo = new Repo({
  network: [network],
  storage: new NodeFSStorageAdapter(args.storage),
})
const handles = new Map()

async function handleFor(url) {
  if (!handles.has(url)) handles.set(url, await repo.find(url))
  return handles.get(url)
}

function at(value, path) {
  for (const key of path) value = value?.[key]
  return value
}

function plain(value) {
  return JSON.parse(JSON.stringify(value))
}

function sameSet(a, b) {
  return a.length === b.length && a.every(x => b.includes(x))
}

/** The heads the server reported it holds, under the storage id it advertised. */
function serverHeads(handle) {
  for (const peerId of repo.peers) {
    const storageId = repo.peerMetadataByPeerId[peerId]?.storageId
    const heads = storageId && handle.getSyncInfo(storageId)?.lastHeads
    if (heads) return heads
  }
  return undefined
}

/** Resolves once check() is truthy, re-checking on every change of the handle. */
function until(handle, check) {
  return new Promise(resolve => {
    const test = () => {
      const result = check()
      if (result) {
        handle.off("change", test)
        handle.off("remote-heads", test)
        resolve(result)
      }
    }
    handle.on("change", test)
    handle.on("remote-heads", test)
    test()
  })
}

const commands = {
  async create({ doc }) {
    const handle = repo.create(doc)
    handles.set(handle.url, handle)
    return { url: handle.url }
  },
  async find({ url }) {
    try {
      const handle = await handleFor(url)
      return { doc: plain(handle.doc()) }
    } catch (e) {
      handles.delete(url)
      if (/unavailable/i.test(String(e?.message ?? e))) throw new Error("unavailable")
      throw e
    }
  },
  async get({ url }) {
    return { doc: plain((await handleFor(url)).doc()) }
  },
  async set({ url, path, value }) {
    const handle = await handleFor(url)
    handle.change(d => {
      let target = d
      for (const key of path.slice(0, -1)) target = target[key]
      target[path.at(-1)] = value
    })
    return {}
  },
  async splice({ url, path, index, delete: del = 0, insert = "" }) {
    const handle = await handleFor(url)
    handle.change(d => A.splice(d, path, index, del, insert))
    return {}
  },
  async heads({ url }) {
    return { heads: (await handleFor(url)).heads() }
  },
  async waitSynced({ url }) {
    const handle = await handleFor(url)
    const heads = await until(handle, () => {
      const theirs = serverHeads(handle)
      return theirs && sameSet(theirs, handle.heads()) ? theirs : undefined
    })
    return { heads }
  },
  async waitFor({ url, path, equals, contains }) {
    const handle = await handleFor(url)
    await until(handle, () => {
      const value = at(handle.doc(), path)
      if (contains !== undefined) return typeof value === "string" && value.includes(contains)
      return JSON.stringify(plain(value ?? null)) === JSON.stringify(equals)
    })
    return {}
  },
  async quit() {
    // A handle that never became ready (an unavailable document) cannot be flushed: that is
    // no reason to fail the shutdown.
    await repo.flush().catch(e => console.error(`flush: ${e?.message ?? e}`))
    await repo.shutdown().catch(e => console.error(`shutdown: ${e?.message ?? e}`))
    return {}
  },
}

function withTimeout(promise, ms) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("timeout")), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

console.log(JSON.stringify({ event: "ready", peerId: repo.peerId }))
const lines = createInterface({ input: process.stdin })
// Commands run one after another, in the order they arrive.
let queue = Promise.resolve()
lines.on("line", line => {
  queue = queue.then(async () => {
    let reply
    let quitting = false
    try {
      const request = JSON.parse(line)
      const run = commands[request.cmd]
      if (!run) throw new Error(`unknown command ${request.cmd}`)
      quitting = request.cmd === "quit"
      reply = { ok: true, ...(await withTimeout(run(request), request.timeoutMs ?? 10000)) }
    } catch (e) {
      reply = { ok: false, error: String(e?.message ?? e) }
    }
    console.log(JSON.stringify(reply))
    if (quitting) process.exit(0)
  })
})
lines.on("close", () => {
  queue.then(() => process.exit(0))
})
