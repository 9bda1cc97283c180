/* Curbe Chat pages: helpers shared by the sign-in, widget settings and (later) inbox pages.
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

  /** fetch() with the page conventions: same-origin credentials, JSON, the CSRF header on writes.
   * Resolves to {ok, status, data}; a network failure resolves to {ok: false, status: 0}. */
  function api(method, url, body) {
    var headers = { Accept: "application/json" };
    var options = { method: method, credentials: "same-origin", headers: headers };
    if (method !== "GET" && method !== "HEAD") {
      headers["Content-Type"] = "application/json";
      headers["X-Curbe-CSRF"] = "1";
      if (body !== undefined) options.body = JSON.stringify(body);
    }
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
    errorMessage: errorMessage,
    toLogin: toLogin,
    setServerTime: setServerTime,
    serverNow: serverNow,
    relativeTime: relativeTime,
    exactTime: exactTime,
    copyText: copyText,
    el: el,
    readJson: readJson,
    statusLabel: statusLabel,
  };
})();
