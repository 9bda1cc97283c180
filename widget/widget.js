/*! Curbe Chat widget: the embed loader and the visitor UI. Plain ES2019, no dependencies. */
/*
 * Two ways in, one UI:
 *
 *   1. The embed snippet
 *        <script async src="https://HOST/widget.js" data-widget-id="wgt_..." data-tenant="ten_..."
 *                [data-theme="#hex"|"light"|"dark"] [data-locale="en"|"es"]></script>
 *      sends the installation heartbeat, loads the widget's config and renders the launcher only
 *      once both answered (heartbeat 200 + config). 403 (domain outside Targeting) or 404 renders
 *      nothing and stops; an unreachable server renders nothing and retries on the next tick.
 *   2. window.CurbeChat.preview(container, config, options) for the Settings page: the same view
 *      rendered from a config object inside `container`, with no network and no heartbeat.
 *
 * Layout of the file: constants and copy -> config normalisation -> DOM helpers -> the view (an
 * explicit `state`, a table of screen transitions, one render() path) -> the loader (storage,
 * heartbeat, boot) -> the one global, window.CurbeChat = {version, preview, state}.
 *
 * Rules: nothing ever throws into the host page (every entry point is guarded); data from the
 * server or the host page is set as text (textContent) or as a validated attribute, never
 * through innerHTML; all CSS lives in a Shadow DOM on a custom element the host's CSS cannot
 * reach; the host page is never covered beyond the launcher and the panel.
 */
(function () {
  "use strict";

  if (typeof window === "undefined" || typeof document === "undefined" || window.CurbeChat) return;

  var VERSION = "0.3.0";
  var SCRIPT = document.currentScript; // only set while this file first runs
  var HEARTBEAT_MS = 15000;
  var REQUEST_TIMEOUT_MS = 10000;
  var DEFAULT_COLOR = "#2563eb";
  var LOG = "[Curbe Chat]";

  // ---- copy --------------------------------------------------------------------------------

  // ASCII only (\u escapes): the file must read the same whatever charset the host page uses.
  var I18N = {
    en: {
      chatWithUs: "Chat with us",
      openChat: "Open chat",
      minimize: "Minimize chat",
      welcomeTitle: "Hi there!",
      welcomeText: "How can we help you today?",
      startChat: "Start chat",
      orReachUs: "Or reach us on",
      whatsapp: "WhatsApp",
      sms: "SMS",
      call: "Call",
      telegram: "Telegram",
      messenger: "Messenger",
      email: "Email",
      prechatTitle: "Start a conversation",
      prechatText: "Tell us who you are and what you need; we'll reply right here.",
      name: "Name",
      emailField: "Email",
      message: "Message",
      send: "Start chat",
      back: "Back",
      poweredBy: "Powered by Curbe Chat"
    },
    es: {
      chatWithUs: "Chatea con nosotros",
      openChat: "Abrir chat",
      minimize: "Minimizar chat",
      welcomeTitle: "\u00a1Hola!",
      welcomeText: "\u00bfEn qu\u00e9 podemos ayudarte hoy?",
      startChat: "Iniciar chat",
      orReachUs: "O cont\u00e1ctanos por",
      whatsapp: "WhatsApp",
      sms: "SMS",
      call: "Llamar",
      telegram: "Telegram",
      messenger: "Messenger",
      email: "Correo",
      prechatTitle: "Inicia una conversaci\u00f3n",
      prechatText: "Cu\u00e9ntanos qui\u00e9n eres y qu\u00e9 necesitas; te responderemos aqu\u00ed mismo.",
      name: "Nombre",
      emailField: "Correo electr\u00f3nico",
      message: "Mensaje",
      send: "Iniciar chat",
      back: "Volver",
      poweredBy: "Con la tecnolog\u00eda de Curbe Chat"
    }
  };

  function resolveLocale(forced, configured) {
    var picks = [forced, configured];
    for (var i = 0; i < picks.length; i++) if (I18N[picks[i]]) return picks[i];
    var nav = window.navigator || {};
    var lang = (nav.languages && nav.languages[0]) || nav.language || "en";
    return /^es\b/i.test(String(lang)) ? "es" : "en";
  }

  // ---- config ------------------------------------------------------------------------------

  var CHANNELS = ["whatsapp", "sms", "call", "telegram", "messenger", "email"]; // display order

  function isObj(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function text(v, max) {
    return typeof v === "string" ? v.trim().slice(0, max || 500) : "";
  }

  function hexColor(v) {
    return typeof v === "string" && /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(v.trim())
      ? v.trim().toLowerCase()
      : null;
  }

  /** The config of GET /config with a default for every missing or malformed key. */
  function normalizeConfig(raw) {
    raw = isObj(raw) ? raw : {};
    var a = isObj(raw.appearance) ? raw.appearance : {};
    var b = isObj(a.branding) ? a.branding : {};
    var w = isObj(a.welcome) ? a.welcome : {};
    var ch = isObj(raw.channels) ? raw.channels : {};
    var channels = { liveChat: ch.liveChat !== false };
    CHANNELS.forEach(function (k) {
      channels[k] = text(ch[k], 300) || null;
    });
    var wait = Number(raw.waitTimeoutSeconds);
    return {
      id: text(raw.id, 128),
      tenantId: text(raw.tenantId, 128),
      name: text(raw.name, 200),
      status: text(raw.status, 32),
      appearance: {
        colorTheme: hexColor(a.colorTheme) || DEFAULT_COLOR,
        minimized: a.minimized === "bar" ? "bar" : "bubble",
        position: a.position === "left" ? "left" : "right",
        showAgentAvatar: a.showAgentAvatar !== false,
        branding: { enabled: b.enabled !== false, text: text(b.text, 120) },
        welcome: { title: text(w.title, 120), text: text(w.text, 500) }
      },
      channels: channels,
      locale: I18N[raw.locale] ? raw.locale : "auto",
      agentsOnline: raw.agentsOnline === true,
      waitTimeoutSeconds: isFinite(wait) && wait > 0 ? wait : 60
    };
  }

  // ---- alternative channels ----------------------------------------------------------------

  function phone(v) {
    var digits = v.replace(/\D/g, "");
    return digits.length >= 5 && digits.length <= 20 ? (/^\s*\+/.test(v) ? "+" : "") + digits : null;
  }

  /** value -> href, or null when the value cannot make a safe link. */
  var CHANNEL_HREF = {
    whatsapp: function (v) {
      var p = phone(v);
      return p && "https://wa.me/" + p.replace("+", "");
    },
    sms: function (v) {
      var p = phone(v);
      return p && "sms:" + p;
    },
    call: function (v) {
      var p = phone(v);
      return p && "tel:" + p;
    },
    telegram: function (v) {
      var user = v.replace(/^(?:https:\/\/)?t\.me\//i, "").replace(/^@/, "");
      return /^[A-Za-z0-9_]{3,64}$/.test(user) ? "https://t.me/" + user : null;
    },
    messenger: function (v) {
      return /^https:\/\/[^\s"<>]+$/i.test(v) ? v : null;
    },
    email: function (v) {
      return /^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/.test(v)
        ? "mailto:" + encodeURIComponent(v).replace("%40", "@")
        : null;
    }
  };

  function channelLinks(channels) {
    var out = [];
    CHANNELS.forEach(function (k) {
      var v = channels[k];
      var href = v && CHANNEL_HREF[k](v);
      if (href) out.push({ key: k, value: v, href: href });
    });
    return out;
  }

  // ---- colour ------------------------------------------------------------------------------

  function luminance(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    var rgb = [0, 2, 4].map(function (i) {
      var c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }

  var DARK_TEXT = "#111827"; // relative luminance ~0.0113

  /** White or dark text on `hex`, whichever contrasts more (WCAG contrast ratio). */
  function textOn(hex) {
    var l = luminance(hex);
    return 1.05 / (l + 0.05) >= (l + 0.05) / 0.0613 ? "#ffffff" : DARK_TEXT;
  }

  // ---- DOM helpers -------------------------------------------------------------------------

  /** h("button", {class: "x", type: "button", onclick: fn}, [children or text]) */
  function h(tag, props, children) {
    var el = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === null || v === undefined || v === false) return;
      if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), guard(v));
      else if (k === "text") el.textContent = v;
      else if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    (children || []).forEach(function (c) {
      if (c) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return el;
  }

  /** Static, data-free SVG markup only. */
  function icon(name) {
    var span = document.createElement("span");
    span.className = "cc-icon";
    span.setAttribute("aria-hidden", "true");
    span.innerHTML =
      '<svg viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="currentColor" ' +
      'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">' +
      ICONS[name] +
      "</svg>";
    return span;
  }

  var ICONS = {
    chat:
      '<path d="M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8v.5z"/>',
    minimize: '<path d="M6 9l6 6 6-6"/>',
    back: '<path d="M15 18l-6-6 6-6"/>',
    phone:
      '<path d="M22 16.9v3a2 2 0 0 1-2.2 2 19.8 19.8 0 0 1-8.6-3.1 19.5 19.5 0 0 1-6-6A19.8 19.8 0 0 1 2.1 4.2 2 2 0 0 1 4.1 2h3a2 2 0 0 1 2 1.7c.1.9.4 1.8.7 2.7a2 2 0 0 1-.5 2.1L8 9.8a16 16 0 0 0 6 6l1.3-1.3a2 2 0 0 1 2.1-.4c.9.3 1.8.6 2.7.7a2 2 0 0 1 1.7 2z"/>',
    sms: '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>',
    send: '<path d="M22 2L11 13"/><path d="M22 2l-7 20-4-9-9-4z"/>',
    mail: '<rect x="2" y="4" width="20" height="16" rx="2"/><path d="M22 6l-10 7L2 6"/>'
  };

  var CHANNEL_ICON = {
    whatsapp: "chat",
    sms: "sms",
    call: "phone",
    telegram: "send",
    messenger: "chat",
    email: "mail"
  };

  /** Wrap a callback so that nothing it throws reaches the host page. */
  function guard(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (err) {
        quiet(err);
      }
    };
  }

  var quietCount = 0;
  function quiet(err) {
    // Bugs in the widget are ours, not the host's: at most a few debug lines, never an exception.
    if (quietCount++ < 3 && window.console && console.debug) console.debug(LOG, err);
  }

  // ---- styles ------------------------------------------------------------------------------

  var CSS = [
    ":host{all:initial!important;display:block!important;position:fixed!important;z-index:2147483000!important;",
    "top:auto!important;bottom:0!important;right:0!important;left:auto!important;width:auto!important;",
    "height:auto!important;max-width:none!important;max-height:none!important;margin:0!important;",
    "padding:0!important;border:0!important;transform:none!important;visibility:visible!important;",
    "opacity:1!important;pointer-events:auto!important;float:none!important;overflow:visible!important}",
    ":host([data-position=left]){left:0!important;right:auto!important}",
    ":host([data-mode=preview]){position:absolute!important;z-index:10!important}",
    ".cc-root{all:initial;display:flex;flex-direction:column;align-items:flex-end;box-sizing:border-box;",
    "padding:0 20px 20px;font:14px/1.45 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;",
    "color:#111827;-webkit-font-smoothing:antialiased;text-align:left}",
    ".cc-root *,.cc-root *::before,.cc-root *::after{box-sizing:border-box;font:inherit;color:inherit;margin:0}",
    ".cc-left{align-items:flex-start}",
    ".cc-root.cc-bar-mode{padding-bottom:0}",
    "button{cursor:pointer;border:0;background:none;padding:0}",
    "button:focus-visible,a:focus-visible,input:focus-visible,textarea:focus-visible{outline:2px solid var(--cc-theme);outline-offset:2px}",
    ".cc-icon{display:inline-flex;width:20px;height:20px;flex:none}.cc-icon svg{width:100%;height:100%}",
    ".cc-bubble{width:58px;height:58px;border-radius:50%;display:flex;align-items:center;justify-content:center;",
    "background:var(--cc-theme);color:var(--cc-on-theme);box-shadow:0 6px 20px rgba(15,23,42,.25);transition:transform .15s}",
    ".cc-bubble:hover{transform:scale(1.06)}.cc-bubble .cc-icon{width:28px;height:28px}",
    ".cc-bar{display:flex;align-items:center;gap:10px;width:280px;max-width:calc(var(--cc-avail-w) - 40px);height:46px;",
    "padding:0 16px;border-radius:10px 10px 0 0;background:var(--cc-theme);color:var(--cc-on-theme);",
    "font-weight:600;box-shadow:0 -2px 14px rgba(15,23,42,.2)}",
    ".cc-panel{display:flex;flex-direction:column;width:360px;max-width:calc(var(--cc-avail-w) - 40px);",
    "max-height:calc(var(--cc-avail-h) - 40px);background:#fff;border-radius:14px;overflow:hidden;",
    "box-shadow:0 12px 40px rgba(15,23,42,.28)}",
    ".cc-bar-mode .cc-panel{margin-bottom:20px}",
    ".cc-head{position:relative;padding:20px 52px 20px 20px;background:var(--cc-theme);color:var(--cc-on-theme)}",
    ".cc-title{font-size:18px;font-weight:700;line-height:1.3;overflow-wrap:anywhere}",
    ".cc-sub{margin-top:6px;opacity:.92;overflow-wrap:anywhere;white-space:pre-line}",
    ".cc-head-btn{position:absolute;top:14px;right:14px;width:32px;height:32px;border-radius:8px;display:flex;",
    "align-items:center;justify-content:center;color:inherit}.cc-head-btn:hover{background:rgba(127,127,127,.2)}",
    ".cc-head-back{right:auto;left:10px}.cc-has-back{padding-left:48px}",
    ".cc-body{padding:16px 20px;overflow:auto;display:flex;flex-direction:column;gap:12px}",
    ".cc-primary{display:block;width:100%;padding:11px 14px;border-radius:10px;background:var(--cc-theme);",
    "color:var(--cc-on-theme);font-weight:600;text-align:center}",
    ".cc-primary:disabled{opacity:.55;cursor:not-allowed}",
    ".cc-muted{color:#6b7280;font-size:13px}",
    ".cc-links{display:flex;flex-direction:column;gap:6px;padding:0;list-style:none}",
    ".cc-link{display:flex;align-items:center;gap:10px;padding:9px 12px;border:1px solid #e5e7eb;border-radius:10px;",
    "text-decoration:none;color:#111827}.cc-link:hover{border-color:var(--cc-theme)}",
    ".cc-link .cc-icon{color:var(--cc-theme)}.cc-link-label{font-weight:600}",
    ".cc-link-value{margin-left:auto;color:#6b7280;font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:55%}",
    ".cc-form{display:flex;flex-direction:column;gap:10px}",
    ".cc-field{display:flex;flex-direction:column;gap:4px;font-size:13px;font-weight:600}",
    ".cc-input{width:100%;padding:9px 11px;border:1px solid #d1d5db;border-radius:8px;background:#fff;color:#111827;",
    "font-weight:400;font-size:14px}textarea.cc-input{min-height:84px;resize:vertical}",
    ".cc-brand{padding:8px 20px 12px;text-align:center;font-size:12px;color:#9ca3af}",
    ".cc-dark .cc-panel{background:#111827;color:#f3f4f6}.cc-dark .cc-link{border-color:#374151;color:#f3f4f6}",
    ".cc-dark .cc-input{background:#1f2937;border-color:#374151;color:#f3f4f6}.cc-dark .cc-muted{color:#9ca3af}"
  ].join("");

  // ---- the view: state machine + render ----------------------------------------------------

  var SCREENS = { launcher: 1, welcome: 1, prechat: 1 };

  /** (screen, action) -> next screen. Issue 4 adds chat, offline and ended screens here. */
  var TRANSITIONS = {
    launcher: { open: "welcome" },
    welcome: { minimize: "launcher", startChat: "prechat" },
    prechat: { minimize: "launcher", back: "welcome" }
  };

  /**
   * One widget UI inside `parent`: a <curbe-chat-widget> host with an open shadow root.
   * opts: {mode: "page"|"preview", config (normalised), screen, locale (forced), scheme, theme}.
   */
  function createView(parent, opts) {
    var preview = opts.mode === "preview";
    var state = {
      screen: SCREENS[opts.screen] ? opts.screen : "launcher",
      config: opts.config,
      forcedLocale: opts.locale || null,
      scheme: opts.scheme === "dark" ? "dark" : "light",
      themeOverride: hexColor(opts.theme),
      locale: "en",
      draft: { name: "", email: "", message: "" }
    };
    var host = document.createElement("curbe-chat-widget");
    if (!preview) host.id = "curbe-chat-root";
    host.setAttribute("data-mode", preview ? "preview" : "page");
    var shadow = host.attachShadow({ mode: "open" });
    shadow.appendChild(h("style", { text: CSS }));
    var root = h("div", { class: "cc-root" });
    shadow.appendChild(root);
    var alive = true;
    var focusNext = null;

    if (preview && window.getComputedStyle(parent).position === "static") {
      parent.style.position = "relative"; // the preview anchors to its container
    }
    parent.appendChild(host);

    function dispatch(action) {
      var next = (TRANSITIONS[state.screen] || {})[action];
      if (!next) return;
      state.screen = next;
      focusNext = next === "launcher" ? ".cc-launch" : ".cc-focus";
      render();
    }

    function render() {
      if (!alive) return;
      var c = state.config;
      var a = c.appearance;
      var theme = state.themeOverride || a.colorTheme;
      state.locale = resolveLocale(state.forcedLocale, c.locale);
      var t = I18N[state.locale];

      host.setAttribute("data-position", a.position);
      host.setAttribute(
        "style",
        "display:block!important;position:" +
          (preview ? "absolute" : "fixed") +
          "!important;z-index:" +
          (preview ? 10 : 2147483000) +
          "!important;bottom:0!important;top:auto!important;" +
          (a.position === "left" ? "left:0!important;right:auto!important" : "right:0!important;left:auto!important")
      );
      root.className =
        "cc-root cc-" + a.position + (state.scheme === "dark" ? " cc-dark" : "") +
        (a.minimized === "bar" ? " cc-bar-mode" : "") + " cc-screen-" + state.screen;
      root.setAttribute("lang", state.locale);
      root.style.setProperty("--cc-theme", theme);
      root.style.setProperty("--cc-on-theme", textOn(theme));
      // Room for the panel: the viewport, or the preview's container once it has a size.
      root.style.setProperty("--cc-avail-w", preview && parent.clientWidth ? parent.clientWidth + "px" : "100vw");
      root.style.setProperty("--cc-avail-h", preview && parent.clientHeight ? parent.clientHeight + "px" : "100vh");

      while (root.firstChild) root.removeChild(root.firstChild);
      root.appendChild(RENDER[state.screen](state, t, dispatch));

      if (focusNext) {
        var target = root.querySelector(focusNext);
        focusNext = null;
        if (target && target.focus) target.focus();
      }
    }

    return {
      state: state,
      render: render,
      dispatch: dispatch,
      setConfig: function (config) {
        state.config = config;
        render();
      },
      show: function (screen) {
        if (!SCREENS[screen]) throw new Error("unknown screen " + screen);
        state.screen = screen;
        render();
      },
      destroy: function () {
        alive = false;
        if (host.parentNode) host.parentNode.removeChild(host);
      }
    };
  }

  // One function per screen: (state, copy, dispatch) -> element. Issue 4 adds more.
  var RENDER = {
    launcher: function (state, t, dispatch) {
      var open = function () {
        dispatch("open");
      };
      if (state.config.appearance.minimized === "bar") {
        return h("button", { type: "button", class: "cc-launch cc-bar", "aria-label": t.openChat, onclick: open }, [
          icon("chat"),
          h("span", { text: t.chatWithUs })
        ]);
      }
      return h("button", { type: "button", class: "cc-launch cc-bubble", "aria-label": t.openChat, title: t.chatWithUs, onclick: open }, [
        icon("chat")
      ]);
    },

    welcome: function (state, t, dispatch) {
      var c = state.config;
      var w = c.appearance.welcome;
      var body = [];
      if (c.channels.liveChat) {
        body.push(h("button", { type: "button", class: "cc-primary cc-start cc-focus", onclick: function () {
          dispatch("startChat");
        } }, [t.startChat]));
      }
      var links = channelLinks(c.channels);
      if (links.length) {
        if (c.channels.liveChat) body.push(h("p", { class: "cc-muted", text: t.orReachUs }));
        body.push(h("ul", { class: "cc-links" }, links.map(function (l) {
          return h("li", {}, [h("a", { class: "cc-link cc-link-" + l.key, href: l.href, target: "_blank", rel: "noopener noreferrer" }, [
            icon(CHANNEL_ICON[l.key]),
            h("span", { class: "cc-link-label", text: t[l.key] }),
            h("span", { class: "cc-link-value", text: l.value })
          ])]);
        })));
      }
      return panel(state, t, dispatch, { title: w.title || t.welcomeTitle, text: w.text || t.welcomeText }, body);
    },

    prechat: function (state, t, dispatch) {
      var d = state.draft;
      function field(key, label, tag, type, auto) {
        var input = h(tag, { class: "cc-input cc-" + key, name: key, type: type, autocomplete: auto, required: true, maxlength: tag === "textarea" ? 5000 : 200 });
        input.value = d[key];
        input.addEventListener("input", guard(function () {
          d[key] = input.value;
        }));
        return h("label", { class: "cc-field" }, [h("span", { text: label }), input]);
      }
      var form = h("form", { class: "cc-form", novalidate: true, onsubmit: function (e) {
        e.preventDefault(); // never navigate the host page; issue 4 sends the form (submitPrechat)
      } }, [
        field("name", t.name, "input", "text", "name"),
        field("email", t.emailField, "input", "email", "email"),
        field("message", t.message, "textarea", null, "off"),
        h("button", { type: "submit", class: "cc-primary cc-send", disabled: true }, [t.send])
      ]);
      var first = form.querySelector("input");
      if (first) first.className += " cc-focus";
      return panel(state, t, dispatch, { title: t.prechatTitle, text: t.prechatText, back: true }, [form]);
    }
  };

  /** The open panel shared by every screen but the launcher: header, body, branding. */
  function panel(state, t, dispatch, head, body) {
    var a = state.config.appearance;
    var header = h("div", { class: "cc-head" + (head.back ? " cc-has-back" : "") }, [
      h("div", { class: "cc-title", role: "heading", "aria-level": "2", text: head.title }),
      head.text ? h("div", { class: "cc-sub", text: head.text }) : null,
      head.back
        ? h("button", { type: "button", class: "cc-head-btn cc-head-back", "aria-label": t.back, title: t.back, onclick: function () {
          dispatch("back");
        } }, [icon("back")])
        : null,
      h("button", { type: "button", class: "cc-head-btn cc-minimize", "aria-label": t.minimize, title: t.minimize, onclick: function () {
        dispatch("minimize");
      } }, [icon("minimize")])
    ]);
    var brand = a.branding.enabled ? h("div", { class: "cc-brand", text: a.branding.text || t.poweredBy }) : null;
    return h("div", { class: "cc-panel", role: "dialog", "aria-label": head.title, onkeydown: function (e) {
      if (e.key === "Escape") dispatch("minimize");
    } }, [header, body.length ? h("div", { class: "cc-body" }, body) : null, brand]);
  }

  // ---- the loader: storage, heartbeat, boot ------------------------------------------------

  function makeStore(widgetId) {
    var prefix = "curbe:" + widgetId + ":";
    var cookiePrefix = "curbe_" + widgetId.replace(/[^A-Za-z0-9_]/g, "") + "_";
    function local() {
      try {
        var s = window.localStorage;
        var probe = prefix + "probe";
        s.setItem(probe, "1");
        s.removeItem(probe);
        return s;
      } catch (e) {
        return null;
      }
    }
    var ls = local();
    return {
      get: function (key) {
        try {
          if (ls) return ls.getItem(prefix + key);
          var m = document.cookie.match(new RegExp("(?:^|; )" + cookiePrefix + key + "=([^;]*)"));
          return m ? decodeURIComponent(m[1]) : null;
        } catch (e) {
          return null;
        }
      },
      set: function (key, value) {
        try {
          if (ls) return ls.setItem(prefix + key, value);
          document.cookie =
            cookiePrefix + key + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax" +
            (location.protocol === "https:" ? "; Secure" : "");
        } catch (e) {
          /* storage is a convenience: without it the visitor is new on each page */
        }
      }
    };
  }

  /** fetch with a timeout; resolves {status, body} and rejects only on network failure. */
  function request(method, url, payload, token) {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctrl && setTimeout(function () {
      ctrl.abort();
    }, REQUEST_TIMEOUT_MS);
    var headers = {};
    if (payload) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(url, {
      method: method,
      headers: headers,
      body: payload ? JSON.stringify(payload) : undefined,
      credentials: "omit",
      mode: "cors",
      signal: ctrl ? ctrl.signal : undefined
    }).then(function (res) {
      clearTimeout(timer);
      return res.json().catch(function () {
        return null;
      }).then(function (body) {
        return { status: res.status, body: body };
      });
    }, function (err) {
      clearTimeout(timer);
      throw err;
    });
  }

  /** The embedded widget's life: heartbeat + config -> render; 403/404 -> nothing, stop. */
  function createLoader(script) {
    var d = script.dataset || {};
    var widgetId = text(d.widgetId, 128);
    var src = new URL(script.src, location.href);
    var base = src.origin + src.pathname.replace(/\/[^/]*$/, "");
    var api = base + "/api/chat/widgets/" + encodeURIComponent(widgetId);
    var store = makeStore(widgetId);
    var theme = text(d.theme, 16).toLowerCase();
    var s = {
      widgetId: widgetId,
      tenantId: text(d.tenant, 128) || null,
      widgetStatus: null,
      visitorId: store.get("visitorId"),
      conversationId: null,
      heartbeatOk: false,
      config: null,
      stopped: false,
      error: null
    };
    var view = null;
    var inflight = false;
    var again = false;
    var configLoading = false;
    var timer = null;

    function payload() {
      var p = {
        currentDomain: location.hostname,
        currentUrl: location.href.slice(0, 2048),
        timestamp: new Date().toISOString(),
        pageTitle: String(document.title || "").slice(0, 500),
        referrer: document.referrer ? document.referrer.slice(0, 2048) : null
      };
      if (s.tenantId) p.tenantId = s.tenantId;
      if (s.visitorId && store.get("visitorToken")) p.visitorId = s.visitorId;
      try {
        p.timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || null;
      } catch (e) {
        /* old browser */
      }
      p.language = navigator.language ? String(navigator.language).slice(0, 35) : null;
      return p;
    }

    function stop(reason, message) {
      s.stopped = true;
      s.error = reason;
      if (timer) clearInterval(timer);
      if (view) view.destroy();
      view = null;
      if (message && window.console && console.warn) console.warn(LOG + " " + message);
    }

    function beat() {
      if (s.stopped) return;
      if (inflight) {
        again = true;
        return;
      }
      inflight = true;
      request("POST", api + "/heartbeat", payload(), store.get("visitorToken"))
        .then(onHeartbeat, function () {
          s.error = "network"; // retried on the next tick; the page stays as it is
        })
        .catch(quiet)
        .then(function () {
          inflight = false;
          if (again) {
            again = false;
            beat();
          }
        });
    }

    function onHeartbeat(res) {
      var body = res.body || {};
      if (res.status === 200) {
        s.error = null;
        s.heartbeatOk = true;
        s.widgetStatus = body.widgetStatus || "ACTIVE";
        s.conversationId = body.conversationId || null;
        if (typeof body.visitorId === "string") store.set("visitorId", (s.visitorId = body.visitorId));
        if (typeof body.visitorToken === "string") store.set("visitorToken", body.visitorToken);
        loadConfig();
        mount();
      } else if (res.status === 403) {
        s.widgetStatus = (body.error && body.error.widgetStatus) || "MISCONFIGURED";
        stop("domain_not_allowed",
          location.hostname + " is not in the Targeting list of widget " + widgetId +
          ", so the chat is not shown here. Add this domain in Settings > Widgets > Targeting.");
      } else if (res.status === 404) {
        stop("not_found", "widget " + widgetId + " does not exist; check data-widget-id in the embed code.");
      } else if (res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408) {
        var code = body.error && body.error.code ? " (" + body.error.code + ")" : "";
        stop("rejected", "the server refused the installation ping" + code + "; the chat is not shown.");
      } else {
        s.error = "http_" + res.status; // 5xx, 429: retried on the next tick
      }
    }

    function loadConfig() {
      if (s.config || configLoading || s.stopped) return;
      configLoading = true;
      request("GET", api + "/config")
        .then(function (res) {
          if (res.status === 200 && isObj(res.body)) {
            s.config = normalizeConfig(res.body);
            mount();
          } else if (res.status === 404) {
            stop("not_found", "widget " + widgetId + " does not exist; check data-widget-id in the embed code.");
          }
        }, function () {
          /* retried with the next heartbeat */
        })
        .catch(quiet)
        .then(function () {
          configLoading = false;
        });
    }

    function mount() {
      if (view || s.stopped || !s.heartbeatOk || !s.config || !document.body) return;
      if (typeof document.body.attachShadow !== "function") return; // too old: render nothing
      view = createView(document.body, {
        mode: "page",
        config: s.config,
        locale: text(d.locale, 8).toLowerCase(),
        scheme: theme,
        theme: theme
      });
      view.render();
    }

    function onNavigate() {
      if (!s.stopped) setTimeout(guard(beat), 0); // after the URL changed
    }

    function wrapHistory(name) {
      var original = history[name];
      if (typeof original !== "function") return;
      history[name] = function () {
        var result = original.apply(this, arguments);
        guard(onNavigate)();
        return result;
      };
    }

    function lastBeat() {
      if (s.stopped || !s.heartbeatOk || !navigator.sendBeacon) return;
      // A beacon cannot carry headers: the token travels in the body (text/plain avoids preflight).
      var p = payload();
      var token = store.get("visitorToken");
      if (token) p.visitorToken = token;
      navigator.sendBeacon(api + "/heartbeat", new Blob([JSON.stringify(p)], { type: "text/plain" }));
    }

    function start() {
      beat(); // first: nothing renders before the server said this page may show the widget
      loadConfig();
      timer = setInterval(guard(function () {
        if (document.visibilityState !== "hidden") {
          beat();
          loadConfig();
        }
      }), HEARTBEAT_MS);
      window.addEventListener("popstate", guard(onNavigate));
      window.addEventListener("hashchange", guard(onNavigate));
      wrapHistory("pushState");
      wrapHistory("replaceState");
      window.addEventListener("pagehide", guard(lastBeat));
      document.addEventListener("visibilitychange", guard(function () {
        if (document.visibilityState === "visible") beat();
      }));
    }

    return {
      start: start,
      snapshot: function () {
        var out = {};
        Object.keys(s).forEach(function (k) {
          out[k] = k === "config" ? null : s[k];
        });
        out.configLoaded = !!s.config;
        out.mounted = !!view;
        out.screen = view ? view.state.screen : null;
        out.locale = view ? view.state.locale : null;
        return out;
      }
    };
  }

  function findScript() {
    if (SCRIPT && SCRIPT.getAttribute && SCRIPT.getAttribute("data-widget-id") !== null) return SCRIPT;
    return document.querySelector('script[data-widget-id][src*="widget.js"]') || SCRIPT;
  }

  var loader = null;

  function boot() {
    var script = findScript();
    if (!script || !script.getAttribute("data-widget-id")) return; // e.g. Settings: preview only
    if (typeof fetch !== "function") return;
    loader = createLoader(script);
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", guard(loader.start));
    } else {
      loader.start();
    }
  }

  // ---- the one global ----------------------------------------------------------------------

  /**
   * Render the widget into `container` from a config object (the shape of GET /config) with no
   * network. options: {screen: "launcher"|"welcome"|"prechat", locale: "en"|"es", theme: "light"|"dark"}.
   * Returns {update(config), show(screen), destroy()}.
   */
  function preview(container, config, options) {
    options = options || {};
    var view = createView(container, {
      mode: "preview",
      config: normalizeConfig(config),
      screen: options.screen,
      locale: options.locale,
      scheme: options.theme
    });
    view.render();
    return {
      update: function (next) {
        view.setConfig(normalizeConfig(next));
      },
      show: function (screen) {
        view.show(screen);
      },
      destroy: function () {
        view.destroy();
      },
      state: function () {
        return { screen: view.state.screen, locale: view.state.locale };
      }
    };
  }

  try {
    window.CurbeChat = Object.freeze({
      version: VERSION,
      preview: preview,
      state: function () {
        return loader ? loader.snapshot() : { mounted: false, screen: null, widgetStatus: null, visitorId: null };
      }
    });
    boot();
  } catch (err) {
    quiet(err);
  }
})();
