/* Curbe Chat pages: helpers shared by the sign-in, widget settings and inbox pages.
 *
 * One global, `CurbePage`. No framework. Everything a person typed goes into the DOM with
 * textContent, never innerHTML. Times come from the server; the browser's clock only measures
 * "how long ago", corrected by the server-time offset captured on load.
 */
(function () {
  "use strict";

  var serverOffsetMs = 0; // server time minus browser time

  function setServerTime(iso) {
    var t = Date.parse(iso || "");
    if (!isNaN(t)) serverOffsetMs = t - Date.now();
  }
  setServerTime(document.body && document.body.getAttribute("data-server-time"));

  function serverNow() {
    return Date.now() + serverOffsetMs;
  }

  /** fetch(url, options) read as JSON. Resolves to {ok, status, data}; a network failure
   * resolves to {ok: false, status: 0, data: null}. */
  function request(url, options) {
    return fetch(url, options).then(
      function (response) {
        return response.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (e) {
            data = null;
          }
          return { ok: response.ok, status: response.status, data: data };
        });
      },
      function () {
        return { ok: false, status: 0, data: null };
      }
    );
  }

  /** request() with the page conventions: same-origin credentials, JSON, the CSRF header on
   * writes. */
  function api(method, url, body) {
    var headers = { Accept: "application/json" };
    var options = { method: method, credentials: "same-origin", headers: headers };
    if (method !== "GET" && method !== "HEAD") {
      headers["Content-Type"] = "application/json";
      headers["X-Curbe-CSRF"] = "1";
      if (body !== undefined) options.body = JSON.stringify(body);
    }
    return request(url, options);
  }

  /** POST a file as the request's body (an attachment's upload), with progress: onProgress
   * gets the share sent, 0 to 1. Resolves like request(). XHR, because fetch reports no upload
   * progress. */
  function upload(url, file, headers, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.withCredentials = true;
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-Curbe-CSRF", "1");
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name || ""));
      Object.keys(headers || {}).forEach(function (k) {
        xhr.setRequestHeader(k, headers[k]);
      });
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
      };
      xhr.onload = function () {
        var data = null;
        try {
          data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch (e) {
          data = null;
        }
        resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data: data });
      };
      xhr.onerror = xhr.onabort = function () {
        resolve({ ok: false, status: 0, data: null });
      };
      xhr.send(file);
    });
  }

  /** "182 KB", "3.4 MB": a file's size for people. */
  function fileSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  /** The human message of an API error answer. */
  function errorMessage(result, fallback) {
    if (result && result.status === 0) return "Could not reach the server. Check your connection and try again.";
    var e = result && result.data && result.data.error;
    if (e && typeof e.message === "string" && e.message) {
      return e.message.charAt(0).toUpperCase() + e.message.slice(1);
    }
    return fallback || "Something went wrong (HTTP " + (result ? result.status : "?") + ").";
  }

  function toLogin() {
    var here = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(here));
  }

  var relative = new Intl.RelativeTimeFormat(document.documentElement.lang || "en", { numeric: "auto" });
  var exact = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  });

  /** "2 minutes ago" for a server timestamp (ISO 8601 Z); "just now" for clock skew into the future. */
  function relativeTime(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return "";
    var seconds = Math.round((t - serverNow()) / 1000);
    if (seconds > -5) return relative.format(0, "second");
    var abs = Math.abs(seconds);
    if (abs < 60) return relative.format(seconds, "second");
    var minutes = Math.round(seconds / 60);
    if (Math.abs(minutes) < 60) return relative.format(minutes, "minute");
    var hours = Math.round(seconds / 3600);
    if (Math.abs(hours) < 24) return relative.format(hours, "hour");
    var days = Math.round(seconds / 86400);
    if (Math.abs(days) < 30) return relative.format(days, "day");
    var months = Math.round(seconds / (86400 * 30.44));
    if (Math.abs(months) < 12) return relative.format(months, "month");
    return relative.format(Math.round(seconds / (86400 * 365.25)), "year");
  }

  /** The exact local time in the viewer's time zone, with the zone's name. */
  function exactTime(iso) {
    var t = Date.parse(iso);
    return isNaN(t) ? "" : exact.format(new Date(t));
  }

  var timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  var dayAndTime = new Intl.DateTimeFormat(undefined, {
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
  });
  var fullDayAndTime = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
  });

  function localDay(date) {
    return date.getFullYear() + "-" + date.getMonth() + "-" + date.getDate();
  }

  /** A server timestamp as the viewer reads it, in the viewer's time zone: "7:20 AM" today,
   * "Nov 28, 7:20 AM" another day this year, "Nov 28, 2025, 7:20 AM" before. "Today" is the
   * server's today (skew-corrected), so a wrong browser clock does not move the day. */
  function shortTime(iso) {
    var t = Date.parse(iso || "");
    if (isNaN(t)) return "";
    var when = new Date(t);
    var now = new Date(serverNow());
    if (localDay(when) === localDay(now)) return timeOfDay.format(when);
    if (when.getFullYear() === now.getFullYear()) return dayAndTime.format(when);
    return fullDayAndTime.format(when);
  }

  /** "45 s", "3 min", "1 h 5 min", "2 d 3 h": a duration in whole seconds, compact. */
  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    var h = Math.floor(m / 60);
    if (h < 24) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    var d = Math.floor(h / 24);
    return d + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
  }

  /** The tenant's event stream (WS /api/chat/inbox/ws + query), kept open.
   *
   * options.query: e.g. "?presence=0", or a function answering it at each connect (a resume in
   * the address: "?conversationId=…&afterSeq=N"); options.onFrame(frame) gets every JSON frame (`ready`
   * included, after the server-time offset was taken from it); options.onState(state) gets
   * "connecting" | "live" | "reconnecting". Reconnects with jittered exponential backoff (at most
   * 30 s), at once when the browser comes back online or the tab becomes visible; pings every
   * 25 s and drops a socket that does not answer within 10 s. Close code 4401 (signed out) goes
   * to the sign-in page. Returns {send(frame) -> bool, reconnectNow()}.
   */
  function openStream(options) {
    var socket = null;
    var attempt = 0;
    var reconnectTimer = null;
    var pingTimer = null;
    var pongDeadline = null;
    var state = null;

    function setState(next) {
      if (next === state) return;
      state = next;
      if (options.onState) options.onState(next);
    }

    function connect() {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws;
      try {
        var query = typeof options.query === "function" ? options.query() : options.query || "";
        ws = new WebSocket(scheme + location.host + "/api/chat/inbox/ws" + query);
      } catch (e) {
        scheduleReconnect();
        return;
      }
      socket = ws;
      ws.onmessage = function (event) {
        if (socket !== ws) return;
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (!frame || typeof frame.type !== "string") return;
        if (frame.type === "pong") {
          pongDeadline = null;
          return;
        }
        if (frame.type === "ready") {
          attempt = 0;
          setServerTime(frame.serverTime);
          setState("live");
        }
        options.onFrame(frame);
      };
      ws.onopen = function () {
        pingTimer = setInterval(function () {
          if (socket !== ws || ws.readyState !== WebSocket.OPEN) return;
          if (pongDeadline !== null && Date.now() > pongDeadline) {
            ws.close();
            return;
          }
          if (pongDeadline === null) pongDeadline = Date.now() + 10000;
          ws.send(JSON.stringify({ type: "ping" }));
        }, 25000);
      };
      ws.onclose = function (event) {
        if (socket !== ws) return;
        socket = null;
        clearInterval(pingTimer);
        pingTimer = null;
        pongDeadline = null;
        if (event.code === 4401) {
          toLogin(); // the session ended
          return;
        }
        scheduleReconnect();
      };
    }

    function scheduleReconnect() {
      if (reconnectTimer !== null) return;
      setState("reconnecting");
      attempt += 1;
      var ceiling = Math.min(30000, 1000 * Math.pow(2, attempt - 1));
      var delay = ceiling / 2 + Math.random() * (ceiling / 2); // jittered exponential backoff
      reconnectTimer = setTimeout(connect, delay);
    }

    function reconnectNow() {
      if (socket === null && reconnectTimer !== null) {
        clearTimeout(reconnectTimer);
        reconnectTimer = null;
        connect();
      }
    }
    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") reconnectNow();
    });

    function send(frame) {
      if (socket === null || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    }

    setState("connecting");
    connect();
    return { send: send, reconnectNow: reconnectNow };
  }

  /** Copy text: the async Clipboard API, else a selected textarea and execCommand. */
  function copyText(text) {
    function fallback() {
      return new Promise(function (resolve, reject) {
        var area = document.createElement("textarea");
        area.value = text;
        area.setAttribute("readonly", "");
        area.style.position = "fixed";
        area.style.top = "-1000px";
        area.style.opacity = "0";
        document.body.appendChild(area);
        area.select();
        area.setSelectionRange(0, text.length);
        var ok = false;
        try {
          ok = document.execCommand("copy");
        } catch (e) {
          ok = false;
        }
        document.body.removeChild(area);
        if (ok) resolve();
        else reject(new Error("copy failed"));
      });
    }
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(fallback);
    }
    return fallback();
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent || "null");
    } catch (e) {
      return null;
    }
  }

  var STATUS_LABELS = { ACTIVE: "Active", INACTIVE: "Inactive", MISCONFIGURED: "Misconfigured" };

  function statusLabel(status) {
    if (STATUS_LABELS[status]) return STATUS_LABELS[status];
    if (!status) return "Inactive";
    var s = String(status).toLowerCase();
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  /** Show ``message`` in a notice box (an empty message hides it); kind "error" or "ok". */
  function say(box, message, kind) {
    box.textContent = message;
    box.classList.toggle("notice-error", kind === "error");
    box.classList.toggle("notice-ok", kind === "ok");
    box.hidden = !message;
  }

  /** True (and off to the sign-in page) when an API answer says the session is gone. */
  function on401(result) {
    if (result && result.status === 401) {
      toLogin();
      return true;
    }
    return false;
  }

  var signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", function () {
      signOut.disabled = true;
      api("POST", "/api/auth/logout").then(function () {
        location.assign("/login");
      });
    });
  }

  window.CurbePage = {
    api: api,
    request: request,
    errorMessage: errorMessage,
    toLogin: toLogin,
    setServerTime: setServerTime,
    serverNow: serverNow,
    relativeTime: relativeTime,
    exactTime: exactTime,
    shortTime: shortTime,
    duration: duration,
    openStream: openStream,
    copyText: copyText,
    el: el,
    readJson: readJson,
    statusLabel: statusLabel,
    say: say,
    on401: on401,
    upload: upload,
    fileSize: fileSize,
  };
})();
