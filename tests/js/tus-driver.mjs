// A JSON-lines driver around the real tus-js-client 4.3.1 (pinned in package.json), for
// tests/tests/files.rs: it uploads attachments to the server's /files/ as a phone would, and
// reports every request it made, so the test can see where an upload resumed.
//
// Prints {"event":"ready"}, then answers each line {"cmd": …} with one line {"ok": true, …}
// or {"ok": false, "error": …}. Commands:
//   upload {name, endpoint, token, size, seed | path, filetype, sha256?, creationWithUpload?,
//           chunkSize?}
//       starts an upload of `size` pseudo-random bytes from `seed` (or the file at `path`);
//       `sha256` overrides the announced hash (for a wrong one). Answers when the server gave
//       the upload its URL, or when the upload ended before that: {sha256, size, url?}.
//   wait {name}
//       waits for the upload to end: {result: "success"|"error", status?, body?, requests}
//       where requests lists {method, offset (sent), status, responseOffset} in order.
//   quit
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { Upload } from "tus-js-client"

const uploads = new Map()

/** `size` bytes that do not compress, the same for the same seed. */
function bytesOf(size, seed) {
  const out = Buffer.alloc(size)
  let x = (seed >>> 0) || 1
  for (let i = 0; i < size; i++) {
    // xorshift32
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

function start(request) {
  const data = request.path ? readFileSync(request.path) : bytesOf(request.size, request.seed)
  const sha256 = createHash("sha256").update(data).digest("hex")
  const requests = []
  let urlKnown
  const urlAvailable = new Promise((resolve) => (urlKnown = resolve))
  const done = new Promise((resolve) => {
    const upload = new Upload(data, {
      endpoint: request.endpoint,
      headers: { Authorization: `Bearer ${request.token}` },
      metadata: { sha256: request.sha256 ?? sha256, filetype: request.filetype ?? "image/jpeg" },
      uploadDataDuringCreation: request.creationWithUpload ?? false,
      chunkSize: request.chunkSize ?? Number.POSITIVE_INFINITY,
      retryDelays: [0, 200, 500, 1000, 2000],
      onBeforeRequest(req) {
        requests.push({ method: req.getMethod(), offset: req.getHeader("Upload-Offset") ?? null })
      },
      onAfterResponse(req, res) {
        const last = [...requests].reverse().find((r) => r.method === req.getMethod() && r.status === undefined)
        if (last) {
          last.status = res.getStatus()
          last.responseOffset = res.getHeader("Upload-Offset") ?? null
        }
      },
      onUploadUrlAvailable() {
        urlKnown(upload.url)
      },
      onSuccess() {
        resolve({ result: "success", requests })
      },
      onError(error) {
        const res = error.originalResponse
        resolve({
          result: "error",
          status: res ? res.getStatus() : null,
          body: res ? res.getBody() : null,
          message: String(error.message ?? error).split("\n")[0],
          requests,
        })
      },
    })
    upload.start()
  })
  uploads.set(request.name, done)
  return Promise.race([
    urlAvailable.then((url) => ({ sha256, size: data.length, url })),
    done.then(() => ({ sha256, size: data.length })),
  ])
}

const commands = {
  upload: start,
  async wait(request) {
    const done = uploads.get(request.name)
    if (!done) throw new Error(`no upload ${request.name}`)
    return await done
  },
  async quit() {
    return {}
  },
}

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
  try {
    const run = commands[request.cmd]
    if (!run) throw new Error(`unknown command ${request.cmd}`)
    console.log(JSON.stringify({ ok: true, ...(await run(request)) }))
  } catch (e) {
    console.error(`${request.cmd} failed: ${e?.stack ?? e}`)
    console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e).split("\n")[0] }))
  }
  if (request.cmd === "quit") process.exit(0)
}
