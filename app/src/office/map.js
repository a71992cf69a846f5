// The office map (/map): visits in the viewer's areas as clustered points, drawn with Leaflet
// from /api/map. The base map's tiles come from the server the Dinas configured
// (`--map-tiles`, on the #map element); without one the points are drawn on a plain
// background. Everything else is served from fieldsync itself (Leaflet's and the cluster
// plugin's licences: /app/office/LICENSES.txt).
import "./leaflet-global.js"
import L from "leaflet"
import "leaflet.markercluster"
import "leaflet/dist/leaflet.css"
import "leaflet.markercluster/dist/MarkerCluster.css"
import "leaflet.markercluster/dist/MarkerCluster.Default.css"
import "./map.css"

const element = document.getElementById("map")
if (element) show(element)

async function show(element) {
  const status = document.getElementById("map-status")
  const lang = document.documentElement.lang === "en" ? "en" : "id"
  const t = (id, en) => (lang === "en" ? en : id)
  // maxZoom on the map itself: without a tile layer to give one, the cluster plugin refuses.
  const map = L.map(element, { attributionControl: true, maxZoom: 19 })
  map.attributionControl.setPrefix(false)
  const tiles = element.dataset.tiles
  if (tiles) {
    L.tileLayer(tiles, {
      maxZoom: 19,
      attribution: element.dataset.attribution || "",
    }).addTo(map)
  }
  map.setView([-2.5, 118], 5)
  let reply
  try {
    const response = await fetch(element.dataset.source, { credentials: "same-origin" })
    if (!response.ok) throw new Error(String(response.status))
    reply = await response.json()
  } catch {
    status.textContent = t("Peta tidak dapat dimuat. Coba lagi.", "The map could not be loaded. Try again.")
    return
  }
  // Without animation: an office PC draws the clusters of the new zoom at once, and what is
  // on the map is always what the data says (the tests count it).
  const clusters = L.markerClusterGroup({
    showCoverageOnHover: false,
    maxClusterRadius: 50,
    animate: false,
  })
  for (const p of reply.points) {
    const marker = L.circleMarker([p.lat, p.lon], {
      radius: 7,
      color: "#0b6e69",
      weight: 2,
      fillColor: "#14a39a",
      fillOpacity: 0.8,
    })
    marker.bindPopup(() => popup(p, t))
    clusters.addLayer(marker)
  }
  map.addLayer(clusters)
  if (reply.points.length > 0) {
    map.fitBounds(clusters.getBounds(), { padding: [24, 24], maxZoom: 16, animate: false })
  }
  element.dataset.points = String(reply.points.length)
  element.dataset.ready = "true"
  status.textContent =
    reply.points.length +
    t(" kunjungan dengan lokasi GPS", " visits with a GPS location") +
    (reply.complete ? "" : t(" (hanya yang terbaru)", " (newest only)"))
}

// A popup built from text nodes: names and places never become markup.
function popup(p, t) {
  const box = document.createElement("div")
  const link = document.createElement("a")
  link.href = `/beneficiaries/${encodeURIComponent(p.nik)}`
  link.textContent = p.name
  const when = document.createElement("div")
  when.textContent = `${p.date} · ${p.area_name}`
  box.append(link, when)
  return box
}
