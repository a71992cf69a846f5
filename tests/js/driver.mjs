// A real automerge-repo 2.5.6 client, driven with JSON lines on stdin/stdout, so Rust tests can
// run multi-step scenarios against a sync server with the JS client exactly as apps use it:
// `Repo` + `WebSocketClientAdapter` + `NodeFSStorageAdapter`, default share policy.
//
//   node tests/js/driver.mjs --url ws://127.0.0.1:PORT/sync --storage DIR [--peer-id ID]
//
// The URL is handed to the WebSocket untouched (a query string such as ?token=abc is kept).
// Prints {"event":"ready","peerId":...,"storageId":...} once the repo is set up (not necessarily
// connected), then answers each command line with exactly one line, in order:
// {"ok":true,...} or {"ok":false,"error":"..."}. Every command times out after 10 s, or after
// its "timeoutMs", with {"ok":false,"error":"timeout"}: a test never hangs on a client.
// Diagnostics go to stderr only.
//
// Commands (one JSON object per line):
//   {"cmd":"create","doc":{...}}                      -> {"url":"automerge:..."}
//   {"cmd":"find","url":U}                             -> {"doc":{...}} | error "unavailable"
//       (waits for the server's `peer` handshake first; "offline":true finds without a server)
//   {"cmd":"get","url":U}                              -> {"doc":{...}} (local state, no network wait)
//   Any command naming a document not yet open here opens it like find does.
//   {"cmd":"set","url":U,"path":["a","b"],"value":V}   -> {"heads":[...]}
//   {"cmd":"splice","url":U,"path":["notes"],"index":N,"delete":D,"insert":"text"} -> {"heads"}
//   {"cmd":"heads","url":U}                            -> {"heads":[...]}
//   {"cmd":"waitSynced","url":U}                       -> {"heads":[...],"via":"storageId"|"syncState"}
//       | error "refused: [violations]" when the server sent a fieldsync change-refused notice
//   {"cmd":"waitFor","url":U,"path":[...],"equals":V}  -> {"value":V}
//   {"cmd":"waitFor","url":U,"path":[...],"contains":"substr"}
//   {"cmd":"broadcast","url":U,"message":V}            -> {} (ephemeral message to the server)
//   {"cmd":"waitEphemeral","url":U,"equals":V?}        -> {"senderId":...,"message":V}
//   {"cmd":"peers"}                                    -> {"peers":[{"peerId","peerMetadata"}]}
//   {"cmd":"waitConnected"}                            -> {"peers":N} once a server peer is connected
//   {"cmd":"waitOffered","url":U}                      -> {"doc":{...}} once the server has synced
//       U to this repo unasked (this command does not open U itself)
//   {"cmd":"quit"}                                     -> {} then flush, shut down, exit 0
//
// waitSynced: the server has acknowledged the document when the heads it last reported for it
// equal our heads. With a server that advertised a storageId in its `peer` message, those are
// `handle.getSyncInfo(storageId).lastHeads`, which the Repo updates (and announces with the
// handle's "remote-heads" event) from the sync state's `theirHeads` after each sync message.
// A server without a storageId never gets sync info from the Repo, so for such a peer this driver
// records `syncState.theirHeads` itself from `repo.synchronizer`'s "sync-state" events, which is
// the same data: the heads the server sent in its latest sync message for that document.
import { EventEmitter } from "node:events"
import { createInterface } from "node:readline"
import { parseArgs } from "node:util"
import { Repo, encodeHeads } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import * as A from "@automerge/automerge"

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    storage: { type: "string" },
    "peer-id": { type: "string" },
  },
})
if (!args.url || !args.storage) {
  console.error("usage: node driver.mjs --url ws://HOST:PORT/sync --storage DIR [--peer-id ID]")
  process.exit(2)
}

const log = (...parts) => console.error("[driver]", ...parts)

// The adapter rethrows WebSocket errors other than ECONNREFUSED (a 401/403 on the upgrade,
// ECONNRESET, ...) from an event handler; it then retries every 5 s like in a browser. Keep
// the driver alive and answering: a test expecting a refusal sees timeouts, not a dead pipe.
process.on("uncaughtException", e => log("uncaught:", e?.message ?? e))
process.on("unhandledRejection", e => log("unhandled rejection:", e?.message ?? e))

const peerId = args["peer-id"] ?? `js-driver-${Math.random().toString(36).slice(2, 10)}`
const network = new WebSocketClientAdapter(args.url)
const repo = new Repo({
  peerId,
  network: [network],
  storage: new NodeFSStorageAdapter(args.storage),
})
const handles = new Map() // url -> DocHandle we created or found
const updates = new EventEmitter() // "update" whenever something a wait may depend on changed
updates.setMaxListeners(0)

/** documentId -> peerId -> the heads (bs58check) of that peer's latest sync message. */
const theirHeads = new Map()
repo.synchronizer.on("sync-state", ({ peerId: from, documentId, syncState }) => {
  if (!syncState.theirHeads) return
  if (!theirHeads.has(documentId)) theirHeads.set(documentId, new Map())
  theirHeads.get(documentId).set(from, encodeHeads(syncState.theirHeads))
  updates.emit("update")
})
repo.networkSubsystem.on("peer", ({ peerId: p, peerMetadata }) => {
  log(`connected to ${p}`, JSON.stringify(peerMetadata ?? null))
  updates.emit("update")
})
repo.networkSubsystem.on("message", message => {
  if (message.type === "doc-unavailable") log(`${message.senderId} says ${message.documentId} is unavailable`)
})
repo.networkSubsystem.on("peer-disconnected", ({ peerId: p }) => {
  log(`disconnected from ${p}`)
  updates.emit("update")
})

const ephemeral = new Map() // documentId -> [{senderId, message}] not yet consumed
const watched = new WeakSet()

function watchHandle(handle) {
  if (watched.has(handle)) return handle
  watched.add(handle)
  for (const event of ["change", "remote-heads"]) handle.on(event, () => updates.emit("update"))
  handle.on("ephemeral-message", ({ senderId, message }) => {
    if (!ephemeral.has(handle.documentId)) ephemeral.set(handle.documentId, [])
    ephemeral.get(handle.documentId).push({ senderId, message })
    updates.emit("update")
  })
  return handle
}

async function find(url, { signal, offline = false } = {}) {
  const cached = handles.get(url)
  if (cached?.isReady()) return cached
  // Without a connected server the Repo declares a document it does not hold "unavailable"
  // about 1 s after start (the adapter forces itself ready and no peer has it). Wait for the
  // handshake first, so that "unavailable" means the server said so; "offline": true skips this.
  if (!offline && signal) await until(signal, () => repo.peers.length > 0)
  try {
    const handle = watchHandle(await repo.find(url))
    handles.set(url, handle)
    return handle
  } catch (e) {
    if (/unavailable/i.test(String(e?.message ?? e))) throw new Error("unavailable")
    throw e
  }
}

function plain(value) {
  return value === undefined ? null : JSON.parse(JSON.stringify(value))
}

function at(value, path) {
  for (const key of path ?? []) value = value?.[key]
  return value
}

/** JSON with object keys sorted, so that deep equality ignores key order. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (value && typeof value === "object") {
    const keys = Object.keys(value).sort()
    return `{${keys.map(k => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`
  }
  return JSON.stringify(value ?? null)
}

const sameHeads = (a, b) => a.length === b.length && a.every(h => b.includes(h))

/** What the connected server(s) last reported for this document, per peer. */
function serverHeads(handle) {
  const reports = []
  for (const p of repo.peers) {
    const storageId = repo.peerMetadataByPeerId[p]?.storageId
    if (storageId) {
      const heads = handle.getSyncInfo(storageId)?.lastHeads
      if (heads) reports.push({ heads, via: "storageId" })
    } else {
      const heads = theirHeads.get(handle.documentId)?.get(p)
      if (heads) reports.push({ heads, via: "syncState" })
    }
  }
  return reports
}

/** Resolves with check()'s first truthy result, re-checking on every update; stops on abort. */
function until(signal, check) {
  return new Promise((resolve, reject) => {
    let timer
    const stop = () => {
      updates.off("update", test)
      clearInterval(timer)
      signal.removeEventListener("abort", onAbort)
    }
    const onAbort = () => {
      stop()
      reject(new Error("timeout"))
    }
    function test() {
      let result
      try {
        result = check()
      } catch (e) {
        stop()
        reject(e)
        return
      }
      if (result) {
        stop()
        resolve(result)
      }
    }
    updates.on("update", test)
    timer = setInterval(test, 250) // belt and braces: a missed event costs at most 250 ms
    signal.addEventListener("abort", onAbort)
    test()
  })
}

function setAtPath(doc, path, value) {
  if (!Array.isArray(path) || path.length === 0) throw new Error("path must be a non-empty array")
  let target = doc
  for (const key of path.slice(0, -1)) {
    if (target[key] === undefined || target[key] === null) target[key] = {}
    target = target[key]
  }
  target[path.at(-1)] = value
}

const commands = {
  async create({ doc }) {
    const handle = watchHandle(repo.create(doc ?? {}))
    handles.set(handle.url, handle)
    return { url: handle.url }
  },
  async find({ url, offline }, signal) {
    return { doc: plain((await find(url, { signal, offline })).doc()) }
  },
  async get({ url }, signal) {
    return { doc: plain((await find(url, { signal, offline: true })).doc()) }
  },
  async set({ url, path, value }, signal) {
    const handle = await find(url, { signal })
    handle.change(d => setAtPath(d, path, value))
    return { heads: handle.heads() }
  },
  async splice({ url, path, index, delete: del = 0, insert = "" }, signal) {
    const handle = await find(url, { signal })
    handle.change(d => A.splice(d, path, index, del, insert))
    return { heads: handle.heads() }
  },
  async heads({ url }, signal) {
    return { heads: (await find(url, { signal })).heads() }
  },
  async waitSynced({ url }, signal) {
    const handle = await find(url, { signal })
    return until(signal, () => {
      // fieldsync tells a device that refused its change with an ephemeral notice naming the
      // heads it refused (docs/protocol.md): stop waiting, and say why, as an app would. A
      // notice about older heads is stale: a later change may have repaired the document.
      const current = canonical([...A.getHeads(handle.doc())].sort())
      const refusal = (ephemeral.get(handle.documentId) ?? []).find(
        m =>
          m.message?.fieldsync === "change-refused" &&
          canonical([...(m.message.heads ?? [])].sort()) === current,
      )
      if (refusal) throw new Error(`refused: ${JSON.stringify(plain(refusal.message.violations))}`)
      const ours = handle.heads()
      const report = serverHeads(handle).find(r => sameHeads(r.heads, ours))
      return report && { heads: ours, via: report.via }
    })
  },
  async waitFor({ url, path, equals, contains }, signal) {
    const handle = await find(url, { signal })
    if (contains === undefined && equals === undefined) throw new Error("waitFor needs equals or contains")
    const want = contains === undefined ? canonical(equals) : undefined
    return until(signal, () => {
      const value = plain(at(handle.doc(), path))
      const hit =
        contains !== undefined
          ? typeof value === "string" && value.includes(contains)
          : canonical(value) === want
      return hit && { value }
    })
  },
  async broadcast({ url, message }, signal) {
    const handle = await find(url, { signal })
    handle.broadcast(message ?? null)
    return {}
  },
  async waitEphemeral({ url, equals }, signal) {
    const handle = await find(url, { signal })
    return until(signal, () => {
      const queue = ephemeral.get(handle.documentId) ?? []
      const i = queue.findIndex(m => equals === undefined || canonical(plain(m.message)) === canonical(equals))
      if (i < 0) return undefined
      const [m] = queue.splice(i, 1)
      return { senderId: m.senderId, message: plain(m.message) }
    })
  },
  async waitConnected(_, signal) {
    return until(signal, () => repo.peers.length > 0 && { peers: repo.peers.length })
  },
  async waitOffered({ url }, signal) {
    const documentId = url.replace(/^automerge:/, "")
    return until(signal, () => {
      const handle = repo.handles[documentId]
      return handle?.isReady() && Object.keys(handle.doc() ?? {}).length > 0 && { doc: plain(handle.doc()) }
    })
  },
  async peers() {
    return {
      peers: repo.peers.map(p => ({ peerId: p, peerMetadata: plain(repo.peerMetadataByPeerId[p]) })),
    }
  },
  async quit() {
    await shutdown()
    return {}
  },
}

let shutdownPromise
function shutdown() {
  shutdownPromise ??= (async () => {
    // Flush only ready documents: an unavailable handle has no document to save.
    const ready = Object.values(repo.handles).filter(h => h.isReady()).map(h => h.documentId)
    await repo.flush(ready).catch(e => log(`flush: ${e?.message ?? e}`))
    try {
      repo.networkSubsystem.disconnect()
    } catch (e) {
      log(`disconnect: ${e?.message ?? e}`)
    }
  })()
  return shutdownPromise
}

async function run(request) {
  const run = commands[request?.cmd]
  if (!run) throw new Error(`unknown command ${JSON.stringify(request?.cmd)}`)
  const ms = Number.isFinite(request.timeoutMs) ? request.timeoutMs : 10_000
  const controller = new AbortController()
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      controller.abort()
      reject(new Error("timeout"))
    }, ms)
  })
  try {
    return await Promise.race([run(request, controller.signal), timeout])
  } finally {
    clearTimeout(timer)
  }
}

function reply(object) {
  return new Promise(resolve => process.stdout.write(JSON.stringify(object) + "\n", resolve))
}

// Not repo.storageId(): on a fresh directory a second call races the Repo's own and mints
// (and saves) a different UUID. The advertised one is in the network subsystem's peer metadata.
const { storageId } = await repo.networkSubsystem.peerMetadata
await reply({ event: "ready", peerId, storageId })

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
let queue = Promise.resolve() // commands run one after another, in the order they arrive
lines.on("line", line => {
  if (!line.trim()) return
  queue = queue.then(async () => {
    let request
    let answer
    try {
      request = JSON.parse(line)
      answer = { ok: true, ...(await run(request)) }
    } catch (e) {
      answer = { ok: false, error: String(e?.message ?? e) }
    }
    await reply(answer)
    if (request?.cmd === "quit") process.exit(0)
  })
})
lines.on("close", () => {
  queue.then(shutdown).then(() => process.exit(0))
})
