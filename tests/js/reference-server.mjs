// The reference JS sync server: automerge-repo 2.5.6 with NodeFS storage behind the WebSocket
// server adapter, configured like the automerge-repo sync server (never announces documents), for
// side-by-side benchmarks with fieldsync and for capturing real wire bytes.
//
//   node tests/js/reference-server.mjs --port 0 --storage DIR [--remote-heads-gossip]
//   node tests/js/reference-server.mjs --port 0 --no-storage
//
// Listens on 127.0.0.1 and serves ws://127.0.0.1:N/sync (a query string is accepted, any other
// path gets HTTP 400). Prints {"event":"listening","port":N,"peerId":...,"storageId":...} on stdout
// when ready. Stops on SIGTERM/SIGINT (flushes storage, exits 0). --remote-heads-gossip turns on
// `enableRemoteHeadsGossiping` (off by default, as in the stock server); capture.mjs uses it to
// provoke remote-heads-changed messages. --no-storage runs an in-memory server, which advertises
// peerMetadata {storageId: undefined, isEphemeral: true} (to test clients against a server
// without a storage id).
import { parseArgs } from "node:util"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    storage: { type: "string" },
    "peer-id": { type: "string" },
    "remote-heads-gossip": { type: "boolean", default: false },
    "no-storage": { type: "boolean", default: false },
  },
})
if (!args.storage === !args["no-storage"]) {
  console.error("usage: node reference-server.mjs --port N (--storage DIR | --no-storage) [--remote-heads-gossip]")
  process.exit(2)
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(args.port), path: "/sync" })
const peerId = args["peer-id"] ?? `reference-server-${process.pid}`
const repo = new Repo({
  peerId,
  network: [new NodeWSServerAdapter(wss)],
  storage: args.storage ? new NodeFSStorageAdapter(args.storage) : undefined,
  // A sync server never announces documents; it answers what clients ask for.
  sharePolicy: async () => false,
  enableRemoteHeadsGossiping: args["remote-heads-gossip"],
})

wss.on("listening", async () => {
  // Not repo.storageId(): on a fresh directory each call races the first one and mints (and
  // saves) another UUID. The advertised one is in the network subsystem's peer metadata.
  const { storageId } = await repo.networkSubsystem.peerMetadata
  console.log(JSON.stringify({ event: "listening", port: wss.address().port, peerId, storageId }))
})
wss.on("error", e => {
  console.error(`reference-server: ${e.message}`)
  process.exit(1)
})

let stopping = false
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    if (stopping) return
    stopping = true
    // repo.shutdown() would flush every handle and throw on the unavailable ones: flush the
    // ready ones only.
    repo.networkSubsystem.disconnect()
    const ready = Object.values(repo.handles).filter(h => h.isReady()).map(h => h.documentId)
    await repo.flush(ready).catch(e => console.error(`reference-server: flush: ${e?.message ?? e}`))
    wss.close()
    process.exit(0)
  })
}
