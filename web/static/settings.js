/* Settings › Chat widgets: the list, kept live.
 *
 * The server renders the first list (useful without JavaScript). This script takes it over from
 * the JSON in #initial-widgets, then listens on the inbox WebSocket (same origin, the session
 * cookie authenticates it) for widget_status_changed / widget_updated / widget_deleted and
 * updates rows in place. On every `ready` (first connect and each reconnect) it refetches
 * GET /api/chat/widgets to catch up; events that arrive during that fetch are applied after it.
 * Unknown frame types are ignored; the page never answers frames (it only sends pings).
 */
(function () {
  "use strict";
  var P = window.CurbePage;
  var tbody = document.getElementById("widget-rows");
  var empty = document.getElementById("widgets-empty");
  var indicator = document.getElementById("live-indicator");
  var notice = document.getElementById("list-notice");
  if (!tbody) return;

  var widgets = new Map(); // id -> widget (wire form)

  // --- rendering ------------------------------------------------------------------------------

  function order(a, b) {
    var ca = a.createdAt || "";
    var cb = b.createdAt || "";
    if (ca !== cb) return ca < cb ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }

  function lastSeenCell(w) {
    var span = P.el("span", "widget-last-seen");
    if (w.lastSeenAt) {
      span.setAttribute("data-at", w.lastSeenAt);
      span.title = P.exactTime(w.lastSeenAt);
      span.textContent = P.relativeTime(w.lastSeenAt);
    } else {
      span.classList.add("muted");
      span.textContent = "Never";
    }
    return span;
  }

  function renderRow(w) {
    var status = w.status || "INACTIVE";
    var tr = document.createElement("tr");
    tr.setAttribute("data-widget-id", w.id);
    tr.setAttribute("data-status", status);

    var name = P.el("td", "col-name");
    var link = P.el("a", "widget-name", w.name);
    link.href = "/settings/widgets/" + encodeURIComponent(w.id);
    name.appendChild(link);

    var statusCell = P.el("td", "col-status");
    statusCell.appendChild(
      P.el("span", "status-badge status-" + String(status).toLowerCase(), P.statusLabel(status))
    );
    if (w.statusReason && status !== "ACTIVE") {
      statusCell.appendChild(
        P.el(
          "p",
          "status-reason" + (status === "MISCONFIGURED" ? " status-reason-warn" : ""),
          w.statusReason
        )
      );
    }

    var domain = P.el("td", "col-domain");
    domain.appendChild(
      P.el("span", "widget-domain" + (w.domain ? "" : " muted"), w.domain || "Any domain")
    );
    if (w.lastSeenUrl) {
      var url = P.el("span", "widget-url muted", w.lastSeenUrl);
      url.title = w.lastSeenUrl;
      domain.appendChild(url);
    }

    var seen = P.el("td", "col-seen");
    seen.appendChild(lastSeenCell(w));

    var actions = P.el("td", "col-actions");
    var box = P.el("div", "row-actions");
    var edit = P.el("a", "btn btn-small", "Edit");
    edit.href = link.href;
    edit.setAttribute("data-action", "edit");
    var copy = P.el("button", "btn btn-small", "Copy embed code");
    copy.type = "button";
    copy.setAttribute("data-action", "copy");
    var del = P.el("button", "btn btn-small btn-danger-ghost", "Delete");
    del.type = "button";
    del.setAttribute("data-action", "delete");
    box.append(edit, copy, del);
    actions.appendChild(box);

    tr.append(name, statusCell, domain, seen, actions);
    return tr;
  }

  function rowOf(id) {
    var rows = tbody.querySelectorAll("tr[data-widget-id]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-widget-id") === id) return rows[i];
    }
    return null;
  }

  function refreshEmpty() {
    empty.hidden = widgets.size > 0;
  }

  function upsert(w) {
    if (!w || typeof w.id !== "string") return;
    var previous = widgets.get(w.id);
    if (previous) {
      // a partial payload (e.g. only status fields) updates what it carries
      var merged = {};
      Object.keys(previous).forEach(function (k) {
        merged[k] = previous[k];
      });
      Object.keys(w).forEach(function (k) {
        merged[k] = w[k];
      });
      w = merged;
    }
    var old = rowOf(w.id);
    if (old && previous && JSON.stringify(previous) === JSON.stringify(w)) return; // unchanged
    widgets.set(w.id, w);
    var fresh = renderRow(w);
    if (old) {
      var focused = document.activeElement;
      var action = old.contains(focused) && focused.getAttribute("data-action");
      old.replaceWith(fresh);
      if (action) {
        var again = fresh.querySelector('[data-action="' + action + '"]');
        if (again) again.focus();
      }
    } else {
      var before = null;
      var rows = tbody.querySelectorAll("tr[data-widget-id]");
      for (var i = 0; i < rows.length; i++) {
        var other = widgets.get(rows[i].getAttribute("data-widget-id"));
        if (other && order(w, other) < 0) {
          before = rows[i];
          break;
        }
      }
      tbody.insertBefore(fresh, before);
    }
    refreshEmpty();
  }

  function remove(id) {
    widgets.delete(id);
    var row = rowOf(id);
    if (row) row.remove();
    refreshEmpty();
  }

  function replaceAll(list) {
    var keep = new Set();
    list.slice().sort(order).forEach(function (w) {
      keep.add(w.id);
      var previous = widgets.get(w.id);
      if (previous && JSON.stringify(previous) !== JSON.stringify(w)) {
        widgets.delete(w.id); // a full object replaces, it does not merge
      }
      upsert(w);
    });
    Array.from(widgets.keys()).forEach(function (id) {
      if (!keep.has(id)) remove(id);
    });
    // keep rows in server order
    list
      .slice()
      .sort(order)
      .forEach(function (w) {
        var row = rowOf(w.id);
        if (row) tbody.appendChild(row);
      });
    refreshEmpty();
  }

  function refreshRelativeTimes() {
    tbody.querySelectorAll(".widget-last-seen[data-at]").forEach(function (span) {
      span.textContent = P.relativeTime(span.getAttribute("data-at"));
    });
  }

  function say(message, isError) {
    notice.textContent = message;
    notice.classList.toggle("notice-error", !!isError);
    notice.hidden = false;
  }

  // --- actions --------------------------------------------------------------------------------

  tbody.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var row = button.closest("tr[data-widget-id]");
    var w = row && widgets.get(row.getAttribute("data-widget-id"));
    if (!w) return;
    var action = button.getAttribute("data-action");
    if (action === "copy") {
      P.copyText(w.embedCode || "").then(
        function () {
          button.textContent = "Copied!";
          setTimeout(function () {
            button.textContent = "Copy embed code";
          }, 2000);
        },
        function () {
          say("Could not copy. Open the widget and copy the embed code from the Embed code section.", true);
        }
      );
    } else if (action === "delete") {
      var ok = window.confirm(
        "Delete the widget \u201c" + w.name + "\u201d? Sites that embed it stop showing the chat. This cannot be undone."
      );
      if (!ok) return;
      button.disabled = true;
      P.api("DELETE", "/api/chat/widgets/" + encodeURIComponent(w.id)).then(function (result) {
        if (result.ok || result.status === 404) {
          remove(w.id);
          say("Deleted \u201c" + w.name + "\u201d.");
        } else {
          button.disabled = false;
          if (result.status === 401) return P.toLogin();
          say(P.errorMessage(result, "Could not delete the widget."), true);
        }
      });
    }
  });

  // --- live updates ---------------------------------------------------------------------------

  var live = false; // the stream is connected and caught up
  var fetching = false;
  var buffered = [];

  function setIndicator(state) {
    indicator.setAttribute("data-state", state);
    indicator.textContent =
      state === "live" ? "Live" : state === "connecting" ? "Connecting…" : "Reconnecting…";
    indicator.title =
      state === "live"
        ? "Changes appear here as they happen"
        : "Trying to reconnect; the list may be out of date";
  }

  function apply(frame) {
    var data = frame.data || {};
    if (frame.type === "widget_status_changed" || frame.type === "widget_updated") {
      upsert(data);
    } else if (frame.type === "widget_deleted") {
      if (typeof data.id === "string") remove(data.id);
    }
  }

  function refetch() {
    fetching = true;
    buffered = [];
    P.api("GET", "/api/chat/widgets").then(function (result) {
      fetching = false;
      if (result.ok && result.data && Array.isArray(result.data.widgets)) {
        replaceAll(result.data.widgets);
      } else if (result.status === 401) {
        P.toLogin();
        return;
      }
      var later = buffered;
      buffered = [];
      later.forEach(apply);
    });
  }

  function onFrame(frame) {
    if (!frame || typeof frame.type !== "string") return;
    switch (frame.type) {
      case "ready": // (re)connected: catch up on whatever happened meanwhile
        refetch();
        break;
      case "widget_status_changed":
      case "widget_updated":
      case "widget_deleted":
        if (fetching) buffered.push(frame);
        else apply(frame);
        break;
      default:
        break; // other events of the tenant's stream are for the inbox
    }
  }

  // --- start ----------------------------------------------------------------------------------

  replaceAll(P.readJson("initial-widgets") || []);
  setInterval(refreshRelativeTimes, 30000);
  // the 24-hour Active -> Inactive expiry is computed by the server: re-read now and then
  setInterval(function () {
    if (document.visibilityState === "visible" && live && !fetching) refetch();
  }, 5 * 60000);
  // presence=0: watching settings does not make this agent available to visitors
  P.openStream({
    query: "?presence=0",
    onFrame: onFrame,
    onState: function (state) {
      live = state === "live";
      setIndicator(state);
    },
  });
})();
