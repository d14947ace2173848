// The report dashboards: the chart, drawn with Chart.js from the report's JSON (the same JSON
// as GET /api/v1/reports/{name}), and the period picker. No inline script: the CSP forbids it.
// Clicking a bar, a day of the week or a cohort opens the rows behind it (the drill-down).
(function () {
  "use strict";

  var COLOURS = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16"];
  var RATINGS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"];

  function axes(labels, stacked, percent) {
    var y = { beginAtZero: true, stacked: !!stacked, title: { display: !!labels.y, text: labels.y } };
    if (percent) { y.max = 100; }
    return {
      x: { stacked: !!stacked, title: { display: !!labels.x, text: labels.x } },
      y: y
    };
  }

  function series(data, labels, colours) {
    return Object.keys(data.series).map(function (key, i) {
      var colour = (colours || COLOURS)[i % (colours || COLOURS).length];
      return { label: labels.series[key] || key, data: data.series[key], borderColor: colour,
               backgroundColor: colour };
    });
  }

  // Per kind of chart: Chart.js's config, and the group a clicked element drills down to
  // (null: every row). "—" stands for "no group" in the data (crm/reports/reports.py).
  var KINDS = {
    lines: function (d, l) {
      return { config: { type: "line", data: { labels: d.x, datasets: series(d, l) },
                         options: { scales: axes(l) } },
               group: function () { return null; } };
    },
    bars: function (d, l) {
      return { config: { type: "bar", data: { labels: d.x, datasets: series(d, l) },
                         options: { scales: axes(l) } },
               group: function (el) { var g = d.x[el.index]; return g === "—" ? "" : g; } };
    },
    stacked: function (d, l) {
      return { config: { type: "bar", data: { labels: d.x, datasets: series(d, l, RATINGS) },
                         options: { scales: axes(l, true) } },
               group: function (el) { var g = d.x[el.index]; return g === "—" ? "" : g; } };
    },
    heatmap: function (d, l) {
      // Messages by hour, stacked by day of the week: the busy hours stand out as tall bars.
      var hours = [];
      for (var h = 0; h < 24; h++) { hours.push((h < 10 ? "0" : "") + h); }
      var sets = d.grid.map(function (row, day) {
        var colour = COLOURS[day % COLOURS.length];
        return { label: l.weekdays[day], data: row, backgroundColor: colour, borderColor: colour };
      });
      return { config: { type: "bar", data: { labels: hours, datasets: sets },
                         options: { scales: axes(l, true) } },
               group: function (el) { return String(el.datasetIndex); } };
    },
    pareto: function (d, l) {
      var points = d.curve.map(function (p) { return { x: p[0] * 100, y: p[1] * 100 }; });
      var scales = axes(l, false, true);
      scales.x.type = "linear";
      scales.x.max = 100;
      return { config: { type: "line", data: { datasets: [{ label: l.title, data: points,
                         borderColor: COLOURS[0], backgroundColor: COLOURS[0] }] },
                         options: { scales: scales } },
               group: function () { return null; } };
    },
    cohorts: function (d, l) {
      var width = d.grid.reduce(function (n, row) { return Math.max(n, row.length); }, 0);
      var months = [];
      for (var m = 0; m < width; m++) { months.push("+" + m); }
      var sets = d.y.map(function (cohort, i) {
        var colour = COLOURS[i % COLOURS.length];
        return { label: cohort, borderColor: colour, backgroundColor: colour,
                 data: d.grid[i].map(function (v) { return v === null ? null : v * 100; }) };
      });
      return { config: { type: "line", data: { labels: months, datasets: sets },
                         options: { scales: axes(l, false, true) } },
               group: function (el) { return d.y[el.datasetIndex]; } };
    }
  };

  function count(config) {
    return config.data.datasets.reduce(function (n, s) { return n + s.data.length; }, 0);
  }

  function draw(canvas) {
    var labels = JSON.parse(canvas.dataset.labels);
    fetch(canvas.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (report) {
        var chart = report.chart;
        var kind = chart && KINDS[chart.kind];
        if (!kind) { canvas.dataset.points = "0"; return; }
        var made = kind(chart.data, labels);
        made.config.options.responsive = true;
        made.config.options.maintainAspectRatio = false;
        made.config.options.animation = false;
        made.config.options.onClick = function (_event, elements) {
          if (!elements.length) { return; }
          var group = made.group(elements[0]);
          var url = canvas.dataset.rows;
          if (group !== null && group !== undefined) {
            url += (url.indexOf("?") < 0 ? "?" : "&") + "group=" + encodeURIComponent(group);
          }
          window.location.href = url;
        };
        new window.Chart(canvas, made.config);
        canvas.dataset.points = String(count(made.config));
      })
      .catch(function (err) {
        canvas.dataset.error = String(err);
      })
      .then(function () { document.documentElement.dataset.chart = "done"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.getElementById("chart");
    if (canvas && window.Chart) { draw(canvas); }
    // The picker: a preset shows at once; dates wait for the button (two fields to fill).
    var period = document.getElementById("period");
    if (period) {
      period.addEventListener("change", function () {
        if (period.value) { period.form.submit(); }
      });
    }
  });
})();
