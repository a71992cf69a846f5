// The reference JS sync server (automerge-repo + NodeFS storage behind the WebSocket server
// adapter), for side-by-side benchmarks with fieldsync under the same load.
//
//   node reference-server.mjs --port 0 --storage DIR
//
// Prints {"event":"listening","port":N} when ready; serves ws://127.0.0.1:N/sync.
import { parseArgs } from "node:util"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const { values: args } = parseArgs({
  options: { port: { type: "string", default: "0" }, storage: { type: "string" } },
})
if (!args.storage) {
  console.error("usage: node reference-server.mjs --port N --storage DIR")
  process.exit(2)
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(args.port), path: "/sync" })
const repo = new Repo({
  network: [new WebSocketServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(args.storage),
  // A sync server never announces documents; it answers what clients ask for.
  sharePolicy: async () => false,
})

wss.on("listening", () => {
  console.log(JSON.stringify({ event: "listening", port: wss.address().port }))
})

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    await repo.shutdown()
    wss.close()
    process.exit(0)
  })
}
