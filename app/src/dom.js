// A tiny helper to build DOM nodes: h("button", {class: "big", onclick}, "Simpan").
// Text is always set as text, never as markup, so nothing from a document becomes HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v)
    else if (k === "class") el.className = v
    else if (k === "value") el.value = v
    else if (k === "checked") el.checked = !!v
    else el.setAttribute(k, v === true ? "" : String(v))
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

/** Makes `nodes` the children of `root`. A node already in its place stays there: taken out
 * and put back, it would be styled and laid out anew, all 500 rows of a caseload. */
export function mount(root, ...nodes) {
  const next = nodes.flat(Infinity).filter(Boolean)
  const now = [...root.childNodes]
  const inPlace = next.length === now.length && next.every((n, i) => n === now[i] || n.parentNode !== root)
  if (!inPlace) return root.replaceChildren(...next)
  next.forEach((n, i) => n !== now[i] && root.replaceChild(n, now[i]))
}
