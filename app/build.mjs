// Builds the field app into a folder of static files served by fieldsync at /app/.
//
//   node build.mjs [--out DIR]      (default: app/dist)
//
// esbuild bundles src/main.js (with Automerge's wasm as a separate, content-hashed file and
// the stylesheet), then this script writes index.html, the web app manifest, the icons, and a
// service worker that pre-caches every one of those files, the wasm included: without it the
// app could not start offline. The worker's cache name is a hash of all files, so a new build
// replaces the old cache and an unchanged build keeps it.

import { build } from "esbuild"
import { createHash } from "node:crypto"
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { deflateSync, gzipSync } from "node:zlib"

const here = dirname(fileURLToPath(import.meta.url))
const outFlag = process.argv.indexOf("--out")
const out = outFlag > 0 ? process.argv[outFlag + 1] : join(here, "dist")
const base = "/app/"

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

const result = await build({
  entryPoints: [join(here, "src/main.js")],
  bundle: true,
  format: "esm",
  target: ["chrome90", "safari15", "firefox90"],
  minify: true,
  sourcemap: false,
  outdir: out,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  publicPath: base,
  loader: { ".wasm": "file" },
  metafile: true,
  logLevel: "error",
  legalComments: "none",
  define: { "process.env.NODE_ENV": '"production"' },
})

// The office map (/map on the coordinators' pages): Leaflet and its cluster plugin with our
// code, at fixed names under office/ (revalidated on every load), and never precached on
// phones.
await build({
  entryPoints: [join(here, "src/office/map.js")],
  bundle: true,
  format: "esm",
  target: ["chrome90", "safari15", "firefox90"],
  minify: true,
  sourcemap: false,
  outdir: join(out, "office"),
  entryNames: "[name]",
  assetNames: "[name]-[hash]",
  publicPath: `${base}office/`,
  loader: { ".png": "file" },
  logLevel: "error",
  legalComments: "none",
})

// Their licences ask that copies carry their notices: served beside the bundle.
writeFileSync(
  join(out, "office", "LICENSES.txt"),
  [
    ["Leaflet 1.9.4", "node_modules/leaflet/LICENSE"],
    ["Leaflet.markercluster 1.5.3", "node_modules/leaflet.markercluster/MIT-LICENCE.txt"],
  ]
    .map(([name, file]) => `${name}\n\n${readFileSync(join(here, file), "utf8")}`)
    .join("\n\n"),
)

const outputs = Object.keys(result.metafile.outputs).map(p => relative(out, p))
const script = outputs.find(p => p.endsWith(".js"))
const style = outputs.find(p => p.endsWith(".css"))

// Icons: an SVG, and PNGs for the sizes installability asks for (drawn here, no image tools).
writeFileSync(join(out, "icon.svg"), readFileSync(join(here, "src/icon.svg")))
for (const size of [192, 512]) writeFileSync(join(out, `icon-${size}.png`), iconPng(size))

writeFileSync(
  join(out, "manifest.webmanifest"),
  JSON.stringify(
    {
      name: "fieldsync — Peksos",
      short_name: "fieldsync",
      lang: "id",
      start_url: base,
      scope: base,
      display: "standalone",
      orientation: "portrait",
      background_color: "#ffffff",
      theme_color: "#0b6e69",
      icons: [
        { src: `${base}icon-192.png`, sizes: "192x192", type: "image/png" },
        { src: `${base}icon-512.png`, sizes: "512x512", type: "image/png" },
        { src: `${base}icon.svg`, sizes: "any", type: "image/svg+xml" },
      ],
    },
    null,
    2,
  ),
)

writeFileSync(
  join(out, "index.html"),
  `<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="theme-color" content="#0b6e69">
<title>fieldsync · Peksos</title>
<link rel="manifest" href="${base}manifest.webmanifest">
<link rel="icon" href="${base}icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="${base}icon-192.png">
<link rel="stylesheet" href="${base}${style}">
<script type="module" src="${base}${script}"></script>
</head>
<body>
<div id="app"><p class="boot">Memuat… · Loading…</p></div>
<noscript>Aplikasi ini memerlukan JavaScript. · This app needs JavaScript.</noscript>
</body>
</html>
`,
)

// The service worker: every file of the shell, under a cache named by their hash.
const files = listFiles(out).filter(
  f => f !== "sw.js" && !f.endsWith(".gz") && !f.startsWith("office/"),
)
const digest = createHash("sha256")
for (const f of files) digest.update(f).update(readFileSync(join(out, f)))
const version = digest.digest("hex").slice(0, 12)
const precache = files.map(f => (f === "index.html" ? base : base + f))
writeFileSync(
  join(out, "sw.js"),
  readFileSync(join(here, "src/sw.js"), "utf8")
    .replace('"__VERSION__"', JSON.stringify(version))
    .replace("[/*__FILES__*/]", JSON.stringify(precache)),
)

// Gzip beside every compressible file: the server sends it to browsers that accept gzip,
// so a first start over 3G downloads the wasm as about 1.1 MB instead of 3.6 MB.
for (const f of listFiles(out)) {
  if (/\.(js|wasm|css|html|webmanifest|svg)$/.test(f))
    writeFileSync(join(out, `${f}.gz`), gzipSync(readFileSync(join(out, f)), { level: 9 }))
}

function listFiles(dir, prefix = "") {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? listFiles(path, `${prefix}${name}/`) : [`${prefix}${name}`]
  })
}

/** A square PNG: the app's colour with a white disc, for home screens. */
function iconPng(size) {
  const rows = []
  const r = size * 0.3
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3)
    for (let x = 0; x < size; x++) {
      const inside = (x - size / 2) ** 2 + (y - size / 2) ** 2 < r * r
      const [red, green, blue] = inside ? [255, 255, 255] : [0x0b, 0x6e, 0x69]
      row.set([red, green, blue], 1 + x * 3)
    }
    rows.push(row)
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(size, 0)
  header.writeUInt32BE(size, 4)
  header.set([8, 2, 0, 0, 0], 8) // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ])
}

function crc32(buf) {
  let c = ~0
  for (const byte of buf) {
    c ^= byte
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1))
  }
  return ~c >>> 0
}
