// leaflet.markercluster is a UMD plugin that extends the global `L`: this module, imported
// before it, makes Leaflet that global.
import L from "leaflet"

globalThis.L = L
