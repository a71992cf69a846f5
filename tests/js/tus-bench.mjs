// Upload figures for docs/benchmarks.md (scripts/bench-uploads runs it against a release
// server): PHONES phones upload a SIZE-byte scan each at once with the real tus-js-client,
// while the server's resident memory (/proc) and the allocator's live heap (/metrics) are
// sampled every 50 ms; then one scan is uploaded whole, and once more cut in the middle by a
// proxy here (the connection dropped once half of it passed), to see what resuming costs.
// Prints one JSON object.
//
//   node tus-bench.mjs --endpoint URL --metrics URL --pid PID --tokens FILE [--size BYTES]
import { randomBytes } from "node:crypto"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import net from "node:net"
import { parseArgs } from "node:util"
import { Upload } from "tus-js-client"

const { values: args } = parseArgs({
  options: {
    endpoint: { type: "string" },
    metrics: { type: "string" },
    pid: { type: "string" },
    tokens: { type: "string" },
    size: { type: "string", default: String(2 * 1024 * 1024) },
  },
})
const tokens = readFileSync(args.tokens, "utf8").split("\n").filter(Boolean)
const size = Number(args.size)

/** Uploads `data`; resolves with the offsets the server reported to HEAD requests (where
 * the upload resumed). */
function upload(endpoint, token, data, extra = {}) {
  const sha256 = createHash("sha256").update(data).digest("hex")
  const resumedAt = []
  return new Promise((resolve, reject) => {
    const u = new Upload(data, {
      endpoint,
      headers: { Authorization: `Bearer ${token}` },
      metadata: { sha256, filetype: "image/jpeg" },
      retryDelays: [0, 200, 500, 1000],
      onAfterResponse(req, res) {
        if (req.getMethod() === "HEAD") resumedAt.push(Number(res.getHeader("Upload-Offset")))
      },
      onSuccess: () => resolve(resumedAt),
      onError: reject,
      ...extra,
    })
    u.start()
  })
}

async function sample() {
  const status = readFileSync(`/proc/${args.pid}/status`, "utf8")
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024
  const text = await (await fetch(args.metrics)).text()
  const heap = Number(/^fieldsync_memory_allocated_bytes (\S+)$/m.exec(text)?.[1] ?? NaN)
  return { rss, heap }
}

/** Samples memory until `stop()`; returns the peaks. */
function sampler() {
  let peak = { rss: 0, heap: 0 }
  let running = true
  const loop = (async () => {
    while (running) {
      const s = await sample()
      peak = { rss: Math.max(peak.rss, s.rss), heap: Math.max(peak.heap, s.heap) }
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  return async () => {
    running = false
    await loop
    return peak
  }
}

/** A TCP proxy to the server that drops the first connection after `cutAfter` bytes up;
 * `server.up` counts every byte it passed up (requests and bodies). */
function cuttingProxy(target, cutAfter) {
  let cut = false
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.hostname)
    let up = 0
    client.on("data", (chunk) => {
      up += chunk.length
      if (!cut && up > cutAfter) {
        cut = true
        client.destroy()
        upstream.destroy()
        return
      }
      server.up += chunk.length
      upstream.write(chunk)
    })
    upstream.on("data", (chunk) => client.write(chunk))
    client.on("error", () => upstream.destroy())
    upstream.on("error", () => client.destroy())
    client.on("close", () => upstream.destroy())
    upstream.on("close", () => client.destroy())
  })
  server.up = 0
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)))
}

const idle = await sample()
const scans = tokens.map(() => randomBytes(size))
const stop = sampler()
let started = performance.now()
await Promise.all(scans.map((scan, i) => upload(args.endpoint, tokens[i], scan)))
const concurrentSecs = (performance.now() - started) / 1000
const peak = await stop()

// Five scans whole, then five each cut once half of it went up, through a proxy.
const target = new URL(args.endpoint)
const trials = 5
const whole = []
for (let i = 0; i < trials; i++) {
  started = performance.now()
  await upload(args.endpoint, tokens[0], randomBytes(size))
  whole.push((performance.now() - started) / 1000)
}
const resumed = []
for (let i = 0; i < trials; i++) {
  const proxy = await cuttingProxy(target, size / 2)
  const viaProxy = `http://127.0.0.1:${proxy.address().port}${target.pathname}`
  started = performance.now()
  const resumedAt = await upload(viaProxy, tokens[0], randomBytes(size))
  resumed.push({
    secs: (performance.now() - started) / 1000,
    // where the server's offset let it resume, and what it sent up in all beyond the scan
    // (both connections, request heads included)
    resumedAt,
    extraBytes: proxy.up - size,
  })
  proxy.close()
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

console.log(
  JSON.stringify({
    phones: tokens.length,
    scanBytes: size,
    concurrentSecs,
    throughputMBps: (tokens.length * size) / 1024 / 1024 / concurrentSecs,
    idleRssMB: idle.rss / 1024 / 1024,
    idleHeapMB: idle.heap / 1024 / 1024,
    peakRssMB: peak.rss / 1024 / 1024,
    peakHeapMB: peak.heap / 1024 / 1024,
    wholeSecsMedian: median(whole),
    resumedSecsMedian: median(resumed.map((r) => r.secs)),
    resumed,
  }),
)
process.exit(0)
