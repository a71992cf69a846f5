// Captures the real bytes that automerge-repo 2.5.6 clients and the reference JS server exchange,
// as test vectors for the Rust decoder.
//
//   node tests/js/capture.mjs [--out protocol/tests/vectors]
//
// Starts two reference servers (reference-server.mjs: one with NodeFS storage and remote-heads
// gossiping, one in memory), puts a recording WebSocket proxy on 127.0.0.1 in front of them
// (/sync -> the first, /memory/sync -> the second), and runs a create / find / edit / ephemeral /
// unavailable / remote-heads scenario with real `Repo`s. Every binary frame in both directions is
// recorded; the first frame of each message type is written as lowercase hex (one frame, one line)
// to <out>/js-<name>.hex, with a human-readable <out>/js-<name>.json next to it (the direction, the
// CBOR in extended diagnostic notation, the cbor-x decoding, and the decoded automerge sync
// message). Names: js-<type>.hex is the JS client's frame for client-sent types and the server's
// for server-only types; js-<type>-from-server.hex is the server's frame of a type both send;
// protocol/tests/vectors/README.md lists them all. Exits non-zero if one is missing.
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { WebSocket, WebSocketServer } from "ws"
import { decode as cborDecode, encode as cborEncode } from "cbor-x"
import * as A from "@automerge/automerge"
import { Repo, encodeHeads } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: { out: { type: "string", default: join(here, "../../protocol/tests/vectors") } },
})
const out = resolve(args.out)
const work = mkdtempSync(join(tmpdir(), "fieldsync-capture-"))
const children = []
const log = (...parts) => console.error("[capture]", ...parts)

const overall = setTimeout(() => {
  log("time limit (60 s) reached")
  finish(1)
}, 60_000)

function finish(code) {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM")
  rmSync(work, { recursive: true, force: true })
  clearTimeout(overall)
  process.exit(code)
}

async function until(what, check, ms = 10_000) {
  const t0 = Date.now()
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 20))
  }
}

function startServer(label, extra) {
  const child = spawn(process.execPath, [join(here, "reference-server.mjs"), "--port", "0", ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  children.push(child)
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", line => resolve(JSON.parse(line)))
    child.once("exit", code => reject(new Error(`${label} exited with ${code}`)))
  })
}

// ---- the two reference servers and the recording proxy ----
const stored = await startServer("server", [
  "--storage", join(work, "server"), "--remote-heads-gossip", "--peer-id", "reference-server",
])
const memory = await startServer("memory-server", ["--no-storage", "--peer-id", "reference-memory-server"])

/** {conn, dir: "client->server" | "server->client", upstream, bytes: Buffer} in arrival order */
const frames = []
let connections = 0
const proxy = new WebSocketServer({ host: "127.0.0.1", port: 0 })
await new Promise(r => proxy.on("listening", r))
proxy.on("connection", (client, req) => {
  const conn = ++connections
  const toMemory = req.url.startsWith("/memory/")
  const port = toMemory ? memory.port : stored.port
  const path = toMemory ? req.url.slice("/memory".length) : req.url
  const upstreamName = toMemory ? "memory" : "stored"
  const upstream = new WebSocket(`ws://127.0.0.1:${port}${path}`)
  const pending = []
  const record = (dir, data, isBinary) => {
    if (!isBinary) log(`conn ${conn}: a TEXT frame ${dir}`)
    frames.push({ conn, dir, upstream: upstreamName, binary: isBinary, bytes: Buffer.from(data) })
  }
  client.on("message", (data, isBinary) => {
    record("client->server", data, isBinary)
    if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary })
    else pending.push([data, isBinary])
  })
  upstream.on("open", () => {
    for (const [data, isBinary] of pending.splice(0)) upstream.send(data, { binary: isBinary })
  })
  upstream.on("message", (data, isBinary) => {
    record("server->client", data, isBinary)
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary })
  })
  upstream.on("close", () => client.close())
  upstream.on("error", e => log(`upstream ${conn}: ${e.message}`))
  client.on("close", () => upstream.close())
  client.on("error", e => log(`client ${conn}: ${e.message}`))
})
const proxyPort = proxy.address().port
const storedUrl = `ws://127.0.0.1:${proxyPort}/sync`
const memoryUrl = `ws://127.0.0.1:${proxyPort}/memory/sync`

function client(peerId, url, { storage = true, gossip = false } = {}) {
  return new Repo({
    peerId,
    network: [new WebSocketClientAdapter(url)],
    storage: storage ? new NodeFSStorageAdapter(join(work, peerId)) : undefined,
    enableRemoteHeadsGossiping: gossip,
  })
}

// ---- the scenario ----
const repos = []
try {
  // A and B: ordinary clients with storage; remote-heads gossiping on so that A can subscribe to
  // B's storage id and the server tells A what B has (remote-subscription-change, remote-heads-changed).
  const a = client("client-a", storedUrl, { gossip: true })
  const b = client("client-b", storedUrl, { gossip: true })
  repos.push(a, b)
  await until("A and B connected", () => a.peers.length === 1 && b.peers.length === 1)
  await new Promise(r => setTimeout(r, 100)) // the share policy promise marks the server generous
  const serverStorageId = a.getStorageIdOfPeer("reference-server")
  const bStorageId = (await b.networkSubsystem.peerMetadata).storageId
  a.subscribeToRemotes([bStorageId])

  const handle = a.create({ type: "visit", notes: "Kunjungan pertama.", attendees: 2, actions: [] })
  await until("the server has A's document", () => {
    const heads = handle.getSyncInfo(serverStorageId)?.lastHeads
    return heads && heads.join() === handle.heads().join()
  })

  const bHandle = await b.find(handle.url)
  await until("A hears B's heads through the server", () => {
    const heads = handle.getSyncInfo(bStorageId)?.lastHeads
    return heads && heads.join() === handle.heads().join()
  })

  handle.change(d => A.splice(d, ["notes"], 0, 0, "[A] "))
  await until("B has A's edit", () => bHandle.doc().notes.startsWith("[A] "))

  const received = []
  bHandle.on("ephemeral-message", m => received.push(m))
  handle.broadcast({ cursor: 4 })
  await until("B receives A's ephemeral message", () => received.length > 0)

  await a.find("automerge:PLUD22EtHV6JRMaH8ZvRwb1ejFa").then(
    () => { throw new Error("a never-created document was found") },
    e => log(`never-created document: ${e.message}`),
  )

  // C: a client without storage (peerMetadata.storageId undefined, isEphemeral true).
  const c = client("client-c-no-storage", storedUrl, { storage: false })
  repos.push(c)
  await until("C connected", () => c.peers.length === 1)

  // D: a client with storage against the in-memory server (its peer message has no storageId).
  const d = client("client-d", memoryUrl)
  repos.push(d)
  await until("D connected", () => d.peers.length === 1)

  // The reference server's answer to a join offering only an unknown protocol version. The join
  // is hand-made (not a JS client frame): it is recorded but not written out.
  const raw = new WebSocket(storedUrl)
  await new Promise((resolve, reject) => {
    raw.on("open", () =>
      raw.send(cborEncode({ type: "join", senderId: "raw-client", peerMetadata: {}, supportedProtocolVersions: ["99"] })),
    )
    raw.on("close", resolve)
    raw.on("error", reject)
  })
} catch (e) {
  log(`scenario failed: ${e.stack ?? e}`)
  finish(1)
}
for (const repo of repos) repo.networkSubsystem.disconnect()
await new Promise(r => setTimeout(r, 200))

// ---- pick and write the vectors ----
const joinOf = conn => frames.find(f => f.conn === conn && f.dir === "client->server")
const peerIdOfConn = conn => cborDecode(joinOf(conn).bytes).senderId
const pick = (name, test, producer) => {
  const frame = frames.find(f => f.binary && test(f, cborDecode(f.bytes)))
  return frame ? [{ name, frame, producer }] : []
}
const fromClient = (type, conn) => (f, m) => f.dir === "client->server" && m.type === type && (!conn || conn(f))
const fromServer = (type, conn) => (f, m) => f.dir === "server->client" && m.type === type && (!conn || conn(f))
const peerIs = id => f => peerIdOfConn(f.conn) === id
const storedJs = "the reference JS server (automerge-repo 2.5.6, NodeFS storage)"
const memoryJs = "the reference JS server without storage (automerge-repo 2.5.6)"
const jsClient = "the JS client (automerge-repo 2.5.6 + WebSocketClientAdapter)"

const vectors = [
  ...pick("join", fromClient("join", peerIs("client-a")), `${jsClient} with NodeFS storage`),
  ...pick("join-no-storage", fromClient("join", peerIs("client-c-no-storage")), `${jsClient} without storage`),
  ...pick("peer", fromServer("peer", peerIs("client-a")), storedJs),
  ...pick("peer-no-storage", fromServer("peer", peerIs("client-d")), memoryJs),
  ...pick("sync", fromClient("sync"), jsClient),
  ...pick("sync-with-changes", (f, m) => fromClient("sync")(f, m) && A.decodeSyncMessage(m.data).changes.length > 0, jsClient),
  ...pick("sync-from-server", fromServer("sync"), storedJs),
  ...pick("request", fromClient("request"), jsClient),
  ...pick("doc-unavailable", fromServer("doc-unavailable"), storedJs),
  ...pick("ephemeral", fromClient("ephemeral"), `${jsClient} (DocHandle.broadcast)`),
  ...pick("ephemeral-from-server", fromServer("ephemeral"), `${storedJs}, relaying`),
  ...pick("ephemeral-echo", (f, m) => fromClient("ephemeral")(f, m) && m.senderId !== peerIdOfConn(f.conn),
    `${jsClient}, re-broadcasting an ephemeral message it received (senderId is the original sender, not this connection's peer)`),
  ...pick("remote-subscription-change", fromClient("remote-subscription-change"), `${jsClient} with enableRemoteHeadsGossiping (Repo.subscribeToRemotes)`),
  // The first remote-heads-changed reports B's empty heads (B had just asked for the document):
  // take the first one with heads.
  ...pick("remote-heads-changed",
    (f, m) => fromServer("remote-heads-changed")(f, m) && Object.values(m.newHeads).some(h => h.heads.length > 0),
    `${storedJs} with enableRemoteHeadsGossiping`),
  ...pick("error", fromServer("error"), `${storedJs}, answering a join with supportedProtocolVersions ["99"]`),
]

const seen = new Map()
for (const f of frames) {
  const type = f.binary ? cborDecode(f.bytes).type : "(text)"
  const key = `${f.dir} ${type}`
  seen.set(key, (seen.get(key) ?? 0) + 1)
}
log(`${frames.length} frames over ${connections} connections:`)
for (const [key, n] of seen) log(`  ${key}: ${n}`)

const expected = [
  "join", "join-no-storage", "peer", "peer-no-storage", "sync", "sync-with-changes", "sync-from-server",
  "request", "doc-unavailable", "ephemeral", "ephemeral-from-server", "ephemeral-echo", "remote-subscription-change",
  "remote-heads-changed", "error",
]
const missing = expected.filter(n => !vectors.some(v => v.name === n))

mkdirSync(out, { recursive: true })
for (const { name, frame, producer } of vectors) {
  const hex = frame.bytes.toString("hex")
  writeFileSync(join(out, `js-${name}.hex`), hex + "\n")
  writeFileSync(join(out, `js-${name}.json`), JSON.stringify(render(frame, producer), null, 2) + "\n")
  log(`wrote js-${name}.hex (${frame.bytes.length} bytes, ${frame.dir})`)
}
if (missing.length) {
  log(`MISSING: ${missing.join(", ")}`)
  finish(1)
}
finish(0)

// ---- rendering ----
function render(frame, producer) {
  const message = cborDecode(frame.bytes)
  const rendered = {
    direction: frame.dir,
    producer,
    bytes: frame.bytes.length,
    diagnostic: diagnose(frame.bytes),
    decoded: toJson(message),
  }
  if ((message.type === "sync" || message.type === "request") && message.data) {
    rendered.dataAsSyncMessage = syncSummary(message.data)
  }
  if (message.type === "ephemeral" && message.data) rendered.dataAsCbor = toJson(cborDecode(message.data))
  return rendered
}

/** cbor-x's decoding as JSON: byte strings as {"$bytes": hex}, undefined as {"$undefined": true}. */
function toJson(value) {
  if (value === undefined) return { $undefined: true }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("hex") }
  if (Array.isArray(value)) return value.map(toJson)
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  }
  return value
}

function syncSummary(data) {
  const m = A.decodeSyncMessage(data)
  return {
    heads: encodeHeads(m.heads),
    need: encodeHeads(m.need),
    have: m.have.map(h => ({ lastSync: encodeHeads(h.lastSync), bloomBytes: h.bloom.length })),
    changes: m.changes.length,
    changeBytes: m.changes.reduce((n, c) => n + c.length, 0),
  }
}

/**
 * CBOR extended diagnostic notation (RFC 8610, appendix G): an encoding indicator (_0 one-byte,
 * _1 two-byte, _2 four-byte, _3 eight-byte argument) is written where the argument is longer than
 * needed, and always on floats; byte strings longer than 24 bytes are abbreviated.
 */
function diagnose(bytes) {
  let pos = 0
  const indicator = { 24: "_0", 25: "_1", 26: "_2", 27: "_3" }
  function head() {
    const ib = bytes[pos++]
    const major = ib >> 5
    const ai = ib & 31
    let value = ai
    let size = 0
    if (ai >= 24 && ai <= 27) {
      size = 1 << (ai - 24)
      value = 0n
      for (let i = 0; i < size; i++) value = (value << 8n) | BigInt(bytes[pos++])
      value = Number(value)
    }
    const minimal = size === 0 || value >= [24, 256, 65536, 2 ** 32][size - 1]
    return { major, ai, value, mark: minimal || major === 7 ? "" : indicator[ai], size }
  }
  function item() {
    const start = pos
    const { major, ai, value, mark, size } = head()
    if (ai === 31) throw new Error("indefinite lengths are not rendered")
    switch (major) {
      case 0: return `${value}${mark}`
      case 1: return `${-1 - value}${mark}`
      case 2: {
        const b = bytes.subarray(pos, pos + value)
        pos += value
        const hex = Buffer.from(b).toString("hex")
        const text = value > 24 ? `h'${hex.slice(0, 48)}…' / ${value} bytes /` : `h'${hex}'`
        return mark ? text.replace("h'", `${mark} h'`) : text
      }
      case 3: {
        const s = Buffer.from(bytes.subarray(pos, pos + value)).toString("utf8")
        pos += value
        return `${JSON.stringify(s)}${mark}`
      }
      case 4: {
        const items = []
        for (let i = 0; i < value; i++) items.push(item())
        return `[${mark ? `${mark} ` : ""}${items.join(", ")}]`
      }
      case 5: {
        const entries = []
        for (let i = 0; i < value; i++) entries.push(`${item()}: ${item()}`)
        return `{${mark ? `${mark} ` : ""}${entries.join(", ")}}`
      }
      case 6: return `${value}${mark}(${item()})`
      case 7: {
        if (size === 0) return { 20: "false", 21: "true", 22: "null", 23: "undefined" }[ai] ?? `simple(${ai})`
        const view = new DataView(bytes.buffer, bytes.byteOffset + start + 1, size)
        const f = size === 2 ? NaN : size === 4 ? view.getFloat32(0) : view.getFloat64(0)
        return `${Number.isInteger(f) ? f.toFixed(1) : f}${indicator[ai]}`
      }
    }
    throw new Error(`bad CBOR at ${start}`)
  }
  const text = item()
  if (pos !== bytes.length) throw new Error(`${bytes.length - pos} trailing bytes`)
  return text
}
