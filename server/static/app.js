// fieldsync pages: small progressive enhancements; every page works without this script.
"use strict";

// On a phone, app.css shows each table row as a card whose cells say what they are through
// data-label. Tables whose page gives no labels get their column headings here (all but the
// first column, which names the row).
function labelCells(root) {
  var tables = root.matches && root.matches("table") ? [root] : root.querySelectorAll("table");
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.tHead && table.tHead.rows[0] ? table.tHead.rows[0].cells : null;
    if (!heads) return;
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var head = heads[column];
          column += cell.colSpan || 1;
          if (column === 1 || cell.colSpan > 1 || cell.hasAttribute("data-label")) return;
          var text = head ? head.textContent.trim() : "";
          if (text && text !== "#") cell.setAttribute("data-label", text);
        });
      });
    });
  });
}
labelCells(document);

// Live lists: a page with data-live="<event stream URL>" listens for changes and, at most
// every half second, fetches its own URL again with X-Partial: <target> and swaps in the new
// element #<target> (data-live-target; "feed", the activity table, when not given; the
// supervisor's queue uses "queue-list"). Rows not seen before are marked so the eye finds
// them, and told to screen readers through #live-news (aria-live); keyboard focus inside the
// list stays on the same link of the same row rather than falling back to the top of the page.
(function () {
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource || !window.fetch) return;
  var target = root.getAttribute("data-live-target") || "feed";
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
      headers: { "X-Partial": target },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      var old = document.getElementById(target);
      if (!html || !old) return;
      var box = document.createElement("template");
      box.innerHTML = html;
      var fresh = box.content.getElementById(target);
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
      labelCells(fresh);
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

  // "2 new activities: Visit · Budi · Ibu Kartini; …" (a row's data-say, or else the type,
  // worker and beneficiary cells, of at most three new rows).
  function announce(rows) {
    if (!news || rows.length === 0) return;
    var count = rows.length === 1 ? news.getAttribute("data-one")
      : (news.getAttribute("data-many") || "").replace("N", String(rows.length));
    var said = rows.slice(0, 3).map(function (tr) {
      if (tr.hasAttribute("data-say")) return tr.getAttribute("data-say");
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

// Filters fold on a phone: each list's form.filters sits in a <details class="filters"> whose
// summary counts the filters set (the supervisor's pages render it so; other lists' filters
// are wrapped here), open on a wider screen.
(function () {
  var wide = window.matchMedia ? window.matchMedia("(min-width: 601px)") : null;
  function countSet(form) {
    var n = 0;
    form.querySelectorAll("select, input").forEach(function (field) {
      if (field.type === "hidden" || field.type === "submit") return;
      var first = field.tagName === "SELECT" && field.options.length ? field.options[0].value : "";
      if (field.value && field.value !== first) n++;
    });
    return n;
  }
  document.querySelectorAll("form.filters").forEach(function (form) {
    // Only a list's own filters (a form that reloads this page), not a form that does
    // something else, such as the exports' download form.
    var action = new URL(form.getAttribute("action") || "", window.location.href);
    if (form.closest("details") || action.pathname !== window.location.pathname) return;
    var details = document.createElement("details");
    details.className = "filters";
    var summary = document.createElement("summary");
    var en = document.documentElement.lang === "en";
    summary.textContent = en ? "Filters" : "Filter";
    var n = countSet(form);
    if (n > 0) {
      var count = document.createElement("span");
      count.className = "count";
      count.textContent = "(" + n + (en ? " set)" : " aktif)");
      summary.appendChild(document.createTextNode(" "));
      summary.appendChild(count);
    }
    form.parentNode.insertBefore(details, form);
    details.appendChild(summary);
    details.appendChild(form);
  });
  var all = document.querySelectorAll("details.filters");
  function follow() {
    all.forEach(function (d) { d.open = !wide || wide.matches; });
  }
  follow();
  if (wide && wide.addEventListener) wide.addEventListener("change", follow);
})();

// The decision form: choosing a decision shows at once what it needs (the reason box required
// for a rejection or a request for documents; the confirmation box for closing, rejecting, or
// approving with a document missing), so the server's confirmation step is not needed.
(function () {
  document.querySelectorAll("form.decide").forEach(function (form) {
    var note = form.querySelector("textarea[name=note]");
    var box = form.querySelector(".confirm");
    var check = box && box.querySelector("input[name=confirm]");
    var question = box && box.querySelector(".question");
    var asked = box && !box.hidden;
    function follow() {
      var chosen = form.querySelector("input[name=kind]:checked");
      if (!chosen) return;
      if (note) note.required = chosen.getAttribute("data-note") === "required";
      if (!box || asked) return;
      var q = chosen.getAttribute("data-confirm");
      box.hidden = !q;
      if (question) question.textContent = q || "";
      if (check) {
        check.required = !!q;
        if (!q) check.checked = false;
      }
    }
    form.addEventListener("change", function (e) {
      if (e.target && e.target.name === "kind") {
        asked = false;
        follow();
      }
    });
    follow();
  });
})();

// A form with data-confirm asks before it is sent (disabling a person); without this script
// it is sent at once, as the button's label says.
document.addEventListener("submit", function (e) {
  var question = e.target.getAttribute && e.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) e.preventDefault();
});
