// The field app's validator (app/src/schema.js) against the conformance vectors generated
// from the Rust rules (sync-core/conformance/vectors.json, sync-core/tests/conformance.rs).
// Driven like driver.mjs: prints {"event":"ready"}, then answers each command line:
//   {"cmd":"check","vectors":PATH} -> {"ok":true,"count":N,"failures":[{name,expected,found}]}
//   {"cmd":"quit"}                 -> {"ok":true} then exit 0
// A vector passes when the app finds violations at exactly the paths the server does.
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"

// i18n.js reads the language from localStorage: Node has none.
globalThis.localStorage ??= { getItem: () => null, setItem: () => {} }
const { checkChange, copy, numberItems } = await import("../../app/src/schema.js")

/** Applies one edit of a vector to plain values, as the Rust side applies it to Automerge. */
function apply(doc, { op, path, value }) {
  if (op === "set" && path.length === 0) return Object.assign(doc, structuredClone(value))
  const parent = path.slice(0, -1).reduce((at, step) => at[step], doc)
  const last = path.at(-1)
  if (op === "set") parent[last] = structuredClone(value)
  else if (op === "insert") parent.splice(last, 0, structuredClone(value))
  else if (op === "delete") Array.isArray(parent) ? parent.splice(last, 1) : delete parent[last]
  else throw new Error(`unknown op ${op}`)
  return doc
}

function run(file) {
  const { vectors } = JSON.parse(readFileSync(file, "utf8"))
  const failures = []
  for (const vector of vectors) {
    let before = null
    if (vector.before) before = numberItems(structuredClone(vector.before))
    const after = vector.edits.reduce(apply, before ? copy(before) : {})
    const found = [...new Set(checkChange(before, after, vector.author).map(v => v.path))].sort()
    const expected = [...new Set(vector.violations.map(v => v.path))].sort()
    if (JSON.stringify(found) !== JSON.stringify(expected)) failures.push({ name: vector.name, expected, found })
  }
  return { count: vectors.length, failures }
}

console.log(JSON.stringify({ event: "ready" }))
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line)
  if (command.cmd === "quit") {
    console.log(JSON.stringify({ ok: true }))
    process.exit(0)
  }
  try {
    if (command.cmd !== "check") throw new Error(`unknown command ${command.cmd}`)
    console.log(JSON.stringify({ ok: true, ...run(command.vectors) }))
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e?.stack || e) }))
  }
}
