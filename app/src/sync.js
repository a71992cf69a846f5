// The phone's replica: automerge-repo with IndexedDB storage and one WebSocket to /sync, and
// what the app tells people about it: online or not, the last sync, and per record whether it
// waits to be sent, is stored on the server, or was refused.
//
// "Stored on the server" means the server's heads for the document cover the local heads.
// fieldsync answers a change only after storing it durably (ARCHITECTURE.md: acknowledged
// means stored), so its heads, which automerge-repo reports per storage id as `remote-heads`,
// are an acknowledgement. The server's storage id comes from its `peer` handshake. What was
// acknowledged is also kept in localStorage, so it is still shown after a restart offline.

import { Repo, Automerge, initializeWasm, decodeHeads } from "@automerge/automerge-repo/slim"
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import wasmUrl from "@automerge/automerge/automerge.wasm"

export const DATABASE = "fieldsync"
const ACKED = "fieldsync.acked"
const REFUSED = "fieldsync.refused"
const LAST_SYNC = "fieldsync.lastSync"

const load = key => {
  try {
    return JSON.parse(localStorage.getItem(key) || "{}")
  } catch {
    return {}
  }
}
const save = (key, value) => localStorage.setItem(key, JSON.stringify(value))

/**
 * automerge-repo 2.5.6 throws when it sends on a socket that is not open (fixed upstream
 * after that release, #627): on a flaky link that would surface as an uncaught error. A
 * message that cannot go now is dropped; the sync protocol sends what is missing again after
 * the reconnect.
 */
class SafeWebSocketAdapter extends WebSocketClientAdapter {
  send(message) {
    try {
      super.send(message)
    } catch (e) {
      console.debug("fieldsync: not sent, the socket is not open", e?.message)
    }
  }
}

let wasmReady
export function loadAutomerge() {
  wasmReady ||= initializeWasm(fetch(wasmUrl))
  return wasmReady
}

export class Replica extends EventTarget {
  constructor() {
    super()
    this.serverPeer = null
    this.serverStorage = null
    this.acked = load(ACKED)
    this.refused = load(REFUSED)
    // The server's last heads per document, kept to judge again once what they name arrives.
    this.serverHeads = new Map()
    /** The documents whose server heads were heard on this page's connection (not recalled
     * from an earlier one). */
    this.heard = new Set()
    this.lastSync = Number(localStorage.getItem(LAST_SYNC)) || null
    this.watched = new Set()
    /** Resolves once `repo` exists. The caseload is listed from its summaries before that:
     * Automerge's wasm takes a while to compile on a slow phone, and the list needs none of it. */
    this.ready = new Promise(resolve => (this.#started = resolve))
  }

  #started

  async start() {
    await loadAutomerge()
    const scheme = location.protocol === "https:" ? "wss" : "ws"
    this.network = new SafeWebSocketAdapter(`${scheme}://${location.host}/sync`, 5000)
    this.repo = new Repo({
      storage: new IndexedDBStorageAdapter(DATABASE),
      network: [this.network],
    })
    this.repo.networkSubsystem.on("peer", ({ peerId, peerMetadata }) => {
      this.serverPeer = peerId
      this.serverStorage = peerMetadata?.storageId || null
      this.#changed()
    })
    this.repo.networkSubsystem.on("peer-disconnected", ({ peerId }) => {
      if (peerId === this.serverPeer) {
        this.serverPeer = null
        this.heard.clear()
      }
      this.#changed()
    })
    // The adapter's own retry loop was seen to stop after the network came back (its timers
    // are known to misbehave in 2.5.6, #690): when the signal returns, and every 10 s while
    // there is no socket, open a new one.
    addEventListener("online", () => this.#reconnect())
    // A socket outlives the signal for a long time before TCP notices: when the phone says
    // it is offline, believe it, so the app says so too and reconnects cleanly later. Closing
    // an open socket without a network does not end it until TCP gives up (its close frame
    // cannot be sent), so the server is forgotten here, not when the socket's close arrives.
    addEventListener("offline", () => {
      this.network.socket?.close()
      if (this.serverPeer !== null) {
        this.serverPeer = null
        this.heard.clear()
        this.#changed()
      }
    })
    setInterval(() => this.#reconnect(), 10_000)
    performance.mark("fieldsync:repo-started")
    this.#started()
  }

  #reconnect() {
    const network = this.network
    if (!navigator.onLine || !network.peerId) return
    // The socket says whether there is a connection: one still closing after the signal
    // went (see above) is no connection, whatever was last heard on it.
    const old = network.socket
    if (old && old.readyState === WebSocket.OPEN) return
    // connect() drops the old socket's listeners, so its close would never tell the repo the
    // server is gone: the repo would keep that connection's sync state, believe the server
    // has what was sent into the dead socket, and never send it again. Tell it now, so that
    // the new connection syncs from scratch (a second such notice is harmless).
    if (old && network.remotePeerId) {
      network.emit("peer-disconnected", { peerId: network.remotePeerId })
    }
    network.connect(network.peerId, network.peerMetadata)
    // Its listeners are gone (connect removed them): closing it has no other effect.
    if (old && old.readyState !== WebSocket.CLOSED) old.close()
  }

  get online() {
    return this.serverPeer !== null
  }

  /** Follows a document's acknowledgements and refusals (once per document). */
  watch(handle) {
    const id = handle.documentId
    if (this.watched.has(id)) return
    this.watched.add(id)
    handle.on("remote-heads", ({ storageId, heads }) => {
      if (!storageId || storageId !== this.serverStorage) return
      this.heard.add(id)
      this.#judge(handle, heads)
    })
    // A document fetched from the server has usually synced before it is watched: its
    // remote-heads event is gone, so judge what the repo already knows.
    const known = this.serverStorage && handle.getSyncInfo(this.serverStorage)
    if (known?.lastHeads) this.#judge(handle, known.lastHeads)
    handle.on("ephemeral-message", ({ message }) => {
      if (message?.fieldsync !== "change-refused") return
      this.refused[id] = {
        heads: (message.heads || []).map(String),
        violations: (message.violations || []).map(v => ({ path: String(v.path), message: String(v.message) })),
      }
      save(REFUSED, this.refused)
      this.#changed()
    })
    // The server's heads often name a change before it is applied here (a supervisor's
    // decision arriving): once it is, the same heads cover ours, so judge again.
    handle.on("change", () => {
      const heads = this.serverHeads.get(id)
      if (heads) this.#judge(handle, heads, false)
      else this.#changed()
    })
  }

  /** The server's heads for a document arrived (`heard`), or ours changed: acknowledged if
   * the server's last heads cover ours. */
  #judge(handle, heads, heard = true) {
    const id = handle.documentId
    this.serverHeads.set(id, heads)
    if (heard) {
      this.lastSync = Date.now()
      localStorage.setItem(LAST_SYNC, String(this.lastSync))
    }
    if (covers(handle, heads)) {
      this.acked[id] = handle.heads()
      save(ACKED, this.acked)
      if (this.refused[id]) {
        delete this.refused[id]
        save(REFUSED, this.refused)
      }
    }
    this.#changed()
  }

  /** `stored`, `refused` or `waiting`, for a loaded document. */
  status(handle) {
    return this.statusOf(handle.documentId, handle.heads())
  }

  /** The same for a document known only by its heads (a caseload summary). */
  statusOf(id, heads) {
    if (sameHeads(this.acked[id], heads)) return "stored"
    if (this.refused[id]) return "refused"
    return "waiting"
  }

  /** Whether this phone holds everything the server said it has of a document, as heard on
   * the current connection: only then does what the document lacks say something. */
  current(handle) {
    const id = handle.documentId
    const heads = this.serverHeads.get(id)
    if (!this.online || !this.heard.has(id) || !heads || !handle.isReady()) return false
    return Automerge.hasHeads(handle.doc(), decodeHeads(heads))
  }

  refusal(id) {
    return this.refused[id]
  }

  #changed() {
    this.dispatchEvent(new Event("change"))
  }
}

const sameHeads = (a, b) => !!a && !!b && a.length === b.length && a.every(h => b.includes(h))

/** Whether the server's heads include every local change. */
function covers(handle, serverHeads) {
  const local = handle.heads()
  if (local.every(h => serverHeads.includes(h))) return true
  const doc = handle.doc()
  const server = decodeHeads(serverHeads)
  // The server has changes we do not have yet: they will arrive; judge then.
  if (!Automerge.hasHeads(doc, server)) return false
  return Automerge.getChanges(Automerge.view(doc, server), doc).length === 0
}
