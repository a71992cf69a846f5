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

/** How long a socket may take to open before a retry replaces it: a TLS handshake over 2G
 * takes seconds, and the adapter's own 5 s retry would otherwise never let one finish. */
const HANDSHAKE_MS = 20_000

/**
 * The WebSocket adapter of automerge-repo 2.5.6, made safe for a flaky link.
 *
 * - It throws when it sends on a socket that is not open (fixed upstream after that release,
 *   #627). A message that cannot go now is dropped; the next connection syncs from scratch.
 * - Its reconnects (its retry interval, the timer its `close` handler starts, ours) replace the
 *   socket without telling the repo the server is gone, and a stray one replaces a socket that
 *   works. The repo then keeps the old connection's sync state: it believes the server has
 *   what was sent into the dead socket and never sends it again, and the record waits for ever.
 *   Here every new socket first ends the old connection for the repo (`peer-disconnected`, so
 *   the next `peer` begins the sync again), an open socket is kept, one still opening is given
 *   HANDSHAKE_MS, and the replaced socket is closed instead of left open on the server.
 */
class SafeWebSocketAdapter extends WebSocketClientAdapter {
  #openedAt = 0

  connect(peerId, peerMetadata) {
    const old = this.socket
    if (old?.readyState === WebSocket.OPEN) {
      // Only the adapter's own timers get here (#reconnect checks first): a stray retry.
      console.debug("fieldsync: a retry left the open socket alone")
      return
    }
    if (old?.readyState === WebSocket.CONNECTING && Date.now() - this.#openedAt < HANDSHAKE_MS) return
    this.#forget()
    super.connect(peerId, peerMetadata)
    this.#openedAt = Date.now()
    // connect() removed its listeners: closing it has no effect here, and frees the server's end.
    if (old && old.readyState !== WebSocket.CLOSED) old.close()
  }

  /** The phone says it is offline: believe it. A socket outlives the signal for a long time
   * before TCP notices, and closing it without a network does not end it until TCP gives up
   * (its close frame cannot be sent), so the repo is told now that the server is gone. */
  drop() {
    this.socket?.close()
    this.#forget()
  }

  #forget() {
    const peerId = this.remotePeerId
    this.remotePeerId = undefined
    if (peerId) this.emit("peer-disconnected", { peerId })
  }

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
    // are known to misbehave in 2.5.6, #690): when the signal returns, and every 10 s, make
    // sure there is a socket (SafeWebSocketAdapter keeps one that is open or still opening).
    addEventListener("online", () => this.#reconnect())
    // Forgets the server at once: its `peer-disconnected` reaches the listener above.
    addEventListener("offline", () => this.network.drop())
    setInterval(() => this.#reconnect(), 10_000)
    performance.mark("fieldsync:repo-started")
    this.#started()
  }

  #reconnect() {
    const network = this.network
    if (!navigator.onLine || !network.peerId || network.socket?.readyState === WebSocket.OPEN) return
    network.connect(network.peerId, network.peerMetadata)
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
