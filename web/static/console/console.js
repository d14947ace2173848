// The console's own script (no inline script anywhere: the Content-Security-Policy forbids it).
// Keyboard: j/k next/previous row or entry, Enter opens, r reply, e close, / search, ? help.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString(); el.title = el.getAttribute("datetime"); }
    });
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll(".row, .entry")); }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.findIndex(function (el) { return el.classList.contains("selected"); });
    var next = Math.max(0, Math.min(all.length - 1, at < 0 ? (step > 0 ? 0 : all.length - 1) : at + step));
    all.forEach(function (el) { el.classList.remove("selected"); });
    all[next].classList.add("selected");
    all[next].scrollIntoView({ block: "nearest" });
  }

  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (ev.key === "Escape") {
      document.getElementById("help").hidden = true;
      if (typing(ev.target)) { ev.target.blur(); }
      return;
    }
    if (typing(ev.target)) { return; }
    var el;
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter":
        el = document.querySelector(".row.selected");
        if (el && el.dataset.href) { window.location.href = el.dataset.href; }
        return;
      case "r": el = document.getElementById("reply"); if (el) { el.focus(); } break;
      case "e": el = document.getElementById("close"); if (el) { el.click(); } break;
      case "/": el = document.getElementById("search"); if (el) { el.focus(); } break;
      case "?": el = document.getElementById("help"); el.hidden = !el.hidden; break;
      default: return;
    }
    ev.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.documentElement.dataset.keys = "on";  // the keyboard is listening (tests wait for it)
  document.body.addEventListener("htmx:afterSwap", function (ev) { localTimes(ev.target); });
  // Keep the selected row across a live refresh of the list.
  document.body.addEventListener("htmx:beforeSwap", function () {
    var sel = document.querySelector(".row.selected");
    document.body.dataset.selected = sel ? (sel.dataset.conversation || "") : "";
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    var id = document.body.dataset.selected;
    if (!id) { return; }
    var row = document.querySelector('.row[data-conversation="' + id + '"]');
    if (row) { row.classList.add("selected"); }
  });
})();
