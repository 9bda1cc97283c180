/* The operator page (/ops): the live actors of GET /api/ops/actors, refreshed every 2 s.
 *
 * The operator token is asked once and kept in sessionStorage (this tab only); every request
 * sends it as `Authorization: Bearer`, never in a URL or a cookie. A 401 forgets it and asks
 * again. Filters (kind, tenant) go to the server as query parameters; a row's id opens the detail
 * view (GET /api/ops/actors/{kind}/{id}, with recentEvents), refreshed with the list. Everything
 * the server sends is rendered with textContent.
 */
(function () {
  "use strict";

  var P = window.CurbePage;
  var STORAGE_KEY = "curbe.opsToken";
  var REFRESH_MS = 2000;
  var KNOWN_ORDER = ["service", "conversation", "visitor_session", "widget", "router"];
  // the detail view lists these first, in this order; anything else follows alphabetically
  var FIELD_ORDER = [
    "kind", "id", "tenantId", "state", "subscribers", "mailbox", "restarts", "startedAt",
    "lastActivityAt", "lastCrash", "waitDeadline", "lastSeq", "visitorId", "conversationId",
    "currentUrl", "expiresAt",
  ];

  function $(id) {
    return document.getElementById(id);
  }

  var ui = {
    login: $("ops-login"),
    form: $("ops-token-form"),
    tokenInput: $("ops-token"),
    tokenError: $("ops-token-error"),
    submit: $("ops-token-submit"),
    dashboard: $("ops-dashboard"),
    forget: $("ops-forget"),
    live: $("ops-live"),
    summary: $("ops-summary"),
    broker: $("ops-broker"),
    filters: $("ops-filters"),
    kind: $("ops-kind"),
    tenant: $("ops-tenant"),
    error: $("ops-error"),
    escalated: $("ops-escalated"),
    escalatedList: $("ops-escalated-list"),
    rows: $("ops-rows"),
    empty: $("ops-empty"),
    detail: $("ops-detail"),
    detailTitle: $("ops-detail-title"),
    detailNotice: $("ops-detail-notice"),
    detailFields: $("ops-detail-fields"),
    detailClose: $("ops-detail-close"),
    events: $("ops-events"),
    eventsEmpty: $("ops-events-empty"),
    eventRows: $("ops-event-rows"),
  };

  var state = {
    token: null,
    timer: null,
    generation: 0, // bumped on sign-out and filter changes: late answers are ignored
    busy: false,
    again: false,
    selected: null, // {kind, id}
    rowsByKey: {},
  };

  // --- storage ------------------------------------------------------------------------------

  function storedToken() {
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch (e) {
      return null;
    }
  }

  function storeToken(token) {
    try {
      if (token) sessionStorage.setItem(STORAGE_KEY, token);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      /* storage blocked: the token lives in this page only */
    }
  }

  // --- HTTP ---------------------------------------------------------------------------------

  /** GET with the operator token. Resolves to {ok, status, data}; a network failure is status 0. */
  function get(url) {
    return P.request(url, {
      method: "GET",
      credentials: "omit",
      cache: "no-store",
      headers: { Accept: "application/json", Authorization: "Bearer " + state.token },
    });
  }

  function listUrl() {
    var params = new URLSearchParams();
    var kind = ui.kind.value;
    var tenant = ui.tenant.value.trim();
    if (kind) params.set("kind", kind); // an empty kind= would match no actor: leave it out
    if (tenant) params.set("tenant", tenant);
    var query = params.toString();
    return "/api/ops/actors" + (query ? "?" + query : "");
  }

  function detailUrl(sel) {
    return "/api/ops/actors/" + encodeURIComponent(sel.kind) + "/" + encodeURIComponent(sel.id);
  }

  // --- formatting ---------------------------------------------------------------------------

  var clock = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });

  /** A server timestamp as the viewer's local time with seconds; "" when absent. */
  function timeText(iso) {
    var t = Date.parse(iso || "");
    return isNaN(t) ? "" : clock.format(new Date(t));
  }

  function isTimestamp(value) {
    return typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value);
  }

  /** A cell or value holding a time: local time, exact instant on hover, the ISO in datetime. */
  function timeNode(iso, suffix) {
    if (!iso) return P.el("span", "muted", "—");
    var node = P.el("time", "ops-time", timeText(iso) + (suffix || ""));
    node.setAttribute("datetime", iso);
    node.title = P.exactTime(iso) + " (" + iso + ")";
    return node;
  }

  /** "in 42 s" / "42 s ago", from the server's clock (skew-corrected). */
  function untilText(iso) {
    var t = Date.parse(iso || "");
    if (isNaN(t)) return "";
    var seconds = Math.round((t - P.serverNow()) / 1000);
    return seconds >= 0 ? " (in " + P.duration(seconds) + ")" : " (" + P.duration(-seconds) + " ago)";
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function stateClass(value) {
    var v = String(value || "").toLowerCase();
    if (v === "open" || v === "live" || v === "active" || v === "watching" || v === "running") return "status-badge status-active";
    if (v === "waiting" || v === "misconfigured" || v === "restarting" || v === "escalated") return "status-badge status-misconfigured";
    return "status-badge status-inactive";
  }

  function valueNode(key, value) {
    if (value === null || value === undefined || value === "") return P.el("span", "muted", "—");
    if (isTimestamp(value)) {
      return timeNode(value, key === "waitDeadline" || key === "expiresAt" || key === "activeUntil" ? untilText(value) : "");
    }
    if (typeof value === "object") return P.el("code", "ops-json", JSON.stringify(value));
    var node = P.el("span", key === "id" || /Id$/.test(key) ? "mono" : null, String(value));
    return node;
  }

  // --- the list -----------------------------------------------------------------------------

  function keyOf(actor) {
    return actor.kind + "\u0000" + actor.id;
  }

  function compareActors(a, b) {
    var ka = KNOWN_ORDER.indexOf(a.kind);
    var kb = KNOWN_ORDER.indexOf(b.kind);
    if (ka === -1) ka = KNOWN_ORDER.length;
    if (kb === -1) kb = KNOWN_ORDER.length;
    if (ka !== kb) return ka - kb;
    if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
    if (a.startedAt !== b.startedAt) return (a.startedAt || "") < (b.startedAt || "") ? 1 : -1; // newest first
    return a.id < b.id ? -1 : 1;
  }

  function makeRow(actor) {
    var tr = document.createElement("tr");
    tr.className = "ops-row";
    tr.setAttribute("data-kind", String(actor.kind));
    tr.setAttribute("data-actor-id", String(actor.id));
    var cells = {};
    ["kind", "id", "tenant", "state", "subscribers", "mailbox", "restarts", "started", "activity", "deadline"].forEach(
      function (name) {
        var td = document.createElement("td");
        td.className = "ops-col-" + name;
        if (name === "subscribers" || name === "mailbox" || name === "restarts") td.className += " num";
        cells[name] = td;
        tr.appendChild(td);
      }
    );
    var open = P.el("button", "link-button ops-open mono", String(actor.id));
    open.type = "button";
    open.addEventListener("click", function () {
      select({ kind: String(actor.kind), id: String(actor.id) });
    });
    cells.id.appendChild(open);
    return { tr: tr, cells: cells, open: open };
  }

  function fill(td, node) {
    td.textContent = "";
    td.appendChild(node);
  }

  function updateRow(row, actor) {
    var c = row.cells;
    fill(c.kind, P.el("span", "kind-badge", String(actor.kind)));
    fill(c.tenant, valueNode("tenantId", actor.tenantId));
    fill(c.state, actor.state ? P.el("span", stateClass(actor.state), String(actor.state)) : P.el("span", "muted", "—"));
    c.subscribers.textContent = String(actor.subscribers);
    c.mailbox.textContent = String(actor.mailbox);
    c.restarts.textContent = String(actor.restarts);
    if (actor.lastCrash) c.restarts.title = "last crash: " + actor.lastCrash;
    else c.restarts.removeAttribute("title");
    fill(c.started, timeNode(actor.startedAt));
    fill(c.activity, timeNode(actor.lastActivityAt));
    fill(c.deadline, actor.waitDeadline ? timeNode(actor.waitDeadline, untilText(actor.waitDeadline)) : P.el("span", "muted", "—"));
    var selected = state.selected && state.selected.kind === actor.kind && state.selected.id === actor.id;
    row.tr.classList.toggle("is-selected", !!selected);
    row.open.setAttribute("aria-pressed", selected ? "true" : "false");
  }

  function renderList(data) {
    var actors = Array.isArray(data && data.actors) ? data.actors.slice() : [];
    actors.sort(compareActors);
    var seen = {};
    actors.forEach(function (actor, index) {
      var key = keyOf(actor);
      seen[key] = true;
      var row = state.rowsByKey[key];
      if (!row) {
        row = makeRow(actor);
        state.rowsByKey[key] = row;
      }
      updateRow(row, actor);
      if (ui.rows.children[index] !== row.tr) ui.rows.insertBefore(row.tr, ui.rows.children[index] || null);
    });
    Object.keys(state.rowsByKey).forEach(function (key) {
      if (!seen[key]) {
        var gone = state.rowsByKey[key];
        if (gone.tr.parentNode) gone.tr.parentNode.removeChild(gone.tr);
        delete state.rowsByKey[key];
      }
    });
    ui.empty.hidden = actors.length > 0;

    var byKind = {};
    actors.forEach(function (a) {
      byKind[a.kind] = (byKind[a.kind] || 0) + 1;
      addKindOption(String(a.kind));
    });
    var parts = Object.keys(byKind)
      .sort()
      .map(function (k) {
        return byKind[k] + " " + k;
      });
    ui.summary.textContent = plural(actors.length, "actor") + (parts.length ? " · " + parts.join(" · ") : "");
    renderEscalated(Array.isArray(data && data.escalated) ? data.escalated : []);
    var b = data && data.broker;
    ui.broker.textContent = b
      ? "Broker: " + plural(b.subscribers, "subscriber") + " · " + b.published + " published · " +
        b.delivered + " delivered · " + b.droppedSubscribers + " dropped"
      : "";
  }

  /** Actors and services the supervisor gave up on: kind, id, the error, where and when. */
  function renderEscalated(list) {
    ui.escalatedList.textContent = "";
    list.forEach(function (e) {
      var li = P.el("li", "ops-escalation");
      li.setAttribute("data-kind", String(e.kind));
      li.setAttribute("data-actor-id", String(e.id));
      li.appendChild(P.el("span", "kind-badge", String(e.kind)));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(P.el("span", "mono", String(e.id)));
      li.appendChild(document.createTextNode(" — " + e.restarts + (e.restarts === 1 ? " crash" : " crashes") + ", last: "));
      li.appendChild(P.el("code", "ops-crash", String(e.error) + (e.where ? " at " + e.where : "")));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(timeNode(e.at));
      ui.escalatedList.appendChild(li);
    });
    ui.escalated.hidden = list.length === 0;
  }

  function addKindOption(kind) {
    for (var i = 0; i < ui.kind.options.length; i++) {
      if (ui.kind.options[i].value === kind) return;
    }
    var option = document.createElement("option");
    option.value = kind;
    option.textContent = kind;
    ui.kind.appendChild(option);
  }

  // --- the detail view ----------------------------------------------------------------------

  function select(sel) {
    state.selected = sel;
    ui.detail.hidden = false;
    ui.detailTitle.textContent = sel.kind + " " + sel.id;
    ui.detailNotice.hidden = true;
    ui.detailFields.textContent = "";
    ui.eventRows.textContent = "";
    ui.events.hidden = true;
    ui.eventsEmpty.hidden = true;
    Object.keys(state.rowsByKey).forEach(function (key) {
      var row = state.rowsByKey[key];
      var on = key === sel.kind + "\u0000" + sel.id;
      row.tr.classList.toggle("is-selected", on);
      row.open.setAttribute("aria-pressed", on ? "true" : "false");
    });
    refreshNow();
    ui.detail.scrollIntoView({ block: "nearest" });
  }

  function closeDetail() {
    state.selected = null;
    ui.detail.hidden = true;
    Object.keys(state.rowsByKey).forEach(function (key) {
      state.rowsByKey[key].tr.classList.remove("is-selected");
      state.rowsByKey[key].open.setAttribute("aria-pressed", "false");
    });
  }

  function renderDetail(result) {
    if (!state.selected) return;
    if (result.status === 404) {
      ui.detailNotice.textContent = "This actor is not running now: it stopped (idle or finished) or never started.";
      ui.detailNotice.hidden = false;
      return;
    }
    if (!result.ok || !result.data) {
      ui.detailNotice.textContent = P.errorMessage(result, "Could not load this actor.");
      ui.detailNotice.hidden = false;
      return;
    }
    ui.detailNotice.hidden = true;
    var actor = result.data;
    var keys = Object.keys(actor).filter(function (k) {
      return k !== "recentEvents";
    });
    keys.sort(function (a, b) {
      var ia = FIELD_ORDER.indexOf(a);
      var ib = FIELD_ORDER.indexOf(b);
      if (ia === -1) ia = FIELD_ORDER.length;
      if (ib === -1) ib = FIELD_ORDER.length;
      return ia !== ib ? ia - ib : a < b ? -1 : 1;
    });
    var fragment = document.createDocumentFragment();
    keys.forEach(function (key) {
      var dt = P.el("dt", null, key);
      var dd = document.createElement("dd");
      dd.setAttribute("data-field", key);
      dd.appendChild(valueNode(key, actor[key]));
      fragment.appendChild(dt);
      fragment.appendChild(dd);
    });
    ui.detailFields.textContent = "";
    ui.detailFields.appendChild(fragment);

    var events = Array.isArray(actor.recentEvents) ? actor.recentEvents : [];
    ui.eventRows.textContent = "";
    events
      .slice()
      .reverse() // newest first
      .forEach(function (event) {
        var tr = document.createElement("tr");
        tr.className = "ops-event";
        tr.appendChild(P.el("td", "num", event.seq === null || event.seq === undefined ? "—" : String(event.seq)));
        tr.appendChild(P.el("td", "mono", String(event.type)));
        var at = document.createElement("td");
        at.appendChild(timeNode(event.at));
        tr.appendChild(at);
        ui.eventRows.appendChild(tr);
      });
    ui.events.hidden = events.length === 0;
    ui.eventsEmpty.hidden = events.length > 0;
  }

  // --- polling ------------------------------------------------------------------------------

  function setLive(stateName, text) {
    ui.live.setAttribute("data-state", stateName);
    ui.live.textContent = text;
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = !text;
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  function refreshNow() {
    if (state.busy) {
      state.again = true; // one more pass right after the one in flight
      return;
    }
    clearTimeout(state.timer);
    refresh();
  }

  function refresh() {
    if (!state.token) return;
    if (document.visibilityState === "hidden") {
      schedule(); // no polling from a background tab; catch up when it shows again
      return;
    }
    var generation = state.generation;
    var selected = state.selected;
    state.busy = true;
    get(listUrl())
      .then(function (result) {
        if (generation !== state.generation) return null;
        if (result.status === 401) {
          signOut("The server refused this operator token (401). Check CURBE_OPS_TOKEN and enter it again.");
          return null;
        }
        if (!result.ok) {
          setLive("reconnecting", "Retrying…");
          showError(
            result.status === 0
              ? "Could not reach the server; retrying every 2 s."
              : P.errorMessage(result, "The actor list failed (HTTP " + result.status + "); retrying every 2 s.")
          );
          return null;
        }
        showError("");
        renderList(result.data);
        setLive("live", "Live · " + timeText(new Date(P.serverNow()).toISOString()));
        ui.login.hidden = true;
        ui.dashboard.hidden = false;
        ui.forget.hidden = false;
        storeToken(state.token); // accepted once: keep it for this tab
        if (!selected) return null;
        return get(detailUrl(selected)).then(function (detail) {
          if (generation !== state.generation) return;
          if (state.selected && state.selected.kind === selected.kind && state.selected.id === selected.id) {
            if (detail.status === 401) signOut("The server refused this operator token (401). Enter it again.");
            else renderDetail(detail);
          }
        });
      })
      .then(function () {
        if (generation !== state.generation) return; // a newer pass owns the polling now
        state.busy = false;
        if (!state.token) return;
        if (state.again) {
          state.again = false;
          refresh();
        } else {
          schedule();
        }
      });
  }

  /** Start polling afresh (a new token or new filters): answers to earlier requests are ignored. */
  function restart() {
    state.generation += 1;
    state.busy = false;
    state.again = false;
    clearTimeout(state.timer);
    refresh();
  }

  function start(token) {
    state.token = token;
    setLive("connecting", "Connecting…");
    restart();
  }

  function signOut(message) {
    state.token = null;
    state.generation += 1;
    state.busy = false;
    state.again = false;
    clearTimeout(state.timer);
    storeToken(null);
    closeDetail();
    ui.rows.textContent = "";
    state.rowsByKey = {};
    ui.dashboard.hidden = true;
    ui.forget.hidden = true;
    ui.login.hidden = false;
    ui.submit.disabled = false;
    ui.tokenInput.value = "";
    ui.tokenError.textContent = message || "";
    ui.tokenError.hidden = !message;
    if (message) ui.tokenInput.setAttribute("aria-invalid", "true");
    ui.tokenInput.focus();
  }

  // --- wiring -------------------------------------------------------------------------------

  var tenantTimer = null;

  ui.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = ui.tokenInput.value.trim();
    if (!token) {
      ui.tokenError.textContent = "Enter the operator token.";
      ui.tokenError.hidden = false;
      ui.tokenInput.setAttribute("aria-invalid", "true");
      ui.tokenInput.focus();
      return;
    }
    ui.tokenError.hidden = true;
    ui.tokenInput.removeAttribute("aria-invalid");
    start(token);
  });

  ui.forget.addEventListener("click", function () {
    signOut("");
  });

  ui.filters.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(tenantTimer);
    restart();
  });

  ui.kind.addEventListener("change", restart);
  ui.tenant.addEventListener("input", function () {
    clearTimeout(tenantTimer);
    tenantTimer = setTimeout(restart, 300);
  });

  ui.detailClose.addEventListener("click", closeDetail);

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && state.token) refreshNow();
  });

  var saved = storedToken();
  if (saved) start(saved);
  else ui.tokenInput.focus();
})();
