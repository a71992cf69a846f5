// fieldsync pages: small progressive enhancements; every page works without this script.
"use strict";

// Live activity: a page with data-live="<event stream URL>" listens for changes and, at most
// every half second, fetches its own URL again with X-Partial: feed and swaps in the new
// table#feed. Rows not seen before are marked so the eye finds them, and told to screen
// readers through #live-news (aria-live); keyboard focus inside the table stays on the same
// link of the same row rather than falling back to the top of the page.
(function () {
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource || !window.fetch) return;
  var status = document.getElementById("live-status");
  var news = document.getElementById("live-news");
  var FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";
  var pending = null;
  var opened = false;

  function show(on) {
    if (!status) return;
    status.hidden = false;
    status.classList.toggle("on", on);
    status.textContent = status.getAttribute(on ? "data-on" : "data-off") || "";
  }

  function refresh() {
    pending = null;
    fetch(window.location.href, {
      headers: { "X-Partial": "feed" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      var old = document.getElementById("feed");
      if (!html || !old) return;
      var box = document.createElement("template");
      box.innerHTML = html;
      var fresh = box.content.querySelector("table#feed");
      if (!fresh) return;
      var known = {};
      old.querySelectorAll("tr[data-doc]").forEach(function (tr) { known[tr.dataset.doc] = true; });
      var added = [];
      fresh.querySelectorAll("tr[data-doc]").forEach(function (tr) {
        if (!known[tr.dataset.doc]) {
          tr.classList.add("new");
          added.push(tr);
        }
      });
      var focus = focusIn(old);
      old.replaceWith(fresh);
      if (focus) refocus(fresh, focus);
      announce(added);
    }).catch(function () { /* the next event tries again */ });
  }

  // Where focus is inside `table`, as a row (or null for the header and footer) and the
  // position among that row's (or the table's) focusable elements.
  function focusIn(table) {
    var active = document.activeElement;
    if (!active || active === document.body || !table.contains(active)) return null;
    var row = active.closest("tr[data-doc]");
    var scope = row || table;
    var index = Array.prototype.indexOf.call(scope.querySelectorAll(FOCUSABLE), active);
    return { doc: row ? row.dataset.doc : null, index: index };
  }

  function refocus(table, focus) {
    var scope = focus.doc === null ? table
      : table.querySelector('tr[data-doc="' + CSS.escape(focus.doc) + '"]');
    var target = scope && scope.querySelectorAll(FOCUSABLE)[focus.index];
    if (!target) {
      // The row is gone (e.g. filtered out now): the table itself keeps the place.
      table.setAttribute("tabindex", "-1");
      target = table;
    }
    target.focus({ preventScroll: true });
  }

  // "2 new activities: Visit · Budi · Ibu Kartini; …" (the type, worker and beneficiary
  // cells of at most three new rows).
  function announce(rows) {
    if (!news || rows.length === 0) return;
    var count = rows.length === 1 ? news.getAttribute("data-one")
      : (news.getAttribute("data-many") || "").replace("N", String(rows.length));
    var said = rows.slice(0, 3).map(function (tr) {
      var cells = tr.querySelectorAll("td");
      var parts = [1, 2, 4].map(function (i) {
        var cell = cells[i];
        var first = cell && (cell.querySelector("a, span") || cell);
        return first ? first.textContent.trim() : "";
      });
      return parts.filter(function (p) { return p && p !== "—"; }).join(" · ");
    });
    news.textContent = count + ": " + said.join("; ");
  }

  function soon() {
    if (pending === null) pending = window.setTimeout(refresh, 500);
  }

  var source = new EventSource(root.getAttribute("data-live"));
  source.addEventListener("open", function () {
    // After a reconnection, changes may have been missed while the stream was down.
    if (opened) soon();
    opened = true;
    show(true);
  });
  source.addEventListener("error", function () { show(false); });
  source.addEventListener("change", soon);
  source.addEventListener("reload", soon);
})();

// A form with data-confirm asks before it is sent (disabling a person); without this script
// it is sent at once, as the button's label says.
document.addEventListener("submit", function (e) {
  var question = e.target.getAttribute && e.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) e.preventDefault();
});
