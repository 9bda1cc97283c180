/* Reports: GET /api/chat/reports/agents, drawn as a table and a bar chart of chats per week
 * (an SVG made here: no chart library). Durations read "1 min 20 s"; weeks in the viewer's
 * locale (Intl.DateTimeFormat, the Monday's date, shown as UTC: that is the week's start). */
(function () {
  "use strict";
  var P = window.CurbePage;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var rows = $("report-rows");
  if (!rows) return;
  var SVG = "http://www.w3.org/2000/svg";
  var weekFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });

  function weekLabel(iso) {
    return weekFormat.format(new Date(iso + "T00:00:00Z"));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "\u2014";
    var s = Math.round(seconds);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    var h = Math.floor(m / 60);
    return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, String(attrs[k]));
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(report) {
    var totals = report.weeks.map(function (week) {
      return report.rows
        .filter(function (r) {
          return r.week === week;
        })
        .reduce(function (sum, r) {
          return sum + r.chats;
        }, 0);
    });
    var top = Math.max.apply(null, totals.concat([1]));
    var width = 640;
    var height = 180;
    var slot = width / totals.length;
    var bar = Math.min(48, slot * 0.6);
    var summary = report.weeks
      .map(function (w, i) {
        return weekLabel(w) + ": " + totals[i];
      })
      .join(", ");
    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + (height + 40),
      role: "img",
      "aria-label": "Chats per week. " + summary,
      class: "report-svg",
    });
    root.appendChild(svg("line", { x1: 0, y1: height, x2: width, y2: height, class: "report-axis" }));
    totals.forEach(function (total, i) {
      var h = Math.round((total / top) * (height - 20));
      var x = i * slot + (slot - bar) / 2;
      var g = svg("g", { class: "report-bar", "data-week": report.weeks[i], "data-chats": total });
      g.appendChild(svg("title", {}, weekLabel(report.weeks[i]) + ": " + total + " chats"));
      g.appendChild(svg("rect", { x: x, y: height - h, width: bar, height: h, rx: 3 }));
      g.appendChild(svg("text", { x: x + bar / 2, y: height - h - 4, "text-anchor": "middle", class: "report-value" }, String(total)));
      g.appendChild(svg("text", { x: x + bar / 2, y: height + 18, "text-anchor": "middle", class: "report-week" }, weekLabel(report.weeks[i])));
      root.appendChild(g);
    });
    $("report-chart").replaceChildren(root);
  }

  function table(report) {
    var out = report.rows
      .slice()
      .reverse() // the latest week first
      .map(function (r) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-week", r.week);
        tr.setAttribute("data-agent-id", r.agentId);
        tr.appendChild(P.el("td", "", weekLabel(r.week)));
        tr.appendChild(P.el("td", "", r.agentName));
        tr.appendChild(P.el("td", "num", String(r.chats)));
        tr.appendChild(P.el("td", "num", duration(r.medianFirstResponseSeconds)));
        tr.appendChild(P.el("td", "num", duration(r.medianResolutionSeconds)));
        tr.appendChild(
          P.el("td", "num", r.averageRating === null ? "\u2014" : r.averageRating.toFixed(1) + " \u2605 (" + r.ratings + ")")
        );
        return tr;
      });
    rows.replaceChildren.apply(rows, out);
    $("report-empty").hidden = out.length > 0;
  }

  function load() {
    var weeks = $("report-weeks").value;
    $("report-loading").hidden = false;
    P.api("GET", "/api/chat/reports/agents?weeks=" + encodeURIComponent(weeks)).then(function (result) {
      $("report-loading").hidden = true;
      if (result.status === 401) return P.toLogin();
      var notice = $("report-notice");
      if (!result.ok || !result.data) {
        notice.textContent = P.errorMessage(result, "Could not load the report.");
        notice.hidden = false;
        return;
      }
      notice.hidden = true;
      chart(result.data);
      table(result.data);
    });
  }

  $("report-weeks").addEventListener("change", load);
  load();
})();
