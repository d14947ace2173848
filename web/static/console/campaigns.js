// A campaign's results: the delivery funnel per channel and per variant, and sends, replies,
// clicks and opt-outs over time, drawn with Chart.js from /console/campaigns/{id}/data (the
// API's stats of the campaign and its activity). While the campaign sends, htmx swaps the
// figures every two seconds and the charts are drawn again after each swap.
// No inline script: the CSP forbids it.
(function () {
  "use strict";

  var COLOURS = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16"];
  var charts = {};
  var root = null;
  var labels = null;
  var last = null;
  var rounds = 0;

  function colour(i) { return COLOURS[i % COLOURS.length]; }

  function named(key) { return key === "none" ? labels.none : key; }

  function sliceName(key) {
    if (key === "total") { return labels.total; }
    var parts = key.split(":");
    return labels[parts[0]].replace("{name}", named(parts[1]));
  }

  function options(stacked) {
    return { responsive: true, maintainAspectRatio: false, animation: false,
             scales: { x: { stacked: !!stacked },
                       y: { beginAtZero: true, ticks: { precision: 0 },
                            title: { display: true, text: labels.y } } } };
  }

  function draw(id, type, data) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    if (charts[id]) {
      charts[id].data = data;
      charts[id].update("none");
    } else {
      charts[id] = new window.Chart(canvas, { type: type, data: data, options: options() });
    }
    canvas.dataset.points = String(data.datasets.reduce(function (n, s) {
      return n + s.data.length; }, 0));
  }

  // The funnel of each group (a channel, a variant): one bar per stage.
  // labels.stages and labels.metrics are [key, words] pairs, in the order shown.
  function funnel(groups) {
    return {
      labels: labels.stages.map(function (s) { return s[1]; }),
      datasets: Object.keys(groups).map(function (key, i) {
        return { label: named(key), backgroundColor: colour(i), borderColor: colour(i),
                 data: labels.stages.map(function (s) { return groups[key][s[0]]; }) };
      })
    };
  }

  function slices(activity) {
    var keys = ["total"];
    Object.keys(activity.by_channel).forEach(function (k) { keys.push("channel:" + k); });
    if (Object.keys(activity.by_variant).length > 1) {
      Object.keys(activity.by_variant).forEach(function (k) { keys.push("variant:" + k); });
    }
    return keys;
  }

  function when(iso, bucket) {
    var d = new Date(iso);
    return bucket >= 86400 ? d.toLocaleDateString() :
      d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function overTime(activity) {
    var select = document.getElementById("slice");
    var keys = slices(activity);
    var chosen = select.value || "total";
    if (select.options.length !== keys.length) {
      select.innerHTML = "";
      keys.forEach(function (k) {
        var option = document.createElement("option");
        option.value = k;
        option.textContent = sliceName(k);  // text, never markup
        select.appendChild(option);
      });
      select.value = keys.indexOf(chosen) >= 0 ? chosen : "total";
    }
    var key = select.value;
    var parts = key.split(":");
    var series = key === "total" ? activity.total : activity["by_" + parts[0]][parts[1]];
    draw("over-time", "line", {
      labels: activity.times.map(function (t) { return when(t, activity.bucket_seconds); }),
      datasets: labels.metrics.map(function (m, i) {
        return { label: m[1], data: series ? series[m[0]] : [],
                 borderColor: colour(i), backgroundColor: colour(i), tension: 0 };
      })
    });
  }

  function refresh() {
    fetch(root.dataset.src, { credentials: "same-origin",
                              headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (data) {
        last = data;
        draw("funnel-channel", "bar", funnel(data.stats.by_channel));
        draw("funnel-variant", "bar", funnel(data.stats.by_variant));
        overTime(data.activity);
        root.dataset.sent = String(data.stats.total.sent);
      })
      .catch(function (err) { root.dataset.error = String(err); })
      .then(function () {
        rounds += 1;
        document.documentElement.dataset.charts = String(rounds);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("charts");
    if (!root || !window.Chart) { return; }
    labels = JSON.parse(root.dataset.labels);
    refresh();
    document.getElementById("slice").addEventListener("change", function () {
      if (last) { overTime(last.activity); }
    });
    // The figures were fetched again (htmx polling while it sends): so are the charts.
    document.body.addEventListener("htmx:afterSettle", function (ev) {
      var target = ev.detail && ev.detail.target;
      if (target && (target.id === "figures" || document.getElementById("figures"))) {
        refresh();
      }
    });
  });
})();
