/* The agent Inbox: views with live counts, the conversation, its details, live visitors.
 *
 * The server renders an empty shell; this script fills it from the JSON API and keeps it live
 * over the inbox WebSocket (same origin; the session cookie authenticates it, and an open inbox
 * socket makes the agent available to visitors unless they chose Away).
 *
 * State. `convs` caches conversations by id. A full entry comes from a list fetch or a detail
 * fetch (contact, last/first message, unread); an event about a conversation not fetched yet makes
 * a *partial* entry (the event's snapshot only), which is never drawn: when it belongs to the
 * current view, the view is fetched again (debounced) to complete it. Every conversation snapshot
 * carries `lastSeq`; an older snapshot never overwrites a newer one, so the order in which HTTP
 * answers and events arrive does not matter. Which rows a view shows is computed here from the
 * same rules the server uses (`view` predicates below), so a conversation moves between views the
 * moment an event changes it; the counts are re-read from the server, debounced.
 *
 * Reconnects: on every `ready` the page refetches the current view, the counts and the live
 * visitors, and sends `resume` for the open conversation from the last seq it saw; messages are
 * keyed by id (and the composer's by clientMessageId), so nothing is missing or doubled.
 *
 * Everything people typed goes into the DOM with textContent. Times are the server's, shown in
 * the viewer's time zone.
 */
(function () {
  "use strict";
  var P = window.CurbePage;
  var root = document.getElementById("inbox");
  if (!P || !root) return;

  var initial = P.readJson("initial-me") || {};
  var me = initial.agent || {};
  var BASE_TITLE = "Inbox · Curbe Chat";
  var VIEWS = ["open", "unread", "assigned", "unassigned", "waiting", "visitors", "solved", "all"];
  var VIEW_TITLES = {
    open: "Open",
    unread: "Unread",
    assigned: "Assigned to me",
    unassigned: "Unassigned",
    waiting: "Waiting live chats",
    visitors: "Live visitors",
    solved: "Solved",
    all: "All chats",
  };
  var EMPTY = {
    open: ["No open conversations", "Accepted chats and offline messages show up here."],
    unread: ["You're all caught up", "Conversations with visitor messages you have not opened show up here."],
    assigned: ["Nothing assigned to you", "Accept a waiting chat and it shows up here."],
    unassigned: ["No unassigned conversations", "Waiting chats and offline messages nobody has taken show up here."],
    waiting: ["Nobody is waiting", "A new live chat appears here the moment a visitor starts one."],
    visitors: ["No visitors on your site right now", "People browsing a page with your widget show up here, live."],
    solved: ["No solved conversations yet", "Conversations you solve move here."],
    all: ["No conversations yet", "Every chat and offline message of your workspace shows up here."],
  };
  var STATUS_TEXT = { WAITING: "Waiting", OPEN: "Open", SOLVED: "Solved" };
  var DASH = "\u2014";

  // --- elements ---------------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }
  var viewButtons = root.querySelectorAll("[data-view]");
  var listTitle = $("list-title");
  var listNotice = $("list-notice");
  var convList = $("conversation-list");
  var visitorList = $("visitor-list");
  var listEmpty = $("list-empty");
  var listLoading = $("list-loading");
  var threadEmpty = $("thread-empty");
  var threadBox = $("thread");
  var threadName = $("thread-name");
  var threadBadges = $("thread-badges");
  var threadNotice = $("thread-notice");
  var acceptButton = $("thread-accept");
  var solveButton = $("thread-solve");
  var reopenButton = $("thread-reopen");
  var transferButton = $("thread-transfer");
  var emailLink = $("thread-email");
  var messagesBox = $("messages");
  var composer = $("composer");
  var composerText = $("composer-text");
  var composerHint = $("composer-hint");
  var composerSend = $("composer-send");
  var composerAttach = $("composer-attach");
  var composerFile = $("composer-file");
  var detailsEmpty = $("details-empty");
  var detailsBody = $("details-body");
  var indicator = $("live-indicator");
  var myStatus = $("my-status");
  var statusText = myStatus.querySelector(".presence-text");
  var presenceButtons = document.querySelectorAll("[data-presence]");

  // --- state ------------------------------------------------------------------------------

  var view = "open";
  var convs = new Map(); // id -> conversation (list shape; `partial` when only an event's snapshot)
  var visitors = new Map(); // visitorId -> live visitor
  var visitorsLoaded = false;
  var serverCounts = null;
  var openId = null;
  var thread = new Map(); // message id -> message, for the open conversation
  // the cursor of the open conversation's messages before the first one here (null: all here):
  // a conversation opens with its latest 200 messages, "Load earlier messages" reads back
  var threadEarlier = null;
  var threadDeep = false; // earlier pages were loaded: a refreshed detail keeps their cursor
  var pending = new Map(); // clientMessageId -> {clientMessageId, text, state, error}
  var threadNotes = new Map(); // the open conversation's internal notes: id -> note
  var notesSerial = 0;
  var noteMode = false; // the composer writes internal notes
  var mentionsNew = 0; // notes naming this agent since the Mentions list was last opened
  // who is typing where (never the text): conversationId -> Map(senderId -> {senderType, name,
  // timer}); an entry goes on "off", on that sender's message, or when its expiry passes
  var typingNow = new Map();
  var typingIndicator = $("typing-indicator");
  var seqSeen = {}; // conversation id -> highest seq of the events and messages this page got
  var accepting = {}; // conversation id -> true while an accept is in flight
  var inflight = 0; // list fetches running; events wait in `buffered` meanwhile
  var buffered = [];
  var viewFetchTimer = null;
  var countsTimer = null;
  var live = false;
  var viewLoaded = false; // the current view's list arrived at least once
  // A view comes a page at a time (200 rows); "Load more" asks for the next. viewCursor is the
  // server's nextCursor after the deepest page loaded (null: every row is here); viewEdge is that
  // page's last row: rows past it are not shown until their page is loaded (a refetch of the
  // first page judges only the rows up to its own last row).
  var viewCursor = null;
  var viewEdge = null;
  var viewDeep = false; // "Load more" went past the first page
  var desiredPresence = "online";
  var newChats = new Set(); // waiting chats that arrived since the agent last looked

  // --- small helpers ----------------------------------------------------------------------

  function el(tag, className, text) {
    return P.el(tag, className, text);
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function safeHttpUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var u = new URL(value);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function initials(name) {
    var words = String(name || "").trim().split(/\s+/).filter(Boolean);
    var out = words
      .slice(0, 2)
      .map(function (w) {
        return Array.from(w)[0] || "";
      })
      .join("");
    return out.toUpperCase() || "?";
  }

  function hue(text) {
    var h = 0;
    var s = String(text || "");
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) % 360;
    return h;
  }

  function avatarFor(name, key) {
    var a = el("span", "avatar", initials(name));
    a.setAttribute("aria-hidden", "true");
    a.style.setProperty("--avatar-hue", String(hue(key || name)));
    return a;
  }

  function displayName(c) {
    return (c && c.contact && c.contact.displayName) || "Visitor";
  }

  function ts(iso) {
    var t = Date.parse(iso || "");
    return isNaN(t) ? 0 : t;
  }

  function timeEl(iso) {
    var t = el("time", "stamp", P.shortTime(iso));
    t.setAttribute("datetime", iso || "");
    t.title = P.exactTime(iso);
    return t;
  }

  function statusBadge(status, kind) {
    // an offline message is a ticket: unanswered, not a live chat "waiting" for Accept
    var label = kind === "offline_message" && status === "WAITING" ? "To answer" : STATUS_TEXT[status] || status;
    return el("span", "status-badge conv-status status-" + String(status || "").toLowerCase(), label);
  }

  var say = P.say;
  var on401 = P.on401;

  // --- agents who left with open chats (flagged in the list) ---------------------------------

  var offlineAgents = {}; // agentId -> true while they have no inbox open (from events)

  function agentOffline(c) {
    var known = offlineAgents[c.assignee.id];
    if (known !== undefined) return known;
    return c.assigneeOnline === false; // as the server saw it when the list was fetched
  }

  // --- which view a conversation is in (the server's rules, docs/api.md) -----------------

  /** Whether the server puts ``c`` in view ``v`` (its ``views``, from the last list or detail
   * fetch). The rules live on the server only (storage/queries.py VIEW_RULES); an event marks the
   * conversation stale and the view is fetched again. */
  function inView(c, v) {
    return !!(c.views && c.views.indexOf(v) !== -1);
  }

  function byRecent(a, b) {
    var d = ts(b.updatedAt) - ts(a.updatedAt);
    if (d) return d;
    return a.id > b.id ? -1 : a.id < b.id ? 1 : 0; // as the server pages them: id, down
  }

  // --- the conversation cache -------------------------------------------------------------

  function seen(cid, seq) {
    if (typeof seq === "number" && seq > (seqSeen[cid] || 0)) seqSeen[cid] = seq;
  }

  var SNAPSHOT_KEYS = [
    "tenantId",
    "widgetId",
    "visitorId",
    "kind",
    "status",
    "assignee",
    "createdAt",
    "updatedAt",
    "solvedAt",
    "waitDeadline",
    "waitTimedOut",
    "lastSeq",
  ];

  /** Apply a conversation snapshot (an event's, or an action's answer) unless it is older. */
  function applySnapshot(snap) {
    if (!snap || typeof snap.id !== "string") return null;
    // no seen() here: a snapshot (an action's answer, a list row) tells where the conversation
    // is, not which of its events this page got; resuming from its lastSeq would skip a
    // message that arrived while the socket was down
    var cur = convs.get(snap.id);
    if (!cur) {
      cur = { id: snap.id, partial: true, unread: false, lastSeq: -1 };
      convs.set(snap.id, cur);
    }
    if (typeof snap.lastSeq === "number" && snap.lastSeq < cur.lastSeq) return cur;
    var wasWaiting = cur.status === "WAITING";
    SNAPSHOT_KEYS.forEach(function (k) {
      if (k in snap) cur[k] = snap[k];
    });
    if (wasWaiting && cur.status !== "WAITING") newChats.delete(cur.id);
    cur.stale = true; // its views may have changed: the next fetch of the view tells
    return cur;
  }

  /** A full row from a list or detail fetch. */
  function applyRow(row) {
    var cur = convs.get(row.id);
    // the visitor's read mark only moves forward, whichever answer or event brought it
    var mark = Math.max((cur && cur.visitorLastReadSeq) || 0, row.visitorLastReadSeq || 0);
    if (cur && !cur.partial && typeof cur.lastSeq === "number" && row.lastSeq < cur.lastSeq) {
      cur.visitorLastReadSeq = mark;
      return cur; // an event already told us something newer
    }
    var next = {};
    Object.keys(row).forEach(function (k) {
      if (k !== "messages") next[k] = row[k];
    });
    if (cur && cur.lastSeq > row.lastSeq) {
      SNAPSHOT_KEYS.forEach(function (k) {
        if (k in cur) next[k] = cur[k];
      });
    }
    if (!("unread" in next)) next.unread = cur ? !!cur.unread : false;
    if (cur) {
      // a list row's message lacks senderId/senderName; keep the full one an event brought
      ["lastMessage", "firstMessage"].forEach(function (k) {
        var had = cur[k];
        if (had && next[k] && had.id === next[k].id && had.senderId && !next[k].senderId) next[k] = had;
      });
    }
    next.partial = false;
    next.stale = false;
    next.visitorLastReadSeq = mark;
    if (cur && cur.rating && !("rating" in row)) next.rating = cur.rating; // a list row has none
    convs.set(row.id, next);
    return next;
  }

  // --- counts -------------------------------------------------------------------------------

  function renderCounts() {
    VIEWS.forEach(function (v) {
      var n;
      if (v === "visitors") n = liveVisitorCount();
      else n = serverCounts ? serverCounts[v] : 0;
      var button = root.querySelector('[data-view="' + v + '"]');
      var count = button && button.querySelector(".count");
      if (!count) return;
      var text = String(n || 0);
      if (count.textContent !== text) count.textContent = text;
      button.classList.toggle("has-items", (n || 0) > 0);
    });
  }

  function fetchCounts() {
    clearTimeout(countsTimer);
    countsTimer = null;
    return P.api("GET", "/api/chat/conversations/counts").then(function (result) {
      if (on401(result)) return;
      if (result.ok && result.data && result.data.counts) {
        serverCounts = result.data.counts;
        renderCounts();
      }
    });
  }

  function scheduleCounts() {
    if (countsTimer !== null) return;
    countsTimer = setTimeout(fetchCounts, 200);
  }

  // --- the list -----------------------------------------------------------------------------

  var rowEls = new Map(); // id -> {li, sig}

  function preview(c) {
    var m = c.status === "WAITING" && c.firstMessage ? c.firstMessage : c.lastMessage;
    if (!m) return "";
    // a file's message has no text: its name stands for it
    var text = m.text || (m.attachments && m.attachments.length ? "\ud83d\udcce " + m.attachments[0].name : "");
    if (m.senderType === "agent" && c.status !== "WAITING") {
      return (m.senderId === me.id ? "You" : m.senderName || "Agent") + ": " + text;
    }
    return text;
  }

  /** "Carlos is typing…" for a conversation with someone typing in it (not this agent), or null. */
  function typingText(c) {
    var senders = typingNow.get(c.id);
    if (!senders || !senders.size) return null;
    var names = Array.from(senders.values()).map(function (t) {
      return t.senderType === "visitor" ? displayName(c) : t.name || "An agent";
    });
    return names.join(", ") + (names.length > 1 ? " are typing…" : " is typing…");
  }

  function rowSig(c) {
    return JSON.stringify([
      typingText(c),
      c.status,
      c.kind,
      c.assignee && c.assignee.id,
      c.assignee && c.assignee.name,
      displayName(c),
      preview(c),
      !!c.unread,
      c.createdAt,
      c.updatedAt,
      c.lastMessage && c.lastMessage.createdAt,
      c.waitTimedOut,
      c.id === openId,
      !!accepting[c.id],
    ]);
  }

  function buildRow(c, li) {
    li.className = "conv-row" + (c.unread ? " is-unread" : "") + (c.id === openId ? " is-active" : "");
    li.setAttribute("data-conversation-id", c.id);
    li.setAttribute("data-status", c.status);
    li.setAttribute("data-kind", c.kind);
    li.setAttribute("data-unread", c.unread ? "true" : "false");

    var open = el("button", "conv-open");
    open.type = "button";
    open.setAttribute("data-action", "open");
    if (c.id === openId) open.setAttribute("aria-current", "true");

    var top = el("span", "conv-top");
    top.appendChild(avatarFor(displayName(c), c.visitorId));
    var name = el("span", "conv-name", displayName(c));
    top.appendChild(name);
    if (c.unread) {
      var dot = el("span", "unread-dot");
      dot.title = "Unread";
      dot.appendChild(el("span", "sr-only", "Unread"));
      top.appendChild(dot);
    }
    var when = el("span", "conv-time");
    if (c.status === "WAITING" && c.kind === "live_chat") {
      when.setAttribute("data-waited-since", c.createdAt || "");
      when.textContent = waitedText(c.createdAt);
    } else {
      var at = (c.lastMessage && c.lastMessage.createdAt) || c.updatedAt;
      when.setAttribute("data-relative", at || "");
      when.textContent = P.relativeTime(at);
    }
    when.title = P.exactTime(c.status === "WAITING" ? c.createdAt : (c.lastMessage && c.lastMessage.createdAt) || c.updatedAt);
    top.appendChild(when);
    open.appendChild(top);

    var typing = typingText(c);
    var text = preview(c);
    if (typing) open.appendChild(el("span", "conv-preview is-typing", typing));
    else open.appendChild(el("span", "conv-preview" + (text ? "" : " muted"), text || "No messages yet"));

    var badges = el("span", "conv-badges");
    badges.appendChild(statusBadge(c.status, c.kind));
    if (c.kind === "offline_message") badges.appendChild(el("span", "kind-badge", "Offline message"));
    if (c.status === "WAITING" && c.waitTimedOut && c.kind === "live_chat") {
      badges.appendChild(el("span", "kind-badge kind-warn", "Past wait time"));
    }
    if (c.assignee && c.status !== "WAITING") {
      badges.appendChild(
        el("span", "conv-assignee muted", c.assignee.id === me.id ? "You" : c.assignee.name)
      );
    }
    if (c.status === "OPEN" && c.assignee && agentOffline(c)) {
      badges.appendChild(el("span", "kind-badge kind-warn agent-offline", "Agent offline"));
    }
    open.appendChild(badges);

    li.replaceChildren(open);
    if (c.status === "WAITING" && c.kind === "live_chat") {
      var actions = el("div", "conv-actions");
      var accept = el("button", "btn btn-primary btn-small", accepting[c.id] ? "Accepting…" : "Accept Chat");
      accept.type = "button";
      accept.setAttribute("data-action", "accept");
      accept.disabled = !!accepting[c.id];
      actions.appendChild(accept);
      li.appendChild(actions);
    }
  }

  function waitedText(since) {
    var t = ts(since);
    if (!t) return "";
    return "waited " + P.duration((P.serverNow() - t) / 1000);
  }

  function idOf(c) {
    return c.id;
  }

  function visitorIdOf(v) {
    return v.visitorId;
  }

  /** Make `list` show `items` in this order, reusing each item's <li> (looked up in `els` by
   * key) and rebuilding it only when its signature changed. Returns the set of keys shown. */
  function reconcile(list, els, items, keyOf, sigOf, build) {
    var keep = new Set();
    items.forEach(function (item, position) {
      var key = keyOf(item);
      keep.add(key);
      var entry = els.get(key);
      var sig = sigOf(item);
      if (!entry) {
        entry = { li: document.createElement("li"), sig: null };
        els.set(key, entry);
      }
      if (entry.sig !== sig) {
        build(item, entry.li);
        entry.sig = sig;
      }
      var at = list.children[position];
      if (at !== entry.li) list.insertBefore(entry.li, at || null);
    });
    els.forEach(function (entry, key) {
      if (!keep.has(key)) {
        entry.li.remove();
        els.delete(key);
      }
    });
    return keep;
  }

  function renderList() {
    if (view === "visitors") {
      convList.hidden = true;
      moreConversations.hidden = true;
      renderVisitors();
      return;
    }
    visitorList.hidden = true;
    moreVisitors.hidden = true;
    convList.hidden = false;
    var rows = [];
    convs.forEach(function (c) {
      if (!c.partial && inView(c, view)) rows.push(c);
    });
    rows.sort(byRecent);
    if (viewEdge) {
      rows = rows.filter(function (c) {
        return byRecent(c, viewEdge) <= 0;
      });
    }
    var focusedAction = null;
    var focusedId = null;
    var active = document.activeElement;
    if (active && convList.contains(active)) {
      var holder = active.closest("[data-conversation-id]");
      focusedId = holder && holder.getAttribute("data-conversation-id");
      focusedAction = active.getAttribute("data-action");
    }
    var keep = reconcile(convList, rowEls, rows, idOf, rowSig, buildRow);
    if (focusedId && keep.has(focusedId) && focusedAction) {
      var again = rowEls.get(focusedId).li.querySelector('[data-action="' + focusedAction + '"]');
      if (again && document.activeElement !== again) again.focus();
    }
    showEmpty(rows.length === 0 && viewLoaded);
    listLoading.hidden = !(rows.length === 0 && !viewLoaded);
    moreConversations.hidden = !(viewLoaded && viewCursor !== null);
  }

  function showEmpty(empty) {
    listEmpty.hidden = !empty;
    if (empty) {
      $("list-empty-title").textContent = EMPTY[view][0];
      $("list-empty-text").textContent = EMPTY[view][1];
    }
  }

  var viewFetchSerial = 0;

  /** Fetch the current view's list; the answer is the truth for that view. */
  function fetchView() {
    clearTimeout(viewFetchTimer);
    viewFetchTimer = null;
    if (view === "visitors") return fetchVisitors();
    var asked = view;
    var serial = ++viewFetchSerial;
    inflight += 1;
    renderList();
    return P.api("GET", "/api/chat/conversations?view=" + encodeURIComponent(asked)).then(function (result) {
      inflight -= 1;
      if (on401(result)) return;
      if (result.ok && result.data && Array.isArray(result.data.conversations)) {
        var got = new Set();
        var listed = result.data.conversations;
        listed.forEach(function (row) {
          got.add(row.id);
          applyRow(row);
        });
        // the rows this page speaks for: all of them on the last page, else those up to its last
        var edge = result.data.nextCursor && listed.length ? listed[listed.length - 1] : null;
        if (serial === viewFetchSerial && asked === view) {
          viewLoaded = true;
          if (!edge) {
            viewCursor = null;
            viewEdge = null;
            viewDeep = false;
          } else if (!viewDeep) {
            viewCursor = result.data.nextCursor;
            viewEdge = { updatedAt: edge.updatedAt, id: edge.id };
          }
          // what we hold for this view but the server does not list has moved on (or was a
          // wrong guess of a partial entry): forget it; events that follow tell us anew
          Array.from(convs.values()).forEach(function (c) {
            if (edge && !c.partial && byRecent(c, edge) > 0) {
              c.stale = false;
              return; // past this page: another page's to judge
            }
            if (!got.has(c.id) && (inView(c, asked) || c.stale || c.partial)) {
              if (c.views) c.views = c.views.filter(function (v) { return v !== asked; });
              if (c.id === openId) {
                if (asked === "unread") c.unread = false;
                loadDetail(c.id, false);
              } else if (c.partial || !c.views || !c.views.length) convs.delete(c.id);
            }
            c.stale = false; // its place in this view is known now
          });
        }
      } else if (result.status === 0 || result.status >= 500) {
        scheduleViewFetch(2000);
      }
      if (inflight === 0) flush();
      renderList();
    });
  }

  var moreConversations = $("conversations-more");
  var moreConversationsButton = $("conversations-more-button");

  function loadMoreConversations() {
    if (viewCursor === null || view === "visitors") return;
    var asked = view;
    var serial = viewFetchSerial; // a view switch or a fresh first page makes this stale
    moreConversationsButton.disabled = true;
    moreConversationsButton.textContent = "Loading\u2026";
    var path = "/api/chat/conversations?view=" + encodeURIComponent(asked) + "&after=" + encodeURIComponent(viewCursor);
    P.api("GET", path).then(function (result) {
      moreConversationsButton.disabled = false;
      moreConversationsButton.textContent = "Load more conversations";
      if (on401(result)) return;
      if (serial !== viewFetchSerial || asked !== view) return;
      if (!(result.ok && result.data && Array.isArray(result.data.conversations))) {
        scheduleViewFetch(); // a cursor the server no longer takes: from the top again
        return;
      }
      var listed = result.data.conversations;
      listed.forEach(applyRow);
      viewDeep = true;
      viewCursor = result.data.nextCursor || null;
      var last = listed[listed.length - 1];
      viewEdge = viewCursor && last ? { updatedAt: last.updatedAt, id: last.id } : null;
      renderList();
    });
  }

  moreConversationsButton.addEventListener("click", loadMoreConversations);

  function scheduleViewFetch(delay) {
    if (viewFetchTimer !== null) return;
    viewFetchTimer = setTimeout(fetchView, delay === undefined ? 200 : delay);
  }

  /** A conversation an event told us about (new, or changed) is placed by fetching the view
   * again: the server says which views hold it. */
  function needsFetch() {
    var missing = false;
    convs.forEach(function (c) {
      if (c.partial || c.stale) missing = true;
    });
    if (missing && view !== "visitors") scheduleViewFetch();
  }

  // --- live visitors ------------------------------------------------------------------------

  var visitorEls = new Map(); // visitorId -> {li, sig}

  function timeOnSite(v) {
    var first = ts(v.firstSeenAt);
    if (first) return Math.max(0, Math.floor((P.serverNow() - first) / 1000));
    return Math.max(0, Math.floor((v.timeOnSiteSeconds || 0) + (Date.now() - (v._receivedAt || Date.now())) / 1000));
  }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = h ? ("0" + m).slice(-2) : String(m);
    return (h ? h + ":" : "") + mm + ":" + ("0" + sec).slice(-2);
  }

  function visitorSig(v) {
    return JSON.stringify([v.displayName, v.currentUrl, v.pageTitle, v.location, v.inChat, v.conversationId, v.firstSeenAt]);
  }

  function buildVisitor(v, li) {
    li.className = "visitor-row";
    li.setAttribute("data-visitor-id", v.visitorId);
    li.setAttribute("data-in-chat", v.inChat ? "true" : "false");
    var main = el("div", "visitor-main");
    var top = el("div", "conv-top");
    top.appendChild(avatarFor(v.displayName, v.visitorId));
    top.appendChild(el("span", "conv-name visitor-name", v.displayName || "Visitor"));
    if (v.inChat) top.appendChild(el("span", "kind-badge in-chat-badge", "In chat"));
    main.appendChild(top);

    var url = safeHttpUrl(v.currentUrl);
    var where = el("div", "visitor-url");
    if (url) {
      var a = el("a", "", v.currentUrl);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.title = v.pageTitle ? v.pageTitle + " \u2014 " + v.currentUrl : v.currentUrl;
      where.appendChild(a);
    } else {
      where.appendChild(el("span", "muted", v.currentUrl || DASH));
    }
    main.appendChild(where);

    var facts = el("div", "visitor-facts muted");
    var onSite = el("span", "time-on-site");
    var secs = timeOnSite(v);
    onSite.setAttribute("data-seconds", String(secs));
    onSite.textContent = clock(secs);
    var siteFact = el("span", "visitor-fact", "On site ");
    siteFact.appendChild(onSite);
    var placeFact = el("span", "visitor-fact", "Location ");
    placeFact.appendChild(el("span", "visitor-location", v.location || DASH));
    facts.append(siteFact, placeFact);
    main.appendChild(facts);

    var actions = el("div", "conv-actions");
    if (v.inChat && v.conversationId) {
      var openChat = el("button", "btn btn-small", "Open chat");
      openChat.type = "button";
      openChat.setAttribute("data-action", "open-chat");
      actions.appendChild(openChat);
    } else {
      var start = el("button", "btn btn-primary btn-small", "Start chat");
      start.type = "button";
      start.setAttribute("data-action", "start-chat");
      actions.appendChild(start);
    }
    li.replaceChildren(main, actions);
  }

  // Live visitors come a page at a time (a flood of visitors must not make one answer, or this
  // list, unbounded): the first page, then "Load more" with the server's cursor. While more pages
  // wait, a visitor not loaded yet is left for its page (they come in arrival order) and the
  // count is the server's, counted in SQL.
  var visitorsCursor = null; // nextCursor of the last page loaded; null: every visitor is here
  var visitorsTotal = 0;
  var moreVisitors = $("visitors-more");
  var moreVisitorsButton = $("visitors-more-button");

  function liveVisitorCount() {
    if (visitorsLoaded && visitorsCursor === null) return visitors.size;
    if (serverCounts) return serverCounts.liveVisitors;
    return visitorsTotal;
  }

  function byArrival(a, b) {
    var d = ts(a.firstSeenAt) - ts(b.firstSeenAt);
    return d || (a.visitorId < b.visitorId ? -1 : 1);
  }

  function renderVisitors() {
    visitorList.hidden = false;
    var rows = Array.from(visitors.values()).sort(byArrival);
    reconcile(visitorList, visitorEls, rows, visitorIdOf, visitorSig, buildVisitor);
    showEmpty(rows.length === 0 && visitorsLoaded);
    listLoading.hidden = visitorsLoaded || rows.length > 0;
    moreVisitors.hidden = visitorsCursor === null;
    if (visitorsCursor !== null) {
      var text = "Showing " + rows.length + " of " + Math.max(liveVisitorCount(), rows.length);
      if ($("visitors-shown").textContent !== text) $("visitors-shown").textContent = text;
    }
  }

  var visitorFetchSerial = 0;

  function visitorPage(after) {
    var path = "/api/chat/visitors/live";
    return P.api("GET", after ? path + "?after=" + encodeURIComponent(after) : path);
  }

  function fetchVisitors() {
    var serial = ++visitorFetchSerial;
    inflight += 1;
    return visitorPage(null).then(function (result) {
      inflight -= 1;
      if (on401(result)) return;
      if (serial === visitorFetchSerial && result.ok && result.data && Array.isArray(result.data.visitors)) {
        visitors = new Map();
        keepVisitorPage(result.data);
        visitorsLoaded = true;
      }
      if (inflight === 0) flush();
      renderCounts();
      if (view === "visitors") renderList();
    });
  }

  function keepVisitorPage(page) {
    var now = Date.now();
    page.visitors.forEach(function (v) {
      v._receivedAt = now;
      visitors.set(v.visitorId, v);
    });
    visitorsCursor = page.nextCursor || null;
    visitorsTotal = page.total || 0;
  }

  function loadMoreVisitors() {
    if (visitorsCursor === null) return;
    var serial = visitorFetchSerial; // a fresh first page since makes this answer stale
    moreVisitorsButton.disabled = true;
    moreVisitorsButton.textContent = "Loading\u2026";
    visitorPage(visitorsCursor).then(function (result) {
      moreVisitorsButton.disabled = false;
      moreVisitorsButton.textContent = "Load more visitors";
      if (on401(result)) return;
      if (serial !== visitorFetchSerial) return;
      if (result.ok && result.data && Array.isArray(result.data.visitors)) {
        keepVisitorPage(result.data);
      } else {
        fetchVisitors(); // a cursor the server no longer takes: start again from the top
        return;
      }
      renderCounts();
      if (view === "visitors") renderList();
      var rows = visitorList.querySelectorAll(".visitor-row");
      if (view === "visitors" && visitorsCursor === null && rows.length) {
        var last = rows[rows.length - 1].querySelector("button");
        if (last) last.focus(); // the button went away: keep the keyboard in the list
      }
    });
  }

  moreVisitorsButton.addEventListener("click", loadMoreVisitors);

  function storeVisitor(data) {
    if (!data || typeof data.visitorId !== "string") return;
    if (visitorsCursor !== null) scheduleCounts(); // more pages wait: the server counts
    if (data.online === false) {
      visitors.delete(data.visitorId);
    } else if (visitorsCursor !== null && !visitors.has(data.visitorId)) {
      return; // on a page not loaded yet (visitors come in arrival order)
    } else {
      var v = {};
      Object.keys(data).forEach(function (k) {
        if (k !== "online") v[k] = data[k];
      });
      v._receivedAt = Date.now();
      visitors.set(v.visitorId, v);
    }
  }

  // one visitor_presence_update, or the visitors of a visitor_presence_batch: rendered once
  function applyVisitors(list) {
    list.forEach(storeVisitor);
    renderCounts();
    if (view === "visitors") renderList();
  }

  // --- live clocks --------------------------------------------------------------------------

  function tick() {
    convList.querySelectorAll("[data-waited-since]").forEach(function (node) {
      var text = waitedText(node.getAttribute("data-waited-since"));
      if (node.textContent !== text) node.textContent = text;
    });
    convList.querySelectorAll("[data-relative]").forEach(function (node) {
      var text = P.relativeTime(node.getAttribute("data-relative"));
      if (node.textContent !== text) node.textContent = text;
    });
    if (view === "visitors") {
      visitorList.querySelectorAll("[data-visitor-id]").forEach(function (li) {
        var v = visitors.get(li.getAttribute("data-visitor-id"));
        var node = li.querySelector(".time-on-site");
        if (!v || !node) return;
        var secs = timeOnSite(v);
        if (node.getAttribute("data-seconds") !== String(secs)) {
          node.setAttribute("data-seconds", String(secs));
          node.textContent = clock(secs);
        }
      });
    }
  }

  // --- the conversation pane ----------------------------------------------------------------

  function openConversation(id, options) {
    options = options || {};
    if (openId !== id) {
      if (found && found.conversationId !== id) found = null;
      typingStopped();
      closeCanned();
      threadNotes = new Map();
      openId = id;
      thread = new Map();
      threadEarlier = null;
      threadDeep = false;
      pending = new Map();
      say(threadNotice, "");
      composerText.value = "";
      messagesBox.replaceChildren();
    }
    newChats.delete(id);
    updateTitle();
    writeHash();
    renderPane();
    renderList();
    loadDetail(id, true);
    if (options.focus) composerText.focus();
  }

  function closeConversation() {
    typingStopped();
    closeCanned();
    openId = null;
    thread = new Map();
    threadEarlier = null;
    threadDeep = false;
    pending = new Map();
    writeHash();
    renderPane();
    renderList();
  }

  var detailSerial = 0;

  function loadDetail(id, markAsRead) {
    var serial = ++detailSerial;
    return P.api("GET", "/api/chat/conversations/" + encodeURIComponent(id)).then(function (result) {
      if (on401(result)) return;
      if (id !== openId) return;
      if (result.status === 404) {
        say(threadNotice, "This conversation does not exist, or it is not in your workspace.", "error");
        convs.delete(id);
        openId = null;
        writeHash();
        renderPane();
        renderList();
        return;
      }
      if (!result.ok || !result.data) {
        if (serial === detailSerial) say(threadNotice, P.errorMessage(result, "Could not load this conversation."), "error");
        return;
      }
      var detail = result.data;
      var msgs = Array.isArray(detail.messages) ? detail.messages : [];
      var cur = convs.get(id);
      var row = {};
      Object.keys(detail).forEach(function (k) {
        if (k !== "messages" && k !== "earlierMessages") row[k] = detail[k];
      });
      // the first message listed is the conversation's first only when none is earlier
      row.firstMessage = (detail.earlierMessages ? null : msgs[0]) || (cur && cur.firstMessage) || null;
      if (!threadDeep) threadEarlier = detail.earlierMessages || null;
      row.lastMessage = msgs[msgs.length - 1] || (cur && cur.lastMessage) || null;
      row.unread = cur ? !!cur.unread : false;
      applyRow(row);
      msgs.forEach(function (m) {
        addMessage(m, true);
      });
      if (markAsRead) markRead(id);
      renderPane();
      renderList();
      loadNotes(id);
      reachFound();
    });
  }

  function markRead(id, seq) {
    if (document.visibilityState !== "visible") return;
    var c = convs.get(id);
    if (c && c.unread) {
      c.unread = false;
      renderList();
    }
    P.api("POST", "/api/chat/conversations/" + encodeURIComponent(id) + "/read", seq ? { seq: seq } : {}).then(
      function (result) {
        if (on401(result)) return;
        scheduleCounts();
      }
    );
  }

  function addMessage(m, quiet) {
    if (!m || typeof m.id !== "string" || m.conversationId !== openId) return;
    seen(m.conversationId, m.seq);
    if (m.clientMessageId && pending.has(m.clientMessageId) && m.senderType === "agent") {
      pending.delete(m.clientMessageId);
    }
    if (thread.has(m.id)) {
      if (!quiet) renderThread();
      return;
    }
    thread.set(m.id, m);
    renderThread();
  }

  function noteItem(n) {
    var li = el("li", "msg msg-note");
    li.setAttribute("data-note-id", n.id);
    var meta = el("div", "msg-meta");
    meta.appendChild(el("span", "note-label", "Internal note"));
    meta.appendChild(el("span", "msg-sender", n.authorName));
    if (n.createdAt) meta.appendChild(timeEl(n.createdAt));
    li.append(meta, el("div", "msg-text", n.text));
    return li;
  }

  function messageItem(m, who, state) {
    var li = el("li", "msg msg-" + (m.senderType === "agent" ? "agent" : "visitor"));
    if (m.id) li.setAttribute("data-message-id", m.id);
    if (m.seq) li.setAttribute("data-seq", String(m.seq));
    if (m.clientMessageId) li.setAttribute("data-client-message-id", m.clientMessageId);
    li.setAttribute("data-sender", m.senderType);
    if (found && m.seq === found.seq && m.conversationId === found.conversationId) {
      li.classList.add("msg-found");
      li.setAttribute("data-found", "true");
    }
    var meta = el("div", "msg-meta");
    meta.appendChild(el("span", "msg-sender", who));
    if (m.createdAt) meta.appendChild(timeEl(m.createdAt));
    li.appendChild(meta);
    if (m.text || !(m.attachments || m.upload)) li.appendChild(el("div", "msg-text", m.text));
    (m.attachments || []).forEach(function (a) {
      li.appendChild(fileItem(m.conversationId, a));
    });
    if (m.upload) li.appendChild(uploadItem(m.upload));
    if (state) {
      li.classList.add("msg-" + state.state);
      li.setAttribute("data-state", state.state);
      var line = el("div", "msg-state");
      if (state.state === "sending") {
        line.textContent = "Sending…";
      } else {
        line.appendChild(el("span", "", "Failed" + (state.error ? " (" + state.error + ")" : "") + " \u2014 "));
        var retry = el("button", "link-button", "Retry");
        retry.type = "button";
        retry.setAttribute("data-retry", state.clientMessageId);
        line.appendChild(retry);
      }
      li.appendChild(line);
    }
    return li;
  }

  /** An attachment in the thread: an image's thumbnail opening the image, else a download link.
   * Same-origin addresses: the session cookie authorises them. */
  function fileItem(cid, a) {
    var url = "/api/chat/conversations/" + encodeURIComponent(cid) + "/attachments/" + encodeURIComponent(a.id);
    var link = el("a", "msg-file" + (a.thumbnail ? " msg-image" : ""));
    link.href = url;
    link.setAttribute("data-attachment-id", a.id);
    if (a.thumbnail) {
      link.target = "_blank";
      link.rel = "noopener";
      var img = el("img");
      img.src = url + "/thumbnail";
      img.alt = a.name;
      if (a.width && a.height) {
        var scale = Math.min(1, 240 / Math.max(a.width, a.height));
        img.width = Math.round(a.width * scale);
        img.height = Math.round(a.height * scale);
      }
      link.appendChild(img);
      link.setAttribute("aria-label", "Open image " + a.name);
    } else {
      link.setAttribute("download", a.name);
      link.appendChild(el("span", "msg-file-name", a.name));
      link.appendChild(el("span", "msg-file-size muted", P.fileSize(a.size)));
    }
    return link;
  }

  function uploadItem(u) {
    var box = el("div", "msg-upload");
    box.appendChild(el("span", "msg-file-name", u.name));
    if (u.state === "sending") {
      var bar = el("progress", "msg-progress");
      bar.max = 100;
      bar.value = Math.round(u.progress * 100);
      bar.setAttribute("aria-label", "Uploading " + u.name);
      box.appendChild(bar);
    }
    return box;
  }

  composerAttach.addEventListener("click", function () {
    composerFile.value = "";
    composerFile.click();
  });
  composerFile.addEventListener("change", function () {
    var file = composerFile.files && composerFile.files[0];
    if (file && openId) sendFile(openId, file);
  });

  /** Send a file as a message of its own, with its progress in the thread as it goes. */
  function sendFile(cid, file, again) {
    var p = again || { clientMessageId: newId(), text: "", file: file };
    var id = p.clientMessageId;
    p.state = "sending";
    p.error = null;
    p.upload = { name: file.name, progress: 0, state: "sending" };
    pending.set(id, p);
    renderThread();
    var shown = 0;
    var path = "/api/chat/conversations/" + encodeURIComponent(cid) + "/attachments";
    P.upload(path, file, { "X-Client-Message-Id": id }, function (share) {
      p.upload.progress = share;
      if (share - shown >= 0.05 || share === 1) {
        shown = share;
        if (cid === openId) renderThread();
      }
    }).then(function (result) {
      if (on401(result)) return;
      if (result.ok && result.data) {
        pending.delete(id);
        if (cid === openId) addMessage(result.data);
        return;
      }
      p.state = "failed";
      p.upload.state = "failed";
      p.error = result.status === 0 ? "offline" : P.errorMessage(result, "not sent").replace(/\.$/, "");
      if (cid === openId) renderThread();
    });
  }

  function renderThread() {
    var c = convs.get(openId);
    var nearBottom = messagesBox.scrollHeight - messagesBox.scrollTop - messagesBox.clientHeight < 80;
    var items = Array.from(thread.values()).sort(function (a, b) {
      return a.seq - b.seq;
    });
    // "Seen": the latest agent message the visitor's read mark reaches (and all before it)
    var mark = (c && c.visitorLastReadSeq) || 0;
    var seenSeq = 0;
    items.forEach(function (m) {
      if (m.senderType === "agent" && m.seq <= mark) seenSeq = m.seq;
    });
    var entries = items.map(function (m) {
      var who =
        m.senderType === "agent"
          ? m.senderName || "Agent"
          : (c && c.contact && c.contact.displayName) || m.senderName || "Visitor";
      var li = messageItem(m, who, null);
      if (seenSeq && m.seq === seenSeq) {
        li.setAttribute("data-seen", "true");
        li.appendChild(el("div", "msg-seen muted", "Seen"));
      }
      return { at: ts(m.createdAt), node: li };
    });
    // internal notes among the messages, where they were written
    Array.from(threadNotes.values())
      .sort(function (a, b) {
        return ts(a.createdAt) - ts(b.createdAt);
      })
      .forEach(function (n) {
        var at = ts(n.createdAt);
        var i = entries.length;
        while (i > 0 && entries[i - 1].at > at) i--;
        entries.splice(i, 0, { at: at, node: noteItem(n) });
      });
    var nodes = entries.map(function (e) {
      return e.node;
    });
    pending.forEach(function (p) {
      nodes.push(
        messageItem(
          { senderType: "agent", text: p.text, clientMessageId: p.clientMessageId, upload: p.upload },
          me.name || "You",
          p
        )
      );
    });
    if (!nodes.length) {
      var empty = el("li", "msg-empty muted", "No messages yet.");
      nodes.push(empty);
    }
    if (threadEarlier !== null) {
      var earlierItem = el("li", "msg-earlier");
      var earlierButton = el("button", "btn btn-small", "Load earlier messages");
      earlierButton.type = "button";
      earlierButton.id = "thread-earlier";
      earlierButton.addEventListener("click", function () {
        loadEarlier();
      });
      earlierItem.appendChild(earlierButton);
      nodes.unshift(earlierItem);
    }
    // a re-render keeps the keyboard on the message it was on (a search result's, Load earlier's)
    var active = document.activeElement;
    var focusedSeq = active && messagesBox.contains(active) && active.getAttribute("data-seq");
    messagesBox.replaceChildren.apply(messagesBox, nodes);
    if (focusedSeq) {
      var again = messagesBox.querySelector('[data-seq="' + focusedSeq + '"]');
      if (again) {
        again.setAttribute("tabindex", "-1");
        again.focus({ preventScroll: true });
      }
    }
    if (nearBottom || items.length + pending.size <= 1) messagesBox.scrollTop = messagesBox.scrollHeight;
  }

  function loadEarlier(then) {
    var id = openId;
    var cursor = threadEarlier;
    if (!id || cursor === null) return;
    var button = $("thread-earlier");
    if (button) {
      button.disabled = true;
      button.textContent = "Loading\u2026";
    }
    var path = "/api/chat/conversations/" + encodeURIComponent(id) + "/messages?before=" + encodeURIComponent(cursor);
    P.api("GET", path).then(function (result) {
      if (on401(result)) return;
      if (id !== openId || cursor !== threadEarlier) return; // another conversation, or done
      if (!(result.ok && result.data && Array.isArray(result.data.messages))) {
        if (button) {
          button.disabled = false;
          button.textContent = "Load earlier messages";
        }
        say(threadNotice, P.errorMessage(result, "Could not load earlier messages."), "error");
        return;
      }
      // keep the reader where they were: the new messages go above what they see
      var fromBottom = messagesBox.scrollHeight - messagesBox.scrollTop;
      threadEarlier = result.data.earlierMessages || null;
      threadDeep = true;
      result.data.messages.forEach(function (m) {
        if (m && typeof m.id === "string") thread.set(m.id, m);
      });
      renderThread();
      messagesBox.scrollTop = messagesBox.scrollHeight - fromBottom;
      if (typeof then === "function") return then();
      var first = messagesBox.querySelector("[data-message-id]");
      if (first) {
        first.setAttribute("tabindex", "-1");
        first.focus({ preventScroll: true }); // the keyboard lands on the earliest message loaded
      }
    });
  }

  function renderPane() {
    renderTyping();
    var c = openId ? convs.get(openId) : null;
    var ready = !!(c && !c.partial && c.contact);
    threadEmpty.hidden = !!openId;
    threadBox.hidden = !openId;
    detailsEmpty.hidden = ready;
    detailsBody.hidden = !ready;
    if (!openId) {
      root.classList.remove("has-conversation");
      return;
    }
    root.classList.add("has-conversation");
    threadBox.setAttribute("data-conversation-id", openId);
    if (!c || c.partial || !c.contact) {
      threadName.textContent = "Loading…";
      threadBadges.replaceChildren();
      [acceptButton, solveButton, reopenButton, transferButton, emailLink].forEach(function (b) {
        b.hidden = true;
      });
      setComposer(false, "");
      return;
    }
    threadBox.setAttribute("data-status", c.status);
    threadName.textContent = displayName(c);
    var badges = [statusBadge(c.status, c.kind)];
    if (c.kind === "offline_message") badges.push(el("span", "kind-badge", "Offline message"));
    if (c.assignee) {
      badges.push(el("span", "muted thread-assignee", "Assigned to " + (c.assignee.id === me.id ? "you" : c.assignee.name)));
    }
    threadBadges.replaceChildren.apply(threadBadges, badges);

    var offline = c.kind === "offline_message";
    acceptButton.hidden = !(c.status === "WAITING" && !offline);
    acceptButton.disabled = !!accepting[c.id];
    acceptButton.textContent = accepting[c.id] ? "Accepting…" : "Accept Chat";
    solveButton.hidden = c.status === "SOLVED";
    reopenButton.hidden = c.status !== "SOLVED";
    transferButton.hidden = !(c.status === "OPEN" && !offline);
    var email = c.contact && c.contact.email;
    emailLink.hidden = !(offline && email);
    if (offline && email) {
      emailLink.href =
        "mailto:" + encodeURIComponent(email) + "?subject=" + encodeURIComponent("Re: your message");
    }

    if (noteMode) setComposer(true, "Only your team sees internal notes; @Name mentions a colleague. Enter saves it.");
    else if (offline) setComposer(false, email ? "An offline message: the visitor is not in a chat. Reply by email." : "An offline message: the visitor is not in a chat.");
    else if (c.status === "WAITING") setComposer(false, "Accept this chat to reply.");
    else if (c.status === "SOLVED") setComposer(false, "This conversation is solved. Reopen it to reply.");
    else if (c.assignee && c.assignee.id !== me.id) setComposer(true, "Assigned to " + c.assignee.name + ". Enter sends, Shift+Enter adds a line.");
    else setComposer(true, "Enter sends, Shift+Enter adds a line.");

    renderDetails(c);
    if (!thread.size && !pending.size) renderThread();
  }

  function setComposer(enabled, hint) {
    composerText.disabled = !enabled;
    composerSend.disabled = !enabled;
    composerAttach.disabled = !enabled || noteMode;
    composer.classList.toggle("is-disabled", !enabled);
    composerHint.textContent = hint;
  }

  function field(name, value, options) {
    var dd = detailsBody.querySelector('[data-field="' + name + '"]');
    if (!dd) return;
    options = options || {};
    dd.replaceChildren();
    dd.classList.remove("muted");
    if (value === null || value === undefined || value === "") {
      dd.textContent = DASH;
      dd.classList.add("muted");
      return;
    }
    if (options.link) {
      var a = el("a", "", value);
      a.href = options.link;
      if (options.external) {
        a.target = "_blank";
        a.rel = "noopener noreferrer";
      }
      dd.appendChild(a);
    } else if (options.time) {
      dd.appendChild(el("span", "", P.exactTime(value)));
      dd.firstChild.setAttribute("data-at", value);
    } else {
      dd.textContent = String(value);
    }
    if (options.note) dd.appendChild(el("span", "muted field-note", " " + options.note));
  }

  function renderDetails(c) {
    var k = c.contact || {};
    field("status", STATUS_TEXT[c.status] || c.status);
    field("kind", c.kind === "offline_message" ? "Offline message" : "Live chat");
    field("assignee", c.assignee ? c.assignee.name + (c.assignee.id === me.id ? " (you)" : "") : "Unassigned");
    field("chatId", c.id);
    field("created", c.createdAt, { time: true });
    var r = c.rating;
    // the visitor's rating of the solved chat (asked by the widget once it is solved)
    field("rating", r ? "\u2605".repeat(r.score) + "\u2606".repeat(5 - r.score) + " " + r.score + "/5" + (r.comment ? " \u2014 \u201c" + r.comment + "\u201d" : "") : null);
    if (k.name) field("name", k.name);
    else field("name", k.displayName, { note: "(no name given)" });
    field("email", k.email, k.email ? { link: "mailto:" + encodeURIComponent(k.email) } : {});
    field("phone", k.phone);
    field("visitorId", k.visitorId || c.visitorId);
    field("ip", k.ip);
    var url = safeHttpUrl(k.currentUrl);
    field("currentUrl", k.currentUrl, url ? { link: url, external: true } : {});
    field("browser", k.browser);
    field("os", k.os);
    field("location", k.location);
  }

  // --- actions --------------------------------------------------------------------------------

  function accept(id) {
    if (accepting[id]) return;
    accepting[id] = true;
    renderList();
    if (id === openId) renderPane();
    P.api("POST", "/api/chat/conversations/" + encodeURIComponent(id) + "/accept").then(function (result) {
      delete accepting[id];
      if (on401(result)) return;
      if (result.ok && result.data) {
        applySnapshot(result.data);
        say(listNotice, "");
        openConversation(id, { focus: true });
        scheduleCounts();
        return;
      }
      var err = result.data && result.data.error;
      if (result.status === 409 && err && err.code === "already_assigned") {
        var who = (err.assignee && err.assignee.name) || "A colleague";
        var c = convs.get(id);
        if (c && c.status === "WAITING") {
          c.status = "OPEN"; // the event with the same news follows; it has a higher seq
          c.assignee = err.assignee ? { id: err.assignee.id, name: err.assignee.name, avatarUrl: null } : c.assignee;
        }
        newChats.delete(id);
        updateTitle();
        say(listNotice, who + " accepted this chat", "error");
        if (id === openId) say(threadNotice, who + " accepted this chat", "error");
        scheduleCounts();
      } else {
        say(listNotice, P.errorMessage(result, "Could not accept this chat."), "error");
        scheduleViewFetch();
      }
      renderList();
      if (id === openId) renderPane();
    });
  }

  function conversationAction(path, button, failure) {
    var id = openId;
    if (!id) return;
    button.disabled = true;
    P.api("POST", "/api/chat/conversations/" + encodeURIComponent(id) + "/" + path).then(function (result) {
      button.disabled = false;
      if (on401(result)) return;
      if (result.ok && result.data) {
        applySnapshot(result.data);
        say(threadNotice, "");
        scheduleCounts();
      } else {
        say(threadNotice, P.errorMessage(result, failure), "error");
      }
      renderList();
      if (id === openId) renderPane();
    });
  }

  function postPending(id, p) {
    p.state = "sending";
    p.error = null;
    renderThread();
    P.api("POST", "/api/chat/conversations/" + encodeURIComponent(id) + "/messages", {
      text: p.text,
      clientMessageId: p.clientMessageId,
    }).then(function (result) {
      if (on401(result)) return;
      if (id !== openId) return;
      if (result.ok && result.data) {
        var c = convs.get(id);
        if (c) c.unread = false; // answering is reading
        addMessage(result.data);
        scheduleCounts();
        return;
      }
      if (!pending.has(p.clientMessageId)) return;
      p.state = "failed";
      p.error = result.status === 0 ? "offline" : P.errorMessage(result, "not sent").replace(/\.$/, "");
      renderThread();
    });
  }

  function send() {
    if (!openId || composerText.disabled) return;
    var text = composerText.value.replace(/^\s+|\s+$/g, "");
    if (!text) return;
    if (noteMode) return sendNote(text);
    var p = { clientMessageId: newId(), text: text, state: "sending", error: null };
    pending.set(p.clientMessageId, p);
    composerText.value = "";
    clearTimeout(typingIdle);
    typingTo = null; // the message ends the typing
    postPending(openId, p);
    messagesBox.scrollTop = messagesBox.scrollHeight;
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });
  composerText.addEventListener("keydown", function (event) {
    if (cannedKey(event)) return; // the canned replies' list is open: its keys
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      send();
    }
  });
  messagesBox.addEventListener("click", function (event) {
    var retry = event.target.closest("[data-retry]");
    if (!retry || !openId) return;
    var p = pending.get(retry.getAttribute("data-retry"));
    if (p && p.file) sendFile(openId, p.file, p); // the same clientMessageId: stored once
    else if (p) postPending(openId, p); // the same clientMessageId: the server stores it once
  });

  acceptButton.addEventListener("click", function () {
    if (openId) accept(openId);
  });
  solveButton.addEventListener("click", function () {
    conversationAction("solve", solveButton, "Could not solve this conversation.");
  });
  reopenButton.addEventListener("click", function () {
    conversationAction("reopen", reopenButton, "Could not reopen this conversation.");
  });

  // --- transfer: hand an OPEN chat to a colleague who is online and has room ------------------

  var transferDialog = $("transfer-dialog");
  var transferAgents = $("transfer-agents");
  var transferError = $("transfer-error");
  var transferSend = $("transfer-send");
  var transferFor = null;

  function transferChoice(a, c) {
    var free = a.status === "online" && a.openChats < a.capacity;
    var holds = c.assignee && c.assignee.id === a.id;
    var label = el("label", "transfer-agent" + (free && !holds ? "" : " is-unavailable"));
    var radio = el("input");
    radio.type = "radio";
    radio.name = "transfer-agent";
    radio.value = a.id;
    radio.disabled = !free || holds;
    label.appendChild(radio);
    label.appendChild(avatarFor(a.name, a.id));
    label.appendChild(el("span", "transfer-name", a.name + (a.id === me.id ? " (you)" : "")));
    var state = holds ? "has this chat" : a.status !== "online" ? a.status : a.openChats + " of " + a.capacity + " chats";
    label.appendChild(el("span", "transfer-state muted", state));
    return label;
  }

  transferButton.addEventListener("click", function () {
    var c = openId && convs.get(openId);
    if (!c) return;
    transferFor = c.id;
    transferError.hidden = true;
    transferSend.disabled = true;
    transferAgents.replaceChildren(el("p", "muted", "Loading your colleagues…"));
    openDialog(transferDialog);
    P.api("GET", "/api/chat/agents").then(function (result) {
      if (on401(result)) return;
      if (!result.ok || !result.data || transferFor !== c.id) {
        transferAgents.replaceChildren(el("p", "form-error", P.errorMessage(result, "Could not load your colleagues.")));
        return;
      }
      var choices = result.data.agents.map(function (a) {
        return transferChoice(a, c);
      });
      var any = choices.some(function (l) {
        return !l.querySelector("input").disabled;
      });
      if (!any) choices.push(el("p", "muted", "Nobody else is online with room for a chat right now."));
      transferAgents.replaceChildren.apply(transferAgents, choices);
      transferSend.disabled = !any;
      var first = transferAgents.querySelector("input:not([disabled])");
      if (first) first.focus();
    });
  });

  $("transfer-cancel").addEventListener("click", function () {
    closeDialog(transferDialog);
  });

  $("transfer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var chosen = transferAgents.querySelector("input:checked");
    if (!chosen) {
      transferError.textContent = "Choose who takes the chat.";
      transferError.hidden = false;
      return;
    }
    var id = transferFor;
    transferSend.disabled = true;
    P.api("POST", "/api/chat/conversations/" + encodeURIComponent(id) + "/transfer", { agentId: chosen.value }).then(function (result) {
      transferSend.disabled = false;
      if (on401(result)) return;
      if (result.ok && result.data) {
        closeDialog(transferDialog);
        applySnapshot(result.data);
        renderList();
        if (id === openId) renderPane();
        scheduleCounts();
        say(threadNotice, "Transferred to " + (result.data.assignee ? result.data.assignee.name : "your colleague") + ".", "ok");
      } else {
        transferError.textContent = P.errorMessage(result, "Could not transfer this chat.");
        transferError.hidden = false;
      }
    });
  });

  convList.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    var row = event.target.closest("[data-conversation-id]");
    if (!button || !row) return;
    var id = row.getAttribute("data-conversation-id");
    if (button.getAttribute("data-action") === "accept") accept(id);
    else if (button.getAttribute("data-action") === "open") openConversation(id);
  });

  // --- start a chat with a live visitor -------------------------------------------------------

  var startDialog = $("start-chat-dialog");
  var startForm = $("start-chat-form");
  var startText = $("start-chat-text");
  var startError = $("start-chat-error");
  var startSend = $("start-chat-send");
  var startFor = null;
  var startClientId = null;

  function openDialog(dialog) {
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
  }

  function closeDialog(dialog) {
    if (typeof dialog.close === "function" && dialog.open) dialog.close();
    else dialog.removeAttribute("open");
  }

  visitorList.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    var row = event.target.closest("[data-visitor-id]");
    if (!button || !row) return;
    var v = visitors.get(row.getAttribute("data-visitor-id"));
    if (!v) return;
    if (button.getAttribute("data-action") === "open-chat" && v.conversationId) {
      openConversation(v.conversationId);
    } else if (button.getAttribute("data-action") === "start-chat") {
      startFor = v.visitorId;
      startClientId = newId();
      $("start-chat-who").textContent = (v.displayName || "This visitor") + (v.currentUrl ? " \u00b7 " + v.currentUrl : "");
      startError.hidden = true;
      startSend.disabled = false;
      openDialog(startDialog);
      startText.focus();
      startText.select();
    }
  });

  $("start-chat-cancel").addEventListener("click", function () {
    closeDialog(startDialog);
  });

  startForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = startText.value.replace(/^\s+|\s+$/g, "");
    if (!text) {
      startError.textContent = "Write the first message.";
      startError.hidden = false;
      return;
    }
    var visitorId = startFor;
    startSend.disabled = true;
    P.api("POST", "/api/chat/visitors/" + encodeURIComponent(visitorId) + "/conversations", {
      message: text,
      clientMessageId: startClientId,
    }).then(function (result) {
      startSend.disabled = false;
      if (on401(result)) return;
      var err = result.data && result.data.error;
      if (result.ok && result.data) {
        closeDialog(startDialog);
        applySnapshot(result.data);
        openConversation(result.data.id, { focus: true });
        scheduleCounts();
      } else if (result.status === 409 && err && err.code === "conversation_active" && err.conversationId) {
        closeDialog(startDialog);
        say(listNotice, "This visitor is already in a conversation.", "");
        openConversation(err.conversationId);
      } else if (result.status === 409 && err && err.code === "visitor_gone") {
        startError.textContent = "This visitor has left the site.";
        startError.hidden = false;
        visitors.delete(visitorId);
        renderCounts();
        renderList();
      } else {
        startError.textContent = P.errorMessage(result, "Could not start the chat.");
        startError.hidden = false;
      }
    });
  });

  // --- profile and presence -------------------------------------------------------------------

  var profileDialog = $("profile-dialog");
  var profileForm = $("profile-form");
  var profileName = $("profile-name");
  var profileAvatar = $("profile-avatar");
  var profileError = $("profile-error");

  function renderMe() {
    var nameEl = document.querySelector(".whoami-name");
    if (nameEl && me.name && nameEl.textContent !== me.name) nameEl.textContent = me.name;
    var slot = $("my-avatar");
    if (!slot) return;
    slot.replaceChildren();
    var url = safeHttpUrl(me.avatarUrl);
    if (url && url.indexOf("https:") === 0) {
      var img = document.createElement("img");
      img.alt = "";
      img.src = url;
      img.referrerPolicy = "no-referrer";
      slot.appendChild(img);
    } else {
      slot.textContent = initials(me.name);
      slot.style.setProperty("--avatar-hue", String(hue(me.id)));
    }
  }

  $("profile-open").addEventListener("click", function () {
    profileName.value = me.name || "";
    profileAvatar.value = me.avatarUrl || "";
    profileError.hidden = true;
    openDialog(profileDialog);
    profileName.focus();
  });
  $("profile-cancel").addEventListener("click", function () {
    closeDialog(profileDialog);
  });
  profileForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = profileName.value.trim();
    if (!name) {
      profileError.textContent = "Enter your name.";
      profileError.hidden = false;
      return;
    }
    $("profile-save").disabled = true;
    P.api("PATCH", "/api/auth/me", { name: name, avatarUrl: profileAvatar.value.trim() }).then(function (result) {
      $("profile-save").disabled = false;
      if (on401(result)) return;
      if (result.ok && result.data && result.data.agent) {
        me = result.data.agent;
        renderMe();
        closeDialog(profileDialog);
      } else {
        profileError.textContent = P.errorMessage(result, "Could not save your profile.");
        profileError.hidden = false;
      }
    });
  });

  var PRESENCE_TEXT = { online: "Online", away: "Away", offline: "Offline" };

  function showPresence(status) {
    myStatus.setAttribute("data-status", status);
    myStatus.title = "You are " + (PRESENCE_TEXT[status] || status).toLowerCase();
    statusText.textContent = PRESENCE_TEXT[status] || status;
    presenceButtons.forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-presence") === desiredPresence ? "true" : "false");
    });
  }

  var presenceClicks = 0; // the agent's own choice beats an answer that was on its way

  presenceButtons.forEach(function (b) {
    b.addEventListener("click", function () {
      presenceClicks += 1;
      desiredPresence = b.getAttribute("data-presence");
      if (stream.send({ type: "presence", status: desiredPresence })) showPresence(desiredPresence);
      else showPresence("offline");
    });
  });

  // --- title-bar notice and sound -----------------------------------------------------------

  var audio = null;

  function unlockAudio() {
    if (audio) {
      if (audio.state === "suspended" && audio.resume) audio.resume().catch(function () {});
      return;
    }
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      audio = new Ctx();
    } catch (e) {
      audio = null;
    }
  }

  function beep() {
    if (!audio || audio.state !== "running") return; // no gesture yet: the title says it
    try {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.3);
    } catch (e) {
      /* no sound: the title-bar notice is enough */
    }
  }

  function updateTitle() {
    var n = 0;
    newChats.forEach(function (id) {
      var c = convs.get(id);
      if (c && c.status === "WAITING") n += 1;
    });
    var title = n ? "(" + n + ") New chat" + (n > 1 ? "s" : "") + " \u00b7 Curbe Inbox" : BASE_TITLE;
    if (document.title !== title) document.title = title;
  }

  function looked() {
    if (newChats.size) {
      newChats.clear();
      updateTitle();
    }
  }

  document.addEventListener("pointerdown", function () {
    unlockAudio();
    looked();
  });
  document.addEventListener("keydown", function () {
    unlockAudio();
    looked();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") return;
    looked();
    var c = openId && convs.get(openId);
    if (c && c.unread) markRead(openId);
  });

  // --- events -------------------------------------------------------------------------------

  function apply(frame) {
    var data = frame.data || {};
    var cid = frame.conversationId;
    if (cid) seen(cid, frame.seq);
    switch (frame.type) {
      case "conversation_created": {
        var known = data.conversation && convs.has(data.conversation.id);
        var created = applySnapshot(data.conversation);
        if (created && !known && created.status === "WAITING" && created.kind === "live_chat") {
          created.unread = true;
          // a replay (resume) or an old event is no news
          if (created.id !== openId && P.serverNow() - ts(frame.at) < 60000) {
            newChats.add(created.id);
            updateTitle();
            beep();
          }
        }
        scheduleCounts();
        break;
      }
      case "conversation_assigned":
      case "conversation_status_changed":
      case "conversation_wait_timeout":
        applySnapshot(data.conversation);
        if (frame.type === "conversation_status_changed" && data.to === "OPEN" && data.conversation) {
          var reopened = convs.get(data.conversation.id);
          if (reopened && reopened.assignee && reopened.assignee.id === me.id && openId === reopened.id) {
            reopened.unread = false;
          }
        }
        updateTitle();
        scheduleCounts();
        break;
      case "message_created": {
        var m = data.message;
        if (!m) break;
        var c = convs.get(m.conversationId);
        if (c) {
          if (!c.lastMessage || m.seq >= c.lastMessage.seq) c.lastMessage = m;
          if (!c.firstMessage || m.seq < c.firstMessage.seq) c.firstMessage = m;
          if (ts(m.createdAt) > ts(c.updatedAt)) c.updatedAt = m.createdAt;
          if (m.senderType === "visitor") {
            if (m.conversationId === openId && document.visibilityState === "visible") markRead(openId, m.seq);
            else c.unread = true;
          } else if (m.senderId === me.id) {
            c.unread = false;
          }
          c.stale = true;
        } else if (view !== "visitors") {
          scheduleViewFetch(); // a conversation we know nothing about: it may belong here
        }
        typingEnded(m.conversationId, m.senderId); // their message is here: they stopped
        if (m.conversationId === openId) {
          addMessage(m);
          renderTyping();
        }
        scheduleCounts();
        break;
      }
      case "conversation_rated": {
        var rated = convs.get(data.conversationId);
        if (rated) {
          rated.rating = data;
          if (rated.id === openId) renderPane();
        }
        return;
      }
      case "note_created":
        noteHeard(data.note);
        return;
      case "typing":
        if (cid && !(data.senderType === "agent" && data.senderId === me.id)) {
          typingHeard(cid, data);
          renderList();
          if (cid === openId) renderTyping();
        }
        return;
      case "conversation_read":
        if (data.reader === "visitor") {
          var read = convs.get(data.conversationId);
          if (read && typeof data.lastReadSeq === "number" && data.lastReadSeq > (read.visitorLastReadSeq || 0)) {
            read.visitorLastReadSeq = data.lastReadSeq;
            if (read.id === openId) renderThread();
          }
          return;
        }
        if (data.agentId === me.id) {
          var r = convs.get(data.conversationId);
          if (r && r.unread) {
            var lastVisitor = r.lastMessage && r.lastMessage.senderType === "visitor" ? r.lastMessage.seq : null;
            if (data.lastReadSeq >= (lastVisitor !== null ? lastVisitor : r.lastSeq)) r.unread = false;
            r.stale = true;
          }
          scheduleCounts();
        }
        break;
      case "visitor_presence_update":
        applyVisitors([data]);
        return;
      case "visitor_presence_batch":
        applyVisitors(data && Array.isArray(data.visitors) ? data.visitors : []);
        return;
      case "activity_batch": // typing and read marks, coalesced: each applied as if alone
        (Array.isArray(data.events) ? data.events : []).forEach(apply);
        return;
      case "agent_presence_update":
        if (data.agentId === me.id && (data.status === "online" || data.status === "away")) {
          desiredPresence = data.status;
          showPresence(data.status);
        }
        offlineAgents[data.agentId] = data.status === "offline";
        renderList(); // flag (or unflag) the OPEN chats of an agent who left
        return;
      default:
        return; // widget_* and anything newer: not for this page
    }
    renderList();
    if (cid && cid === openId) renderPane();
    needsFetch();
  }

  // --- typing: shown here, and this agent's own hints ------------------------------------------

  function typingEnded(cid, senderId) {
    var senders = typingNow.get(cid);
    var entry = senders && senders.get(senderId);
    if (!entry) return false;
    clearTimeout(entry.timer);
    senders.delete(senderId);
    if (!senders.size) typingNow.delete(cid);
    return true;
  }

  function typingHeard(cid, data) {
    typingEnded(cid, data.senderId);
    if (data.state !== "on") return;
    var seconds = Math.min(60, Math.max(1, typeof data.expiresInSeconds === "number" ? data.expiresInSeconds : 12));
    var entry = {
      senderType: data.senderType,
      name: typeof data.senderName === "string" ? data.senderName : null,
      timer: setTimeout(function () {
        if (typingEnded(cid, data.senderId)) {
          renderList();
          if (cid === openId) renderTyping();
        }
      }, seconds * 1000),
    };
    if (!typingNow.has(cid)) typingNow.set(cid, new Map());
    typingNow.get(cid).set(data.senderId, entry);
  }

  function renderTyping() {
    var c = openId && convs.get(openId);
    var text = (c && typingText(c)) || "";
    if (typingIndicator.textContent !== text) typingIndicator.textContent = text;
  }

  var TYPING_REPEAT_MS = 4000; // while keys come, "on" again this often
  var TYPING_IDLE_MS = 5000; // no key for this long: "off"
  var typingTo = null; // the conversation this agent told "on" (and not "off" since)
  var typingSentAt = 0;
  var typingIdle = null;

  function sayTyping(cid, on) {
    if (stream.send({ type: "typing", conversationId: cid, state: on ? "on" : "off" })) {
      typingTo = on ? cid : null;
      if (on) typingSentAt = Date.now();
    } else {
      typingTo = null;
    }
  }

  /** The composer changed: "on" at the first key and every 4 s while keys come, "off" once it
   * is emptied, left, idle for 5 s, or another conversation opens. Sending ends it (the server
   * knows from the message). */
  function composerTyped() {
    clearTimeout(typingIdle);
    var c = openId && convs.get(openId);
    var typing = !noteMode && !composerText.disabled && c && c.status === "OPEN" && composerText.value.trim() !== "";
    if (typingTo && (!typing || typingTo !== openId)) sayTyping(typingTo, false);
    if (!typing) return;
    if (typingTo !== openId || Date.now() - typingSentAt >= TYPING_REPEAT_MS) sayTyping(openId, true);
    typingIdle = setTimeout(function () {
      if (typingTo) sayTyping(typingTo, false);
    }, TYPING_IDLE_MS);
  }

  function typingStopped() {
    clearTimeout(typingIdle);
    if (typingTo) sayTyping(typingTo, false);
  }

  composerText.addEventListener("input", composerTyped);

  // --- canned replies: "/" at the start of the composer ----------------------------------------

  var cannedList = $("canned-list");
  var cannedStatus = $("canned-status");
  var CANNED_SHOWN = 20;
  var canned = { open: false, items: [], index: 0, serial: 0, timer: null };

  /** What follows "/" when the composer holds only "/words" (one line), else null. */
  function cannedQuery() {
    var m = /^\/([^\n]{0,100})$/.exec(composerText.value);
    return m && !composerText.disabled ? m[1] : null;
  }

  function closeCanned() {
    clearTimeout(canned.timer);
    canned.serial++;
    if (!canned.open) return;
    canned.open = false;
    canned.items = [];
    cannedList.hidden = true;
    cannedList.replaceChildren();
    cannedStatus.textContent = "";
  }

  function renderCanned() {
    cannedList.replaceChildren.apply(
      cannedList,
      canned.items.map(function (r, i) {
        var li = el("li", "canned-option");
        li.id = "canned-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", i === canned.index ? "true" : "false");
        li.setAttribute("data-index", String(i));
        li.appendChild(el("span", "canned-option-shortcut", "/" + r.shortcut));
        li.appendChild(el("span", "canned-option-text", r.text.length > 120 ? r.text.slice(0, 120) + "…" : r.text));
        return li;
      })
    );
    cannedList.hidden = !canned.items.length;
    var chosen = canned.items[canned.index];
    cannedStatus.textContent = !canned.items.length
      ? "No canned reply matches."
      : "/" + chosen.shortcut + ", " + (canned.index + 1) + " of " + canned.items.length +
        ". Up and down to choose, Enter to insert, Escape to close.";
    var node = cannedList.children[canned.index];
    if (node && node.scrollIntoView) node.scrollIntoView({ block: "nearest" });
  }

  function lookCanned() {
    var q = cannedQuery();
    if (q === null) return closeCanned();
    clearTimeout(canned.timer);
    var serial = ++canned.serial;
    canned.timer = setTimeout(function () {
      var path = "/api/chat/canned-replies" + (q.trim() ? "?q=" + encodeURIComponent(q.trim()) : "");
      P.api("GET", path).then(function (result) {
        if (on401(result) || serial !== canned.serial || cannedQuery() === null) return;
        if (!result.ok || !result.data) return closeCanned();
        canned.open = true;
        canned.items = result.data.cannedReplies.slice(0, CANNED_SHOWN);
        canned.index = 0;
        renderCanned();
      });
    }, 120);
  }

  /** The reply's text with its variables filled in for the open conversation (an unknown one
   * stays as written; a name the visitor never gave is left empty). */
  function fillCanned(text) {
    var c = convs.get(openId);
    var name = (c && c.contact && c.contact.name) || "";
    var values = {
      "visitor.name": name,
      "visitor.first_name": name.split(/\s+/)[0] || "",
      "agent.name": (me && me.name) || "",
    };
    return text.replace(/\{\{\s*([a-z_.]+)\s*\}\}/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : all;
    });
  }

  function insertCanned(i) {
    var reply = canned.items[i];
    if (!reply) return;
    closeCanned();
    composerText.value = fillCanned(reply.text);
    composerText.focus();
    composerText.setSelectionRange(composerText.value.length, composerText.value.length);
    composerTyped();
  }

  /** The list's keys while it is open; true when the key was its. */
  function cannedKey(event) {
    if (!canned.open || !canned.items.length) {
      if (canned.open && event.key === "Escape") {
        closeCanned();
        return true;
      }
      return false;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var step = event.key === "ArrowDown" ? 1 : -1;
      canned.index = (canned.index + step + canned.items.length) % canned.items.length;
      renderCanned();
    } else if ((event.key === "Enter" && !event.shiftKey && !event.isComposing) || event.key === "Tab") {
      insertCanned(canned.index);
    } else if (event.key === "Escape") {
      closeCanned();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  composerText.addEventListener("input", lookCanned);

  // --- internal notes and mentions --------------------------------------------------------------

  var modeReply = $("mode-reply");
  var modeNote = $("mode-note");
  var REPLY_PLACEHOLDER = composerText.placeholder;

  function setNoteMode(on) {
    if (on) typingStopped();
    noteMode = on;
    modeReply.setAttribute("aria-pressed", on ? "false" : "true");
    modeNote.setAttribute("aria-pressed", on ? "true" : "false");
    composer.classList.toggle("is-note", on);
    composerText.placeholder = on ? "Write a note for your team (@Name mentions a colleague)…" : REPLY_PLACEHOLDER;
    composerSend.textContent = on ? "Save note" : "Send";
    renderPane();
    if (!composerText.disabled) composerText.focus();
  }

  modeReply.addEventListener("click", function () {
    setNoteMode(false);
  });
  modeNote.addEventListener("click", function () {
    setNoteMode(true);
  });

  function loadNotes(id) {
    var serial = ++notesSerial;
    P.api("GET", "/api/chat/conversations/" + encodeURIComponent(id) + "/notes").then(function (result) {
      if (on401(result) || id !== openId || serial !== notesSerial || !result.ok || !result.data) return;
      threadNotes = new Map();
      result.data.notes.forEach(function (n) {
        threadNotes.set(n.id, n);
      });
      renderThread();
    });
  }

  function noteHeard(n) {
    if (!n || typeof n.id !== "string") return;
    if (n.conversationId === openId) {
      threadNotes.set(n.id, n);
      renderThread();
    }
    var forMe = (n.mentions || []).some(function (m) {
      return m.id === me.id;
    });
    if (forMe && n.authorId !== me.id) {
      mentionsNew++;
      renderMentionsBadge();
    }
  }

  function sendNote(text) {
    var id = openId;
    var clientNoteId = newId();
    composerText.value = "";
    closeCanned();
    P.api("POST", "/api/chat/conversations/" + encodeURIComponent(id) + "/notes", {
      text: text,
      clientNoteId: clientNoteId,
    }).then(function (result) {
      if (on401(result)) return;
      if (result.ok && result.data) {
        if (result.data.conversationId === openId) {
          threadNotes.set(result.data.id, result.data);
          renderThread();
        }
        messagesBox.scrollTop = messagesBox.scrollHeight;
        return;
      }
      if (id === openId && !composerText.value) composerText.value = text; // not lost
      say(threadNotice, P.errorMessage(result, "Could not save the note."), "error");
    });
  }

  var mentionsButton = $("mentions-open");
  var mentionsBadge = $("mentions-new");
  var mentionsDialog = $("mentions-dialog");
  var mentionsList = $("mentions-list");

  function renderMentionsBadge() {
    mentionsBadge.hidden = !mentionsNew;
    mentionsBadge.textContent = String(mentionsNew);
    mentionsButton.setAttribute("aria-label", "Mentions" + (mentionsNew ? ", " + mentionsNew + " new" : ""));
  }

  mentionsButton.addEventListener("click", function () {
    mentionsNew = 0;
    renderMentionsBadge();
    mentionsList.replaceChildren(el("li", "muted", "Loading…"));
    openDialog(mentionsDialog);
    P.api("GET", "/api/chat/mentions").then(function (result) {
      if (on401(result)) return;
      if (!result.ok || !result.data) {
        mentionsList.replaceChildren(el("li", "form-error", P.errorMessage(result, "Could not load your mentions.")));
        return;
      }
      var items = result.data.mentions.map(function (m) {
        var li = el("li", "mention");
        li.setAttribute("data-conversation-id", m.note.conversationId);
        var head = el("div", "mention-head");
        head.appendChild(el("strong", "", m.note.authorName));
        head.appendChild(el("span", "muted", " in " + (m.contactName || "a conversation") + "'s chat · "));
        head.appendChild(timeEl(m.note.createdAt));
        var open = el("button", "btn btn-small", "Open");
        open.type = "button";
        open.setAttribute("data-action", "open-mention");
        head.appendChild(open);
        li.append(head, el("div", "mention-text", m.note.text));
        return li;
      });
      if (!items.length) items.push(el("li", "muted", "Nobody has mentioned you yet."));
      mentionsList.replaceChildren.apply(mentionsList, items);
      var first = mentionsList.querySelector("button");
      if (first) first.focus();
    });
  });

  mentionsList.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action=open-mention]");
    var li = event.target.closest("[data-conversation-id]");
    if (!button || !li) return;
    closeDialog(mentionsDialog);
    openConversation(li.getAttribute("data-conversation-id"), { focus: true });
  });

  $("mentions-close").addEventListener("click", function () {
    closeDialog(mentionsDialog);
  });
  composerText.addEventListener("blur", function () {
    setTimeout(function () {
      if (document.activeElement !== composerText) closeCanned();
    }, 150);
  });
  cannedList.addEventListener("mousedown", function (event) {
    event.preventDefault(); // the composer keeps the focus
    var option = event.target.closest("[data-index]");
    if (option) insertCanned(Number(option.getAttribute("data-index")));
  });
  composerText.addEventListener("blur", typingStopped);

  function flush() {
    var later = buffered;
    buffered = [];
    later.forEach(apply);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "ready":
        onReady();
        return;
      case "resumed":
      case "error":
        return;
      default:
        if (inflight > 0) buffered.push(frame);
        else apply(frame);
    }
  }

  var connection = 0; // counts `ready`s: an answer about an older connection is stale

  function onReady() {
    live = true;
    var current = ++connection;
    var clicks = presenceClicks;
    if (desiredPresence === "away") {
      stream.send({ type: "presence", status: "away" });
      showPresence("away");
    } else {
      showPresence("online");
      P.api("GET", "/api/auth/me").then(function (result) {
        if (on401(result)) return;
        if (result.ok && result.data) {
          if (result.data.agent) {
            me = result.data.agent;
            renderMe();
          }
          var status = result.data.presence;
          var fresh = live && current === connection && clicks === presenceClicks;
          if (fresh && (status === "away" || status === "online")) {
            desiredPresence = status;
            showPresence(status);
          }
        }
      });
    }
    // catch up: everything committed after `ready` reaches this socket; this fetches the rest
    fetchCounts();
    fetchVisitors();
    if (view !== "visitors") fetchView();
    if (openId) {
      // resume from what the thread shows; with nothing shown yet, a resume from 0 would replay
      // the whole log past the thread's latest page: the detail, fetched after `ready`, holds
      // everything up to now, and what follows comes live
      var after = resumeSeq();
      if (after > 0 && resumedInAddress !== openId) {
        stream.send({ type: "resume", conversationId: openId, afterSeq: after });
      }
      if (after === 0 || !convs.get(openId) || convs.get(openId).partial) loadDetail(openId, true);
      else loadNotes(openId); // notes have no seq to resume from: read them again
    }
  }

  function onState(state) {
    indicator.setAttribute("data-state", state);
    indicator.textContent = state === "live" ? "Live" : state === "connecting" ? "Connecting…" : "Reconnecting…";
    indicator.title =
      state === "live" ? "Changes appear here as they happen" : "Trying to reconnect; what you see may be out of date";
    if (state !== "live") {
      live = false;
      showPresence("offline");
      statusText.textContent = state === "connecting" ? "Connecting…" : "Offline";
    }
  }

  // --- views and the address bar ------------------------------------------------------------

  function setView(next, options) {
    if (VIEWS.indexOf(next) === -1) next = "open";
    options = options || {};
    var changed = next !== view;
    view = next;
    viewButtons.forEach(function (b) {
      var on = b.getAttribute("data-view") === view;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("is-current", on);
    });
    listTitle.textContent = VIEW_TITLES[view];
    root.setAttribute("data-current-view", view);
    if (changed) {
      viewLoaded = false;
      viewCursor = null;
      viewEdge = null;
      viewDeep = false;
    }
    if (changed || options.force) {
      say(listNotice, "");
      rowEls.forEach(function (entry) {
        entry.li.remove();
      });
      rowEls.clear();
    }
    if (view === "waiting") looked();
    if (!options.quiet) writeHash();
    renderList();
    if (live && (changed || options.force)) {
      if (view === "visitors") fetchVisitors();
      else fetchView();
    }
  }

  viewButtons.forEach(function (b) {
    b.addEventListener("click", function () {
      if (searchState !== null) {
        searchInput.value = "";
        endSearch();
      }
      setView(b.getAttribute("data-view"), { force: true });
    });
  });

  var writingHash = false;

  function writeHash() {
    var hash = "#" + view + (openId ? "/" + openId : "");
    if (location.hash !== hash) {
      writingHash = true;
      history.replaceState(null, "", hash);
      writingHash = false;
    }
  }

  function readHash() {
    var parts = (location.hash || "").replace(/^#/, "").split("/");
    return { view: VIEWS.indexOf(parts[0]) !== -1 ? parts[0] : "open", id: parts[1] || null };
  }

  window.addEventListener("hashchange", function () {
    if (writingHash) return;
    var h = readHash();
    setView(h.view, { quiet: true });
    if (h.id && h.id !== openId) openConversation(h.id);
  });

  // --- search (GET /api/chat/search): results replace the list until the search is cleared ---

  var searchForm = $("search-form");
  var searchInput = $("search-input");
  var searchClear = $("search-clear");
  var searchBox = $("search-results");
  var searchStatus = $("search-status");
  var searchSerial = 0;
  var searchTimer = null;
  var searchState = null; // {query, cursor, contacts: [], messages: []} while searching
  var listPane = searchForm.closest(".inbox-list");
  var found = null; // {conversationId, seq}: the message a result opened the thread at

  function headlineInto(box, pieces) {
    // plain text, a match inside <mark>: nothing a visitor typed is read as markup
    (Array.isArray(pieces) ? pieces : []).forEach(function (piece) {
      if (piece.match) box.appendChild(el("mark", "", piece.text));
      else box.appendChild(document.createTextNode(piece.text));
    });
    return box;
  }

  var FIELD_LABELS = { name: "Name", email: "Email", phone: "Phone" };

  function searchHit(hit, isContact) {
    var li = el("li", "conv-row search-hit");
    var open = el("button", "conv-open");
    open.type = "button";
    open.setAttribute("data-conversation-id", hit.conversationId);
    if (!isContact) {
      open.setAttribute("data-seq", String(hit.message.seq));
      open.setAttribute("data-message-id", hit.message.id);
    }
    var top = el("span", "conv-top");
    var name = hit.contact.displayName;
    top.appendChild(avatarFor(name, hit.contact.visitorId));
    top.appendChild(el("span", "conv-name", name));
    var at = isContact ? null : hit.message.createdAt;
    if (at) {
      var when = el("span", "conv-time", P.relativeTime(at));
      when.setAttribute("data-relative", at);
      when.title = P.exactTime(at);
      top.appendChild(when);
    }
    open.appendChild(top);
    var text = el("span", "conv-preview search-headline");
    if (isContact) {
      text.appendChild(el("span", "search-field", (FIELD_LABELS[hit.field] || hit.field) + ": "));
    } else if (hit.message.senderType === "agent") {
      text.appendChild(el("span", "search-field", (hit.message.senderName || "Agent") + ": "));
    }
    open.appendChild(headlineInto(text, hit.headline));
    var badges = el("span", "conv-badges");
    badges.appendChild(statusBadge(hit.status, hit.kind));
    open.appendChild(badges);
    li.appendChild(open);
    return li;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function renderSearch() {
    var on = searchState !== null;
    listPane.classList.toggle("is-searching", on);
    searchBox.hidden = !on;
    searchClear.hidden = !on && !searchInput.value;
    if (!on) return;
    var st = searchState;
    $("search-contacts").replaceChildren.apply(
      $("search-contacts"),
      st.contacts.map(function (hit) {
        return searchHit(hit, true);
      })
    );
    $("search-messages").replaceChildren.apply(
      $("search-messages"),
      st.messages.map(function (hit) {
        return searchHit(hit, false);
      })
    );
    $("search-contacts-title").hidden = !st.contacts.length;
    $("search-messages-title").hidden = !st.messages.length;
    $("search-more").hidden = !st.cursor || st.loading;
    var quoted = "\u201c" + st.query + "\u201d";
    if (st.loading && !st.contacts.length && !st.messages.length) {
      searchStatus.textContent = "Searching for " + quoted + "\u2026";
    } else if (st.failed) {
      searchStatus.textContent = st.failed;
    } else if (!st.contacts.length && !st.messages.length) {
      searchStatus.textContent = "Nothing found for " + quoted + ".";
    } else {
      var parts = [];
      if (st.contacts.length) parts.push(plural(st.contacts.length, "contact", "contacts"));
      if (st.messages.length) {
        parts.push(plural(st.messages.length, "message", "messages") + (st.cursor ? " so far" : ""));
      }
      searchStatus.textContent = parts.join(" and ") + " for " + quoted + ".";
    }
  }

  function runSearch(more) {
    clearTimeout(searchTimer);
    searchTimer = null;
    var query = searchInput.value.trim();
    if (!query) return endSearch();
    if (!more && searchState && searchState.query === query && !searchState.failed) return;
    var serial = ++searchSerial;
    var st = more ? searchState : { query: query, cursor: null, contacts: [], messages: [] };
    st.loading = true;
    st.failed = null;
    searchState = st;
    renderSearch();
    var path = "/api/chat/search?q=" + encodeURIComponent(query) + (more ? "&after=" + encodeURIComponent(st.cursor) : "");
    P.api("GET", path).then(function (result) {
      if (on401(result) || serial !== searchSerial || searchState !== st) return;
      st.loading = false;
      if (!(result.ok && result.data)) {
        st.failed = P.errorMessage(result, "Could not search.");
      } else {
        if (!more) st.contacts = result.data.contacts || [];
        st.messages = st.messages.concat(result.data.messages || []);
        st.cursor = result.data.nextCursor || null;
      }
      renderSearch();
    });
  }

  function endSearch() {
    clearTimeout(searchTimer);
    searchTimer = null;
    searchSerial++;
    searchState = null;
    renderSearch();
  }

  searchForm.addEventListener("submit", function (event) {
    event.preventDefault();
    runSearch(false);
  });
  searchInput.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchClear.hidden = !searchInput.value && searchState === null;
    if (!searchInput.value.trim()) {
      endSearch();
      return;
    }
    searchTimer = setTimeout(function () {
      runSearch(false);
    }, 300);
  });
  searchInput.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && (searchInput.value || searchState)) {
      event.preventDefault();
      searchInput.value = "";
      endSearch();
    }
  });
  searchClear.addEventListener("click", function () {
    searchInput.value = "";
    endSearch();
    searchInput.focus();
  });
  $("search-more-button").addEventListener("click", function () {
    if (searchState && searchState.cursor) runSearch(true);
  });
  searchBox.addEventListener("click", function (event) {
    var open = event.target.closest("[data-conversation-id]");
    if (!open) return;
    var seq = Number(open.getAttribute("data-seq")) || 0;
    var id = open.getAttribute("data-conversation-id");
    found = seq ? { conversationId: id, seq: seq, focus: true } : null;
    openConversation(id);
    if (found && id === openId) reachFound();
  });

  /** Bring the message a result opened the thread at into view: earlier pages are read until
   * it is in the thread, then it is marked and focused once. */
  function reachFound() {
    if (!found || found.conversationId !== openId) return;
    var node = messagesBox.querySelector('[data-seq="' + found.seq + '"]');
    if (!node) {
      if (threadEarlier !== null && !found.reading) {
        found.reading = true;
        loadEarlier(function () {
          if (found) found.reading = false;
          reachFound();
        });
      }
      return;
    }
    if (found.focus) {
      found.focus = false;
      node.classList.add("msg-found"); // renderThread marks it from now on
      node.setAttribute("data-found", "true");
      node.setAttribute("tabindex", "-1");
      node.scrollIntoView({ block: "center" });
      node.focus({ preventScroll: true });
    }
  }

  // --- start --------------------------------------------------------------------------------

  renderMe();
  var start = readHash();
  setView(start.view, { quiet: true });
  if (start.id) openConversation(start.id);
  else renderPane();
  writeHash();
  setInterval(tick, 1000);
  var resumedInAddress = null; // the thread the open socket's address resumed

  function resumeSeq() {
    // where the open thread's events resume: what it shows (0: nothing shown yet, no resume)
    return openId ? seqSeen[openId] || 0 : 0;
  }

  function streamQuery() {
    // the open thread resumes in the address: its missed events come before any live one
    var after = resumeSeq();
    resumedInAddress = after > 0 ? openId : null;
    return after > 0 ? "?conversationId=" + encodeURIComponent(openId) + "&afterSeq=" + after : "";
  }

  var stream = P.openStream({ query: streamQuery, onFrame: onFrame, onState: onState });
})();
