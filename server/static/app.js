// fieldsync pages: small progressive enhancements; every page works without this script.
"use strict";

// Live activity: a page with data-live="<event stream URL>" listens for changes and, at most
// every half second, fetches its own URL again with X-Partial: feed and swaps in the new
// table#feed. Rows not seen before are marked so the eye finds them.
(function () {
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource || !window.fetch) return;
  var status = document.getElementById("live-status");
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
      fresh.querySelectorAll("tr[data-doc]").forEach(function (tr) {
        if (!known[tr.dataset.doc]) tr.classList.add("new");
      });
      old.replaceWith(fresh);
    }).catch(function () { /* the next event tries again */ });
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
