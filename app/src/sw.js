// The field app's service worker: keeps the app shell (every file of the build, Automerge's
// wasm included) in a cache, so that the app starts with no network at all. Written by
// build.mjs from this template: VERSION is a hash of the files, FILES their URLs.
// Documents are not here: they live in IndexedDB, written by the page's automerge-repo.

const VERSION = "__VERSION__"
const FILES = [/*__FILES__*/]
const CACHE = `fieldsync-shell-${VERSION}`

self.addEventListener("install", event => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE)
      // Content-hashed files may come from the HTTP cache (a name never changes its bytes);
      // the others (the page, the manifest, the icons) straight from the server.
      const hashed = url => /-[A-Z0-9]{8}\.[a-z]+$/.test(url)
      await cache.addAll(FILES.map(url => new Request(url, { cache: hashed(url) ? "default" : "reload" })))
      await self.skipWaiting()
    })(),
  )
})

self.addEventListener("activate", event => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("fieldsync-shell-") && name !== CACHE) await caches.delete(name)
      }
      await self.clients.claim()
    })(),
  )
})

self.addEventListener("fetch", event => {
  const url = new URL(event.request.url)
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return
  // Photos and scans are personal data read under the device's token, and a wiped phone must
  // not keep them: never cached here.
  if (url.pathname.startsWith("/files/")) return
  // Pages of the app are all the one shell; its files come from the cache. Anything else
  // (the API, /sync) goes to the network untouched.
  const key = event.request.mode === "navigate" && url.pathname.startsWith("/app/") ? "/app/" : url.pathname
  if (!FILES.includes(key)) return
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE)
      const hit = await cache.match(key)
      return hit || fetch(event.request)
    })(),
  )
})
