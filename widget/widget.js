/*! Curbe Chat widget: the embed loader and the visitor UI. Plain ES2019, no dependencies. */
/*
 * Two ways in, one UI:
 *
 *   1. The embed snippet
 *        <script async src="https://HOST/widget.js" data-widget-id="wgt_..." data-tenant="ten_..."
 *                [data-theme="#hex"|"light"|"dark"] [data-locale="en"|"es"]></script>
 *      sends the installation heartbeat, loads the widget's config (and, for a returning visitor,
 *      their latest conversation) and renders once those answered. 403 (domain outside Targeting)
 *      or 404 renders nothing and stops; an unreachable server renders nothing and retries.
 *   2. window.CurbeChat.preview(container, config, options) for the Settings page: the same view
 *      rendered from a config object inside `container`, with sample data, no network, no heartbeat.
 *
 * Layout of the file: constants and copy -> config normalisation -> DOM helpers -> the view (an
 * explicit `state`, a table of screen transitions, one render() path) -> the conversation model
 * (events applied to the state, deduplicated by seq) -> the loader (storage, heartbeat, REST, the
 * WebSocket, the outbox) -> the one global, window.CurbeChat = {version, preview, state}.
 *
 * Screens: launcher | welcome | prechat | waiting | open | solved | timeout | offline | sent.
 * The chat screens (waiting/open/solved/timeout) follow the conversation's server status through
 * the "changed" transition; nothing but a server event moves a visitor out of "waiting".
 *
 * Realtime: one WebSocket per page from the first good heartbeat on, chat or not: an agent may
 * start a chat (a conversation_created for an unseen id is adopted when none is active or the
 * current one is SOLVED; an OPEN one opens the panel), `ready` and agents_online_changed keep
 * agentsOnline live, queue_position shows the WAITING chat's place in line. With a chat loaded:
 * ready -> resume {afterSeq: the highest contiguous seq shown} -> the server replays what was
 * missed -> resumed. Reconnects with jittered exponential backoff (0.5 s doubling to 15 s), at
 * once on `online` / page visible; 4401 -> a fresh heartbeat (token) first; 4404 -> the widget is
 * gone, render nothing. While the socket is open the 15 s heartbeat is a `heartbeat` frame on it
 * (no HTTP request at all); pings go only when nothing else was sent for a ping interval.
 * Messages are optimistic (sending -> sent | failed + Retry) and carry a clientMessageId that
 * the server stores once, so resending over the socket or REST never doubles a message.
 *
 * Rules: nothing ever throws into the host page (every entry point is guarded); data from the
 * server, the visitor or the host page is set as text (textContent) or as a validated attribute,
 * never through innerHTML; all CSS lives in a Shadow DOM on a custom element the host's CSS cannot
 * reach; the host page is never covered beyond the launcher and the panel; every time shown is a
 * server `createdAt` formatted in the browser's time zone.
 */
(function () {
  "use strict";

  if (typeof window === "undefined" || typeof document === "undefined" || window.CurbeChat) return;

  var VERSION = "0.4.0";
  var SCRIPT = document.currentScript; // only set while this file first runs
  var HEARTBEAT_MS = 15000;
  var REQUEST_TIMEOUT_MS = 10000;
  var ACK_MS = 8000; // no ack over the socket by then: send the same message over REST
  var TYPING_REPEAT_MS = 4000; // while keys come, "on" again this often (the server forwards it)
  var TYPING_IDLE_MS = 5000; // no key for this long: "off"
  var READ_EVERY_MS = 1000; // the visitor's read mark goes out at most this often
  var PING_MS = 25000; // keep-alive; a socket silent for 2 pings is presumed dead
  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 15000;
  var SOLVED_KEEP_MS = 30 * 60 * 1000; // a chat solved this recently is shown again after a reload
  var MAX_TEXT = 5000;
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
      phone: "Phone (optional)",
      send: "Start chat",
      back: "Back",
      poweredBy: "Powered by Curbe Chat",
      searching: "Searching for available agents\u2026",
      connecting: "Connecting\u2026",
      inLine: "You are number {n} in line",
      aboutMin: "About {n} min",
      reconnecting: "Reconnecting\u2026",
      connectedWith: "Connected with {name}",
      isTyping: "{name} is typing\u2026",
      seen: "Seen",
      joined: "{name} joined the chat",
      transferred: "You are now chatting with {name}",
      anAgent: "An agent",
      agentOnline: "Agent online",
      typeMessage: "Type a message\u2026",
      sendMessage: "Send",
      attach: "Attach an image or a PDF",
      fileTooBig: "This file is too large to send",
      fileType: "Send an image (PNG, JPEG, GIF, WebP) or a PDF",
      uploading: "Sending {name}",
      download: "Download {name}",
      sending: "Sending\u2026",
      sent: "Sent",
      notSent: "Not sent",
      retry: "Retry",
      earlier: "Load earlier messages",
      endedTitle: "Chat ended",
      ended: "This chat has ended. Thanks for reaching out!",
      newChat: "Start new chat",
      rateAsk: "How was your chat?",
      rateStars: "{n} out of 5",
      rateComment: "Add a comment (optional)",
      rateSend: "Send rating",
      rateThanks: "Thanks for your rating!",
      rateFailed: "Your rating could not be sent. Try again.",
      offlineTitle: "We're offline",
      offlineText: "Leave us a message and we'll reply by email.",
      leaveTitle: "Leave a message",
      timeoutTitle: "Nobody is free right now",
      timeoutText: "You can keep waiting, leave us a message, or reach us another way.",
      keepWaiting: "Keep waiting",
      leaveMessage: "Leave a message",
      sendNote: "Send message",
      thanksTitle: "Message sent",
      thanks: "Thanks! We got your message and will reply by email.",
      newMessages: "New messages",
      errRequired: "Please fill in this field.",
      errEmail: "Enter a valid email address, like name@example.com.",
      errPhone: "Enter a valid phone number.",
      errLong: "This is too long.",
      errSend: "We couldn't send this. Check your connection and try again.",
      errCheck: "Please check the form and try again.",
      sampleAgent: "Alex Rivera",
      sampleQuestion: "Hi! Can I get a quote for my car?",
      sampleAnswer: "Of course! What's the make and model?"
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
      phone: "Tel\u00e9fono (opcional)",
      send: "Iniciar chat",
      back: "Volver",
      poweredBy: "Con la tecnolog\u00eda de Curbe Chat",
      searching: "Buscando agentes disponibles\u2026",
      connecting: "Conectando\u2026",
      inLine: "Eres el n\u00famero {n} en la fila",
      aboutMin: "Unos {n} min",
      reconnecting: "Reconectando\u2026",
      connectedWith: "Conectado con {name}",
      isTyping: "{name} est\u00e1 escribiendo\u2026",
      seen: "Visto",
      joined: "{name} se uni\u00f3 al chat",
      transferred: "Ahora hablas con {name}",
      anAgent: "Un agente",
      agentOnline: "Agente en l\u00ednea",
      typeMessage: "Escribe un mensaje\u2026",
      sendMessage: "Enviar",
      attach: "Adjuntar una imagen o un PDF",
      fileTooBig: "Este archivo es demasiado grande para enviarlo",
      fileType: "Env\u00eda una imagen (PNG, JPEG, GIF, WebP) o un PDF",
      uploading: "Enviando {name}",
      download: "Descargar {name}",
      sending: "Enviando\u2026",
      sent: "Enviado",
      notSent: "No enviado",
      retry: "Reintentar",
      earlier: "Cargar mensajes anteriores",
      endedTitle: "Chat finalizado",
      ended: "Este chat ha terminado. \u00a1Gracias por escribirnos!",
      newChat: "Iniciar un chat nuevo",
      rateAsk: "\u00bfQu\u00e9 te pareci\u00f3 el chat?",
      rateStars: "{n} de 5",
      rateComment: "A\u00f1ade un comentario (opcional)",
      rateSend: "Enviar valoraci\u00f3n",
      rateThanks: "\u00a1Gracias por tu valoraci\u00f3n!",
      rateFailed: "No se pudo enviar tu valoraci\u00f3n. Int\u00e9ntalo de nuevo.",
      offlineTitle: "Estamos desconectados",
      offlineText: "D\u00e9janos un mensaje y te responderemos por correo.",
      leaveTitle: "Deja un mensaje",
      timeoutTitle: "No hay nadie disponible en este momento",
      timeoutText: "Puedes seguir esperando, dejarnos un mensaje o contactarnos por otro medio.",
      keepWaiting: "Seguir esperando",
      leaveMessage: "Dejar un mensaje",
      sendNote: "Enviar mensaje",
      thanksTitle: "Mensaje enviado",
      thanks: "\u00a1Gracias! Recibimos tu mensaje y te responderemos por correo.",
      newMessages: "Mensajes nuevos",
      errRequired: "Completa este campo.",
      errEmail: "Escribe un correo v\u00e1lido, como nombre@ejemplo.com.",
      errPhone: "Escribe un n\u00famero de tel\u00e9fono v\u00e1lido.",
      errLong: "Es demasiado largo.",
      errSend: "No pudimos enviarlo. Revisa tu conexi\u00f3n e int\u00e9ntalo de nuevo.",
      errCheck: "Revisa el formulario e int\u00e9ntalo de nuevo.",
      sampleAgent: "Alex Rivera",
      sampleQuestion: "\u00a1Hola! \u00bfMe pueden cotizar el seguro de mi auto?",
      sampleAnswer: "\u00a1Claro! \u00bfCu\u00e1l es la marca y el modelo?"
    }
  };

  function resolveLocale(forced, configured) {
    var picks = [forced, configured];
    for (var i = 0; i < picks.length; i++) if (I18N[picks[i]]) return picks[i];
    var nav = window.navigator || {};
    var lang = (nav.languages && nav.languages[0]) || nav.language || "en";
    return /^es\b/i.test(String(lang)) ? "es" : "en";
  }

  function fill(template, value) {
    return template.replace(/\{\w+\}/, function () {
      return value;
    });
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
    var most = Number(raw.maxUploadBytes);
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
      waitTimeoutSeconds: isFinite(wait) && wait > 0 ? wait : 60,
      maxUploadBytes: isFinite(most) && most > 0 ? most : 10485760
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


  // ---- time, ids, validation ---------------------------------------------------------------

  var timeFormats = {};

  /**
   * A server timestamp (ISO 8601, UTC, "Z") as the visitor's wall-clock time, in the browser's
   * time zone: "1:20 PM" today, "Nov 28, 1:20 PM" another day. The client clock only decides
   * "today"; it is never the time shown.
   */
  function formatTime(iso, locale) {
    var d = typeof iso === "string" ? new Date(iso) : null;
    if (!d || isNaN(d.getTime())) return "";
    var now = new Date();
    var today = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
    var sameYear = d.getFullYear() === now.getFullYear();
    var key = locale + (today ? "t" : sameYear ? "d" : "y");
    try {
      if (!timeFormats[key]) {
        var opts = { hour: "numeric", minute: "2-digit" };
        if (!today) {
          opts.month = "short";
          opts.day = "numeric";
          if (!sameYear) opts.year = "numeric";
        }
        timeFormats[key] = new Intl.DateTimeFormat(locale, opts);
      }
      return timeFormats[key].format(d);
    } catch (e) {
      return d.toLocaleTimeString();
    }
  }

  /** A random id for clientMessageId: the server stores a message once per id. */
  function newId() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") return "cm-" + c.randomUUID();
    var out = "cm-";
    var bytes = c && c.getRandomValues ? c.getRandomValues(new Uint8Array(16)) : null;
    for (var i = 0; i < 16; i++) out += ((bytes ? bytes[i] : Math.random() * 256) | 256).toString(16).slice(1);
    return out;
  }

  var EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
  var PHONE_RE = /^\+?[0-9 ()\-.]{5,32}$/;

  /** Field -> copy key of the problem, for the prechat form ("message") or the offline one ("note"). */
  function validate(d, offline) {
    var e = {};
    var name = d.name.trim();
    var email = d.email.trim();
    var body = offline ? "note" : "message";
    if (!name) e.name = "errRequired";
    else if (name.length > 200) e.name = "errLong";
    if (!email) e.email = "errRequired";
    else if (email.length > 320 || !EMAIL_RE.test(email)) e.email = "errEmail";
    if (offline && d.phone.trim() && !PHONE_RE.test(d.phone.trim())) e.phone = "errPhone";
    if (!d[body].trim()) e[body] = "errRequired";
    else if (d[body].length > MAX_TEXT) e[body] = "errLong";
    return e;
  }

  function initials(name) {
    var parts = String(name || "?").trim().split(/\s+/).slice(0, 2);
    return parts.map(function (p) {
      return p.charAt(0);
    }).join("").toUpperCase() || "?";
  }

  /** An avatar URL is used only when it is a plain http(s) URL. */
  function safeImage(url) {
    return typeof url === "string" && /^https?:\/\/[^\s"'<>]+$/i.test(url) && url.length < 2048 ? url : null;
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
    ".cc-dark .cc-input{background:#1f2937;border-color:#374151;color:#f3f4f6}.cc-dark .cc-muted{color:#9ca3af}",
    ".cc-launch{position:relative}",
    ".cc-badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;",
    "background:#dc2626;color:#fff;font-size:11px;font-weight:700;line-height:20px;text-align:center}",
    ".cc-tall{height:560px}",
    ".cc-has-av{display:flex;align-items:center;gap:12px}",
    ".cc-av{position:relative;width:40px;height:40px;border-radius:50%;flex:none;display:flex;align-items:center;",
    "justify-content:center;background:rgba(255,255,255,.22);font-weight:700;font-size:15px}",
    ".cc-av img{width:100%;height:100%;border-radius:50%;object-fit:cover;display:block}",
    ".cc-av .cc-dot{position:absolute;right:-1px;bottom:-1px;border:2px solid var(--cc-theme)}",
    ".cc-dot{display:inline-block;width:10px;height:10px;border-radius:50%;background:#22c55e;vertical-align:middle;margin-right:6px}",
    ".cc-status{display:flex;align-items:center;gap:10px;margin:12px 16px 0;padding:10px 12px;border-radius:10px;",
    "background:#f3f4f6;color:#374151;font-size:13px;font-weight:600}",
    ".cc-queue,.cc-eta{font-weight:400;font-size:12px;margin-top:2px}",
    ".cc-recon{margin:8px 16px 0;font-size:12px;color:#92400e;text-align:center}",
    ".cc-seen{margin-left:4px}",
    ".cc-rate{display:flex;flex-direction:column;gap:8px;align-items:center}.cc-rate-ask{margin:0;font-weight:600}",
    ".cc-stars{display:flex;gap:4px}.cc-star{font-size:26px;line-height:1;padding:2px 4px;border-radius:6px;color:#9ca3af}",
    ".cc-star-on{color:#d97706}.cc-star:focus-visible{outline:2px solid var(--cc-theme);outline-offset:1px}",
    ".cc-rate-comment{width:100%;box-sizing:border-box;resize:vertical}.cc-rated{margin:0;font-weight:600}",
    ".cc-typing{min-height:18px;padding:0 16px 4px;font-size:12px;font-style:italic;color:#4b5563}",
    ".cc-dark .cc-typing{color:#d1d5db}",
    ".cc-spin{width:18px;height:18px;flex:none;border-radius:50%;border:2px solid #d1d5db;border-top-color:var(--cc-theme);",
    "animation:cc-spin .8s linear infinite}@keyframes cc-spin{to{transform:rotate(360deg)}}",
    ".cc-log{flex:1;min-height:0;overflow-y:auto;padding:14px 16px;display:flex;flex-direction:column;gap:10px}",
    ".cc-msg{display:flex;flex-direction:column;align-items:flex-start;max-width:82%;gap:2px}",
    ".cc-msg-visitor{align-self:flex-end;align-items:flex-end}",
    ".cc-who{font-size:12px;color:#6b7280;font-weight:600}",
    ".cc-bub{padding:8px 12px;border-radius:14px;background:#f3f4f6;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".cc-msg-visitor .cc-bub{background:var(--cc-theme);color:var(--cc-on-theme);border-bottom-right-radius:4px}",
    ".cc-msg-agent .cc-bub{border-bottom-left-radius:4px}",
    ".cc-meta{display:flex;gap:6px;align-items:center;font-size:11px;color:#6b7280}",
    ".cc-msg-sending .cc-bub{opacity:.7}.cc-msg-failed .cc-bub{opacity:.6}.cc-msg-failed .cc-meta{color:#b91c1c}",
    ".cc-retry{font-weight:700;text-decoration:underline;color:#b91c1c}",
    ".cc-earlier{display:block;margin:0 auto 10px;padding:6px 12px;border-radius:14px;border:1px solid rgba(0,0,0,.15);background:transparent;color:inherit;font:inherit;font-size:13px;cursor:pointer}",
    ".cc-sys{align-self:center;font-size:12px;color:#6b7280;text-align:center;padding:2px 8px}",
    ".cc-ended{margin:0 16px 10px;padding:12px;border-radius:10px;background:#f3f4f6;display:flex;flex-direction:column;gap:10px;text-align:center}",
    ".cc-compose{display:flex;gap:8px;align-items:flex-end;padding:10px 12px;border-top:1px solid #e5e7eb}",
    ".cc-compose .cc-input{flex:1;min-height:42px;max-height:120px;resize:none}",
    ".cc-picker{display:none}.cc-attach{width:36px;height:42px;border:1px solid #d1d5db;border-radius:10px;background:none;font:inherit;font-size:20px;cursor:pointer;color:inherit}",
    ".cc-file{display:block;max-width:100%;padding:8px 10px;border:1px solid #d1d5db;border-radius:12px;background:#fff;color:#111827;font:inherit;text-align:left;cursor:pointer;overflow-wrap:anywhere}",
    ".cc-file img{display:block;max-width:200px;max-height:200px;border-radius:8px}.cc-progress{width:160px}",
    ".cc-sendbtn{width:42px;height:42px;border-radius:10px;flex:none;display:flex;align-items:center;justify-content:center;",
    "background:var(--cc-theme);color:var(--cc-on-theme)}",
    ".cc-sendbtn:disabled,.cc-input:disabled{opacity:.5;cursor:not-allowed}",
    ".cc-secondary{display:block;width:100%;padding:10px 14px;border-radius:10px;border:1px solid var(--cc-theme);",
    "color:var(--cc-theme);font-weight:600;text-align:center}",
    ".cc-err{color:#b91c1c;font-size:12px;font-weight:500}.cc-input[aria-invalid=true]{border-color:#dc2626}",
    ".cc-dark .cc-status,.cc-dark .cc-ended,.cc-dark .cc-msg-agent .cc-bub{background:#1f2937;color:#f3f4f6}",
    ".cc-dark .cc-compose{border-color:#374151}"
  ].join("");

  // ---- the view: state machine + render ----------------------------------------------------

  var SCREENS = { launcher: 1, welcome: 1, prechat: 1, waiting: 1, open: 1, solved: 1, timeout: 1, offline: 1, sent: 1 };

  /** The screen of the current conversation, from its server status (never a guess). */
  function chatScreen(s) {
    var c = s.conv;
    if (!c) return "welcome";
    if (c.status === "OPEN") return "open";
    if (c.status === "SOLVED") return "solved";
    return (c.waitTimedOut || c.noAgents) && s.keepWaiting !== c.id ? "timeout" : "waiting";
  }

  function followActive(s) {
    return s.conv && s.conv.status !== "SOLVED" ? chatScreen(s) : null;
  }

  function followOpen(s) {
    return s.conv && s.conv.status === "OPEN" ? "open" : null;
  }

  function backFromOffline(s) {
    return s.conv && s.conv.status === "WAITING" ? chatScreen(s) : "welcome";
  }

  /**
   * (screen, action) -> the next screen, or a function of the state returning it (null: stay).
   * "changed" is dispatched after every change of the conversation (a server event or answer);
   * while minimized, the transition applies to the screen the launcher will reopen (state.back).
   */
  var TRANSITIONS = {
    launcher: { open: function (s) {
      return s.back;
    } },
    welcome: { minimize: "launcher", changed: followActive, startChat: function (s) {
      return s.agentsOnline ? "prechat" : "offline";
    } },
    prechat: { minimize: "launcher", back: "welcome", changed: followActive },
    waiting: { minimize: "launcher", changed: chatScreen },
    open: { minimize: "launcher", changed: chatScreen },
    solved: { minimize: "launcher", changed: chatScreen, newChat: "prechat" },
    timeout: { minimize: "launcher", changed: chatScreen, keepWaiting: "waiting", leaveMessage: "offline" },
    offline: { minimize: "launcher", changed: followOpen, back: backFromOffline, sent: "sent" },
    sent: { minimize: "launcher", changed: followOpen, back: backFromOffline }
  };

  /**
   * One widget UI inside `parent`: a <curbe-chat-widget> host with an open shadow root.
   * opts: {mode: "page"|"preview", config (normalised), screen, locale (forced), scheme, theme,
   * effects: {action: fn(state, arg) -> false to stay}, identity: {name, email}, persist: fn(state)}.
   */
  function createView(parent, opts) {
    var preview = opts.mode === "preview";
    var effects = opts.effects || {};
    var who = opts.identity || {};
    var state = {
      screen: SCREENS[opts.screen] ? opts.screen : "launcher",
      back: "welcome", // the screen the launcher reopens
      config: opts.config,
      forcedLocale: opts.locale || null,
      scheme: opts.scheme === "dark" ? "dark" : "light",
      themeOverride: hexColor(opts.theme),
      locale: "en",
      agentsOnline: opts.config.agentsOnline,
      draft: { name: who.name || "", email: who.email || "", message: "", phone: "", note: "", text: "", score: 0, comment: "" },
      errors: {}, // field -> copy key
      formError: null,
      busy: false,
      focus: null, // a selector an effect wants focused after the next render
      conv: null, // {id, status, assignee, waitTimedOut, lastSeq (contiguous), seen, statusSeq}
      items: {}, // seq -> {kind: "msg"|"joined", ...}, rendered in seq order
      outbox: [], // the visitor's messages not stored yet: {cmid, text, status: sending|failed}
      socket: preview ? "ready" : "idle", // idle | connecting | ready | closed
      keepWaiting: null, // id of the conversation the visitor chose to keep waiting for
      typing: null, // {conversationId, senderId, name, until}: an agent typing in the current chat
      onTyping: opts.onTyping || null, // fn(text): the composer changed (widget.js sends hints)
      fileUrl: opts.fileUrl || null, // fn(file): a thumbnail's blob: address, or null while it loads
      unread: 0
    };
    if (state.screen !== "launcher") state.back = state.screen;
    var host = document.createElement("curbe-chat-widget");
    if (!preview) host.id = "curbe-chat-root";
    host.setAttribute("data-mode", preview ? "preview" : "page");
    var shadow = host.attachShadow({ mode: "open" });
    shadow.appendChild(h("style", { text: CSS }));
    var root = h("div", { class: "cc-root" });
    shadow.appendChild(root);
    var alive = true;
    var focusNext = null;
    var scheduled = null;
    var drawn = null; // what the last render showed, for the launcher's no-op updates

    if (preview && window.getComputedStyle(parent).position === "static") {
      parent.style.position = "relative"; // the preview anchors to its container
    }
    parent.appendChild(host);

    /** A visitor's action: its effect (if any) first, then the transition table. */
    function dispatch(action, arg) {
      var effect = effects[action];
      if (effect && effect(state, arg) === false) {
        focusNext = state.focus;
        state.focus = null;
        render();
        return;
      }
      move(action, true);
    }

    function move(action, user) {
      var closed = state.screen === "launcher";
      var from = closed && action !== "open" ? state.back : state.screen;
      var next = (TRANSITIONS[from] || {})[action];
      if (typeof next === "function") next = next(state);
      if (next && SCREENS[next] && next !== from) {
        if (next === "launcher") {
          state.back = from;
          state.screen = next;
        } else if (closed && action !== "open") {
          state.back = next;
        } else {
          state.screen = state.back = next;
          state.unread = 0;
        }
        if (next === "prechat" || next === "offline") {
          state.errors = {};
          state.formError = null;
        }
        if (user) focusNext = next === "launcher" ? ".cc-launch" : ".cc-focus";
      }
      if (user) render();
      else update();
    }

    function render() {
      if (!alive) return;
      if (scheduled) clearTimeout(scheduled);
      scheduled = null;
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

      // Keep what the visitor was doing across the re-render: focus, caret, scroll position.
      var active = shadow.activeElement;
      var key = active && active.getAttribute ? active.getAttribute("data-k") : null;
      var caret = null;
      try {
        if (key && typeof active.selectionStart === "number") caret = [active.selectionStart, active.selectionEnd];
      } catch (e) {
        /* not a text field */
      }
      var outside = document.activeElement;
      var ours = !!active || !outside || outside === document.body || outside === host;
      var log = root.querySelector(".cc-log");
      var stick = !log || log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
      var top = log ? log.scrollTop : 0;

      while (root.firstChild) root.removeChild(root.firstChild);
      root.appendChild(RENDER[state.screen](state, t, dispatch));
      drawn = state.screen + "/" + state.unread;

      var target = focusNext ? root.querySelector(focusNext) : key ? root.querySelector('[data-k="' + key + '"]') : null;
      if (target && target.focus && !target.disabled && ours) {
        target.focus({ preventScroll: true });
        if (!focusNext && caret && target.setSelectionRange) target.setSelectionRange(caret[0], caret[1]);
      }
      focusNext = null;
      log = root.querySelector(".cc-log");
      if (log) log.scrollTop = stick ? log.scrollHeight : top;
      if (opts.persist) opts.persist(state);
    }

    /** Render soon, once for a burst of server frames (a launcher that would not change stays). */
    function update() {
      if (alive && !scheduled) {
        scheduled = setTimeout(guard(function () {
          scheduled = null;
          if (state.screen !== "launcher" || drawn !== "launcher/" + state.unread) render();
        }), 0);
      }
    }

    return {
      state: state,
      render: render,
      update: update,
      move: move,
      dispatch: dispatch,
      setConfig: function (config) {
        state.config = config;
        if (preview) state.agentsOnline = config.agentsOnline;
        render();
      },
      show: function (screen) {
        if (!SCREENS[screen]) throw new Error("unknown screen " + screen);
        if (preview) sampleConversation(state, screen);
        state.screen = screen;
        if (screen !== "launcher") state.back = screen;
        render();
      },
      destroy: function () {
        alive = false;
        if (scheduled) clearTimeout(scheduled);
        if (host.parentNode) host.parentNode.removeChild(host);
      }
    };
  }

  /** Fake data for the preview's chat screens (Settings): no network, nothing stored. */
  function sampleConversation(state, screen) {
    var status = { open: "OPEN", solved: "SOLVED", waiting: "WAITING", timeout: "WAITING" }[screen];
    if (!status) return;
    var now = Date.now();
    var agent = { id: "sample", name: null, avatarUrl: null, sample: true };
    state.conv = {
      id: "preview", status: status, assignee: status === "WAITING" ? null : agent,
      waitTimedOut: screen === "timeout", lastSeq: 4, statusSeq: 4, seen: {}
    };
    state.keepWaiting = null;
    state.items = { 2: { kind: "msg", senderType: "visitor", textKey: "sampleQuestion", createdAt: new Date(now - 180000).toISOString() } };
    if (status !== "WAITING") {
      state.items[3] = { kind: "joined", agent: agent };
      state.items[4] = { kind: "msg", senderType: "agent", agent: agent, textKey: "sampleAnswer", createdAt: new Date(now - 60000).toISOString() };
    }
  }

  function agentName(agent, t) {
    return (agent && agent.name) || (agent && agent.sample ? t.sampleAgent : t.anAgent);
  }

  // One function per screen: (state, copy, dispatch) -> element.
  var RENDER = {
    launcher: function (state, t, dispatch) {
      var open = function () {
        dispatch("open");
      };
      var badge = state.unread
        ? h("span", { class: "cc-badge", title: t.newMessages, text: String(Math.min(state.unread, 99)) })
        : null;
      if (state.config.appearance.minimized === "bar") {
        return h("button", { type: "button", class: "cc-launch cc-bar", "aria-label": t.openChat, onclick: open }, [
          icon("chat"),
          h("span", { text: t.chatWithUs }),
          badge
        ]);
      }
      return h("button", { type: "button", class: "cc-launch cc-bubble", "aria-label": t.openChat, title: t.chatWithUs, onclick: open }, [
        icon("chat"),
        badge
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
      body = body.concat(linkList(state, t, c.channels.liveChat));
      return panel(state, t, dispatch, { title: w.title || t.welcomeTitle, text: w.text || t.welcomeText }, body);
    },

    prechat: function (state, t, dispatch) {
      var form = formOf(state, t, dispatch, "submitPrechat", "cc-send", t.send, [
        field(state, t, "name", t.name, "input", "text", "name"),
        field(state, t, "email", t.emailField, "input", "email", "email"),
        field(state, t, "message", t.message, "textarea", null, "off")
      ]);
      return panel(state, t, dispatch, { title: t.prechatTitle, text: t.prechatText, back: true }, [form]);
    },

    waiting: chatView,
    open: chatView,
    solved: chatView,

    timeout: function (state, t, dispatch) {
      return panel(state, t, dispatch, { title: t.timeoutTitle, text: t.timeoutText }, [
        h("button", { type: "button", class: "cc-primary cc-keep cc-focus", onclick: function () {
          dispatch("keepWaiting");
        } }, [t.keepWaiting]),
        h("button", { type: "button", class: "cc-secondary cc-leave", onclick: function () {
          dispatch("leaveMessage");
        } }, [t.leaveMessage])
      ].concat(linkList(state, t, true)));
    },

    offline: function (state, t, dispatch) {
      var waiting = state.conv && state.conv.status === "WAITING";
      var form = formOf(state, t, dispatch, "submitOffline", "cc-send-note", t.sendNote, [
        field(state, t, "name", t.name, "input", "text", "name"),
        field(state, t, "email", t.emailField, "input", "email", "email"),
        field(state, t, "phone", t.phone, "input", "tel", "tel", true),
        field(state, t, "note", t.message, "textarea", null, "off")
      ]);
      return panel(state, t, dispatch, { title: waiting ? t.leaveTitle : t.offlineTitle, text: t.offlineText, back: true },
        [form].concat(linkList(state, t, true)));
    },

    sent: function (state, t, dispatch) {
      return panel(state, t, dispatch, { title: t.thanksTitle }, [
        h("p", { class: "cc-thanks", role: "status", text: t.thanks }),
        h("button", { type: "button", class: "cc-primary cc-done cc-focus", onclick: function () {
          dispatch("back");
        } }, [t.back])
      ]);
    }
  };

  /** The alternative channels (WhatsApp, SMS, Call...) as safe links, with a caption. */
  function linkList(state, t, caption) {
    var links = channelLinks(state.config.channels);
    if (!links.length) return [];
    return [
      caption ? h("p", { class: "cc-muted", text: t.orReachUs }) : null,
      h("ul", { class: "cc-links" }, links.map(function (l) {
        return h("li", {}, [h("a", { class: "cc-link cc-link-" + l.key, href: l.href, target: "_blank", rel: "noopener noreferrer" }, [
          icon(CHANNEL_ICON[l.key]),
          h("span", { class: "cc-link-label", text: t[l.key] }),
          h("span", { class: "cc-link-value", text: l.value })
        ])]);
      }))
    ];
  }

  /** A form field bound to state.draft[key], with its problem (if any) shown beside it. */
  function field(state, t, key, label, tag, type, auto, optional) {
    var err = state.errors[key];
    var input = h(tag, {
      class: "cc-input cc-" + key, name: key, "data-k": key, type: type, autocomplete: auto,
      required: !optional, maxlength: tag === "textarea" ? MAX_TEXT : key === "email" ? 320 : key === "phone" ? 32 : 200,
      "aria-invalid": err ? "true" : null, "aria-describedby": err ? "cc-err-" + key : null, disabled: state.busy
    });
    input.value = state.draft[key];
    var note = err ? h("span", { class: "cc-err", id: "cc-err-" + key, role: "alert", text: t[err] }) : null;
    input.addEventListener("input", guard(function () {
      state.draft[key] = input.value;
      if (state.errors[key]) {
        delete state.errors[key];
        input.removeAttribute("aria-invalid");
        if (note && note.parentNode) note.parentNode.removeChild(note);
      }
    }));
    return h("label", { class: "cc-field" }, [h("span", { text: label }), input, note]);
  }

  function formOf(state, t, dispatch, action, cls, label, fields) {
    var form = h("form", { class: "cc-form", novalidate: true, onsubmit: function (e) {
      e.preventDefault(); // never navigate the host page
      if (!state.busy) dispatch(action);
    } }, fields.concat([
      state.formError ? h("p", { class: "cc-err cc-form-err", role: "alert", text: t[state.formError] }) : null,
      h("button", { type: "submit", class: "cc-primary " + cls, disabled: state.busy, "aria-busy": state.busy ? "true" : null }, [label])
    ]));
    var first = form.querySelector(".cc-input");
    if (first) first.className += " cc-focus";
    return form;
  }

  /** WAITING, OPEN and SOLVED: header, status, the thread in seq order, the composer. */
  function chatView(state, t, dispatch) {
    var screen = state.screen;
    var agent = state.conv && state.conv.assignee;
    var name = agentName(agent, t);
    var head = { title: state.config.appearance.welcome.title || t.welcomeTitle };
    if (screen === "open") head = { title: name, text: fill(t.connectedWith, name), agent: agent, dot: true };
    if (screen === "solved") head = { title: t.endedTitle, text: agent ? name : null, agent: agent };
    var solved = screen === "solved";
    var ready = state.socket === "ready";
    var body = [];
    if (screen === "waiting") {
      var q = state.conv.queue; // {position, minutes} from the latest queue_position
      body.push(h("div", { class: "cc-status", role: "status" }, [
        h("span", { class: "cc-spin", "aria-hidden": "true" }),
        h("div", {}, [
          h("div", { class: "cc-status-text", text: ready ? t.searching : t.connecting }),
          q ? h("div", { class: "cc-queue", text: fill(t.inLine, q.position) }) : null,
          q && q.minutes ? h("div", { class: "cc-eta", text: fill(t.aboutMin, q.minutes) }) : null
        ])
      ]));
    } else if (screen === "open" && !ready) {
      body.push(h("div", { class: "cc-recon", role: "status", text: t.reconnecting }));
    }
    body.push(h("div", { class: "cc-log", role: "log", "aria-live": "polite" }, thread(state, t, dispatch)));
    var typing = !solved && state.typing && state.conv && state.typing.conversationId === state.conv.id ? state.typing : null;
    // always there (empty when nobody types): a live region that screen readers already know
    body.push(h("div", { class: "cc-typing", role: "status", "aria-live": "polite", text: typing ? fill(t.isTyping, typing.name || agentName(agent, t)) : "" }));
    if (solved) {
      body.push(h("div", { class: "cc-ended" }, [
        h("p", { class: "cc-ended-text", text: t.ended }),
        ratingBlock(state, t, dispatch),
        h("button", { type: "button", class: "cc-primary cc-new cc-focus", onclick: function () {
          dispatch("newChat");
        } }, [t.newChat])
      ]));
    }
    var box = h("textarea", {
      class: "cc-input cc-text" + (solved ? "" : " cc-focus"), "data-k": "text", rows: "1", maxlength: MAX_TEXT,
      placeholder: t.typeMessage, "aria-label": t.typeMessage, disabled: solved
    });
    box.value = solved ? "" : state.draft.text;
    box.addEventListener("input", guard(function () {
      state.draft.text = box.value;
      if (state.onTyping) state.onTyping(box.value);
    }));
    box.addEventListener("blur", guard(function () {
      // a re-render replaces the composer (it may blur as it goes): only a visitor leaving it
      if (state.onTyping && box.isConnected) state.onTyping("");
    }));
    box.addEventListener("keydown", guard(function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        dispatch("send");
      }
    }));
    var picker = h("input", { type: "file", class: "cc-picker", tabindex: "-1", "aria-hidden": "true", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf", onchange: function () {
      if (picker.files && picker.files[0]) dispatch("attach", picker.files[0]);
    } });
    body.push(h("form", { class: "cc-compose", onsubmit: function (e) {
      e.preventDefault();
      dispatch("send");
    } }, [picker, h("button", { type: "button", class: "cc-attach", "data-k": "attach", "aria-label": t.attach, title: t.attach, disabled: solved || !state.conv || state.conv.id === "preview", onclick: function () {
      picker.click();
    } }, ["+"]), box, h("button", { type: "submit", class: "cc-sendbtn", "aria-label": t.sendMessage, title: t.sendMessage, disabled: solved }, [icon("send")])]));
    if (state.formError === "fileTooBig" || state.formError === "fileType") {
      body.push(h("p", { class: "cc-err", role: "alert", text: t[state.formError] }));
    }
    return panel(state, t, dispatch, head, body, true);
  }

  /** A solved chat asks for a rating (1 to 5 and a comment), once; then thanks. */
  function ratingBlock(state, t, dispatch) {
    var c = state.conv;
    if (!c || c.id === "preview") return null;
    if (c.rating) return h("p", { class: "cc-rated", role: "status", text: t.rateThanks });
    var score = state.draft.score;
    var stars = [1, 2, 3, 4, 5].map(function (n) {
      return h("button", {
        type: "button", class: "cc-star" + (n <= score ? " cc-star-on" : ""), "data-k": "star" + n,
        "aria-pressed": n === score ? "true" : "false", "aria-label": fill(t.rateStars, n), title: fill(t.rateStars, n),
        onclick: function () {
          dispatch("score", n);
        }
      }, ["\u2605"]);
    });
    var note = h("textarea", {
      class: "cc-input cc-rate-comment", "data-k": "comment", rows: "2", maxlength: 1000,
      placeholder: t.rateComment, "aria-label": t.rateComment
    });
    note.value = state.draft.comment;
    note.addEventListener("input", guard(function () {
      state.draft.comment = note.value;
    }));
    return h("div", { class: "cc-rate" }, [
      h("p", { class: "cc-rate-ask", id: "cc-rate-ask", text: t.rateAsk }),
      h("div", { class: "cc-stars", role: "group", "aria-labelledby": "cc-rate-ask" }, stars),
      score ? note : null,
      score ? h("button", { type: "button", class: "cc-secondary cc-rate-send", disabled: !!state.busy, onclick: function () {
        dispatch("rate");
      } }, [t.rateSend]) : null,
      state.formError === "rateFailed" ? h("p", { class: "cc-err", role: "alert", text: t.rateFailed }) : null
    ]);
  }

  function thread(state, t, dispatch) {
    var earlier = state.earlier
      ? [h("button", { type: "button", class: "cc-earlier", "data-k": "earlier", disabled: !!state.loadingEarlier, onclick: function () {
        dispatch("earlier");
      } }, [t.earlier])]
      : [];
    return earlier.concat(threadItems(state, t, dispatch));
  }

  function threadItems(state, t, dispatch) {
    var seen = seenSeq(state);
    var out = Object.keys(state.items).map(Number).sort(function (a, b) {
      return a - b;
    }).map(function (seq) {
      var it = state.items[seq];
      return it.kind === "joined"
        ? h("div", { class: "cc-sys", "data-seq": seq, text: fill(it.transfer ? t.transferred : t.joined, agentName(it.agent, t)) })
        : bubble(state, t, dispatch, it, seq, "sent", seq === seen);
    });
    state.outbox.forEach(function (o) {
      out.push(bubble(state, t, dispatch, o, null, o.status));
    });
    return out;
  }

  function bubble(state, t, dispatch, m, seq, status, seen) {
    var mine = m.senderType === "visitor";
    var meta = [];
    if (status === "sent") {
      meta.push(h("time", { class: "cc-time", datetime: m.createdAt, text: formatTime(m.createdAt, state.locale) }));
      if (seen) meta.push(h("span", { class: "cc-seen", text: "\u00b7 " + t.seen }));
    } else if (status === "sending") {
      meta.push(h("span", { text: t.sending }));
    } else {
      // a file refused for what it is will be refused again: its reason, no Retry
      var why = m.code === "unsupported_file" ? t.fileType : m.code === "body_too_large" ? t.fileTooBig : null;
      meta.push(h("span", { text: why || t.notSent }));
      if (!why) {
        meta.push(h("button", { type: "button", class: "cc-retry", onclick: function () {
          dispatch("retry", m.cmid);
        } }, [t.retry]));
      }
    }
    var files = (m.files || []).map(function (f) {
      var url = f.thumbnail && state.fileUrl ? state.fileUrl(f) : null;
      return h("button", { type: "button", class: "cc-file", "data-file": f.id, "aria-label": fill(t.download, f.name), title: f.name, onclick: function () {
        dispatch("download", f);
      } }, [url ? h("img", { src: url, alt: f.name }) : "\ud83d\udcce " + f.name]);
    });
    if (m.file) {
      files.push(h("progress", { class: "cc-progress", max: "100", value: String(Math.round(m.progress * 100)), "aria-label": fill(t.uploading, m.file.name) }));
    }
    return h("div", {
      class: "cc-msg cc-msg-" + (mine ? "visitor" : "agent") + " cc-msg-" + status,
      "data-seq": seq, "data-status": status, "data-cmid": m.clientMessageId || m.cmid
    }, [
      mine ? null : h("span", { class: "cc-who", text: m.senderName || agentName(m.agent, t) }),
      m.text || !files.length ? h("div", { class: "cc-bub", text: typeof m.text === "string" ? m.text : t[m.textKey] }) : null
    ].concat(files, [h("div", { class: "cc-meta" }, meta)]));
  }

  function avatar(agent, dot, t) {
    var url = safeImage(agent.avatarUrl);
    var box = h("span", { class: "cc-av", "aria-hidden": "true" });
    if (url) {
      var img = h("img", { src: url, alt: "", referrerpolicy: "no-referrer" });
      img.addEventListener("error", guard(function () {
        if (img.parentNode) box.replaceChild(document.createTextNode(initials(agentName(agent, t))), img);
      }));
      box.appendChild(img);
    } else {
      box.appendChild(document.createTextNode(initials(agentName(agent, t))));
    }
    if (dot) box.appendChild(h("span", { class: "cc-dot", title: t.agentOnline }));
    return box;
  }

  /** The open panel shared by every screen but the launcher: header, body, branding. */
  function panel(state, t, dispatch, head, body, chat) {
    var a = state.config.appearance;
    var av = head.agent && a.showAgentAvatar ? avatar(head.agent, head.dot, t) : null;
    var header = h("div", { class: "cc-head" + (head.back ? " cc-has-back" : "") + (av ? " cc-has-av" : "") }, [
      av,
      h("div", { class: "cc-head-text" }, [
        h("div", { class: "cc-title", role: "heading", "aria-level": "2", text: head.title }),
        head.text
          ? h("div", { class: "cc-sub" }, [head.dot && !av ? h("span", { class: "cc-dot", title: t.agentOnline }) : null, head.text])
          : null
      ]),
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
    var middle = chat ? body : [body.length ? h("div", { class: "cc-body" }, body) : null];
    return h("div", { class: "cc-panel" + (chat ? " cc-tall" : ""), role: "dialog", "aria-label": head.title, onkeydown: function (e) {
      if (e.key === "Escape") dispatch("minimize");
    } }, [header].concat(middle, [brand]));
  }

  // ---- the conversation model: server answers and events -> state --------------------------

  var STATUSES = { WAITING: 1, OPEN: 1, SOLVED: 1 };

  function newConversation(id) {
    // readMark: the visitor's read mark (agent messages past it are unread: the badge);
    // agentsRead: the highest agent's mark (the visitor's messages up to it are "Seen")
    return { id: id, status: "WAITING", assignee: null, waitTimedOut: false, noAgents: false, solvedAt: null, statusSeq: -1, lastSeq: 0, seen: {}, readMark: 0, agentsRead: 0 };
  }

  /** Take a server snapshot's status fields unless the state already holds a later one. */
  function applySnapshot(c, snap, seq) {
    if (!isObj(snap) || snap.id !== c.id || !STATUSES[snap.status]) return false;
    var at = typeof seq === "number" ? seq : Number(snap.lastSeq) || 0;
    if (at < c.statusSeq) return false;
    var a = isObj(snap.assignee) ? snap.assignee : null;
    c.statusSeq = at;
    c.status = snap.status;
    c.assignee = a ? { id: text(a.id, 128), name: text(a.name, 200), avatarUrl: a.avatarUrl } : null;
    c.waitTimedOut = snap.waitTimedOut === true;
    c.solvedAt = typeof snap.solvedAt === "string" ? snap.solvedAt : null;
    return true;
  }

  /** Record seq as shown; lastSeq is the highest seq with nothing missing below it. */
  function markSeen(c, seq) {
    if (seq > c.lastSeq) c.seen[seq] = 1;
    advance(c, c.lastSeq);
  }

  function advance(c, to) {
    if (to > c.lastSeq) c.lastSeq = to;
    Object.keys(c.seen).forEach(function (k) {
      if (+k <= c.lastSeq) delete c.seen[k];
    });
    while (c.seen[c.lastSeq + 1]) delete c.seen[++c.lastSeq];
  }

  /** Move the read marks forward (they never move back). */
  function readMarks(c, visitor, agents) {
    if (typeof visitor === "number" && visitor > c.readMark) c.readMark = visitor;
    if (typeof agents === "number" && agents > c.agentsRead) c.agentsRead = agents;
  }

  /** What the visitor has not read: agent messages and "joined" lines past its read mark. */
  function unreadOf(s) {
    var c = s.conv;
    if (!c) return 0;
    return Object.keys(s.items).filter(function (k) {
      var it = s.items[k];
      return +k > c.readMark && (it.kind === "joined" || it.senderType === "agent");
    }).length;
  }

  /** The seq of the visitor's message that shows "Seen": the thread's last item, a message of
   * the visitor's that an agent's mark reaches (an answer after it says as much itself). */
  function seenSeq(s) {
    var c = s.conv;
    var keys = Object.keys(s.items).map(Number);
    if (!c || !keys.length || s.outbox.length) return null;
    var last = Math.max.apply(null, keys);
    var it = s.items[last];
    return it.kind === "msg" && it.senderType === "visitor" && last <= c.agentsRead ? last : null;
  }

  /** A stored message (an answer, an ack or an event) into the thread; drops its optimistic copy. */
  function addMessage(s, m) {
    if (!isObj(m) || !s.conv || m.conversationId !== s.conv.id || typeof m.seq !== "number") return false;
    if (m.clientMessageId) {
      s.outbox = s.outbox.filter(function (o) {
        if (o.cmid !== m.clientMessageId) return true;
        clearTimeout(o.timer);
        return false;
      });
    }
    s.items[m.seq] = {
      kind: "msg",
      senderType: m.senderType === "agent" ? "agent" : "visitor",
      senderName: typeof m.senderName === "string" ? m.senderName : null,
      text: typeof m.text === "string" ? m.text : "",
      createdAt: m.createdAt,
      clientMessageId: typeof m.clientMessageId === "string" ? m.clientMessageId : null,
      files: Array.isArray(m.attachments) ? m.attachments.filter(isObj) : []
    };
    markSeen(s.conv, m.seq);
    return true;
  }

  /** A conversation as REST answers it ({..., messages, lastSeq}): complete up to lastSeq. */
  function loadConversation(s, body, live) {
    if (!s.conv || s.conv.id !== body.id) {
      s.conv = newConversation(body.id);
      s.items = {};
      s.outbox = [];
      // its latest messages come first; this cursor reads back to the earlier ones
      s.earlier = typeof body.earlierMessages === "string" ? body.earlierMessages : null;
    }
    var c = s.conv;
    applySnapshot(c, body, null);
    readMarks(c, body.visitorLastReadSeq, body.agentsLastReadSeq);
    if (isObj(body.rating)) c.rating = { score: body.rating.score };
    (Array.isArray(body.messages) ? body.messages : []).forEach(function (m) {
      addMessage(s, m);
    });
    advance(c, Number(body.lastSeq) || 0);
    var keys = Object.keys(s.items);
    if (!live && c.assignee && !keys.some(function (k) {
      return s.items[k].kind === "joined";
    })) {
      // The answer says where the (latest) assignment happened; older servers: before the
      // agent's first message.
      var at = Number(body.assignedSeq);
      var firstAgent = keys.map(Number).sort(function (x, y) {
        return x - y;
      }).filter(function (k) {
        return s.items[k].senderType === "agent";
      })[0];
      if (!(at > 0)) at = firstAgent ? firstAgent - 0.5 : c.lastSeq + 0.5;
      s.items[at] = { kind: "joined", agent: c.assignee };
    }
  }

  /**
   * One event of the visitor's stream. Returns null (nothing new), "render" (the thread changed),
   * "changed" (the conversation's status changed) or "adopted" (a new live chat became current).
   */
  function applyEvent(s, ev) {
    var c = s.conv;
    var d = isObj(ev.data) ? ev.data : {};
    if (!c || ev.conversationId !== c.id) {
      var snap = d.conversation;
      // Another tab started a live chat (or this tab's answer is not back yet), or an agent
      // started one with this visitor (OPEN, assigned; "joined" and the message follow): follow it.
      if (ev.type === "conversation_created" && isObj(snap) && snap.kind === "live_chat" &&
        snap.id === ev.conversationId && (!c || c.status === "SOLVED")) {
        loadConversation(s, snap, true);
        return "adopted";
      }
      return null;
    }
    var seq = ev.seq;
    if (typeof seq !== "number" || seq <= c.lastSeq || c.seen[seq]) return null; // shown already
    var changed = false;
    var notify = false;
    if (ev.type === "message_created") {
      addMessage(s, d.message);
      notify = isObj(d.message) && d.message.senderType === "agent";
    } else {
      changed = applySnapshot(c, d.conversation, seq);
      if (ev.type === "conversation_assigned") {
        // a hand-over names who had it: "You are now chatting with ..."
        s.items[seq] = { kind: "joined", agent: isObj(d.agent) ? { name: text(d.agent.name, 200) } : c.assignee, transfer: isObj(d.previousAgent) };
        notify = true;
      }
    }
    markSeen(c, seq);
    if (notify && s.screen === "launcher") s.unread++;
    return changed ? "changed" : "render";
  }

  // ---- the loader: storage, heartbeat, REST, the socket, the outbox -------------------------

  /** Per-widget key/value storage: localStorage (or sessionStorage), else a first-party cookie. */
  function makeStore(widgetId, kind) {
    var prefix = "curbe:" + widgetId + ":";
    var cookiePrefix = "curbe_" + (kind === "sessionStorage" ? "s_" : "") + widgetId.replace(/[^A-Za-z0-9_]/g, "") + "_";
    var ls = null;
    try {
      ls = window[kind];
      ls.setItem(prefix + "probe", "1");
      ls.removeItem(prefix + "probe");
    } catch (e) {
      ls = null;
    }
    function setCookie(key, value, age) {
      document.cookie = cookiePrefix + key + "=" + encodeURIComponent(value) + "; path=/; SameSite=Lax" +
        (age === null ? "" : "; max-age=" + age) + (location.protocol === "https:" ? "; Secure" : "");
    }
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
          if (ls) ls.setItem(prefix + key, value);
          else setCookie(key, value, kind === "sessionStorage" ? null : 31536000);
        } catch (e) {
          /* storage is a convenience: without it the visitor is new on each page */
        }
      },
      remove: function (key) {
        try {
          if (ls) ls.removeItem(prefix + key);
          else setCookie(key, "", 0);
        } catch (e) {
          /* nothing to remove */
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

  function errorCode(res) {
    var e = res && isObj(res.body) && isObj(res.body.error) ? res.body.error : {};
    return typeof e.code === "string" ? e.code : null;
  }

  /** The embedded widget's life: heartbeat + config (+ conversation) -> render; 403/404 -> nothing. */
  function createLoader(script) {
    var d = script.dataset || {};
    var widgetId = text(d.widgetId, 128);
    var src = new URL(script.src, location.href);
    var base = src.origin + src.pathname.replace(/\/[^/]*$/, "");
    var api = base + "/api/chat/widgets/" + encodeURIComponent(widgetId);
    var wsUrl = api.replace(/^http/, "ws") + "/ws";
    var store = makeStore(widgetId, "localStorage");
    var session = makeStore(widgetId, "sessionStorage");
    var theme = text(d.theme, 16).toLowerCase();
    var s = {
      widgetId: widgetId,
      tenantId: text(d.tenant, 128) || null,
      widgetStatus: null,
      visitorId: store.get("visitorId"),
      conversationId: null,
      heartbeatOk: false,
      config: null,
      agentsOnline: null,
      rehydrated: false, // false -> "loading" -> true
      stopped: false,
      error: null
    };
    var view = null;
    var inflight = null;
    var again = false;
    var holdUntil = 0; // the server said 429 "retry in N s": no heartbeat or config before this
    var configLoading = false;
    var timer = null;
    var serverTime = null; // of the latest heartbeat: "how long ago" is asked of the server's clock
    var hintConversation = null; // the heartbeat's conversationId
    var checked = {}; // conversation ids the heartbeat named that were looked up already
    var bootConversation = null;
    var startId = null; // clientMessageId of the pending start-chat request (a retry reuses it)
    var ws = null;
    var attempt = 0;
    var retryTimer = null;
    var pingTimer = null;
    var lastFrame = 0;
    var lastSent = 0; // the last heartbeat or ping written to the socket
    var leaving = false;
    var persisted = null;

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
      if (pingTimer) clearInterval(pingTimer);
      clearTimeout(retryTimer);
      closeSocket();
      if (view) view.destroy();
      view = null;
      if (message && window.console && console.warn) console.warn(LOG + " " + message);
    }

    /** One heartbeat at a time; a call during one asks for another right after. */
    function beat() {
      if (s.stopped || Date.now() < holdUntil) return Promise.resolve();
      if (inflight) {
        again = true;
        return inflight;
      }
      inflight = request("POST", api + "/heartbeat", payload(), store.get("visitorToken"))
        .then(onHeartbeat, function () {
          s.error = "network"; // retried on the next tick; the page stays as it is
        })
        .catch(quiet)
        .then(function () {
          inflight = null;
          if (again) {
            again = false;
            return beat();
          }
        })
        .catch(quiet); // never rejects: callers chain on it
      return inflight;
    }

    /**
     * The 15-second and navigation heartbeat: on the open socket when there is one (no HTTP
     * request at all while it stays open), else over HTTP.
     */
    function pulse() {
      if (s.stopped) return;
      if (ws && view && view.state.socket === "ready") {
        var p = payload();
        var frame = { type: "heartbeat" };
        ["currentDomain", "currentUrl", "timestamp", "pageTitle", "referrer", "timeZone", "language"].forEach(function (k) {
          frame[k] = p[k];
        });
        if (wsSend(frame)) {
          lastSent = Date.now();
          return;
        }
      }
      beat();
    }

    /** What a heartbeat answer says, over HTTP (200) or on the socket (a `heartbeat` frame). */
    function onBeat(body) {
      s.error = null;
      s.heartbeatOk = true;
      s.widgetStatus = body.widgetStatus || "ACTIVE";
      serverTime = typeof body.serverTime === "string" ? body.serverTime : null;
      hintConversation = typeof body.conversationId === "string" ? body.conversationId : null;
      if (!view || !view.state.conv) s.conversationId = hintConversation;
    }

    function refused(body) {
      s.widgetStatus = (body.error && body.error.widgetStatus) || "MISCONFIGURED";
      stop("domain_not_allowed",
        location.hostname + " is not in the Targeting list of widget " + widgetId +
        ", so the chat is not shown here. Add this domain in Settings > Widgets > Targeting.");
    }

    function onHeartbeat(res) {
      var body = res.body || {};
      if (res.status === 200) {
        onBeat(body);
        if (typeof body.visitorId === "string") store.set("visitorId", (s.visitorId = body.visitorId));
        if (typeof body.visitorToken === "string") store.set("visitorToken", body.visitorToken);
        // a ready socket hears every flip at once: an answer computed before one must not undo it
        if (typeof body.agentsOnline === "boolean" && !(view && view.state.socket === "ready")) setOnline(body.agentsOnline);
        loadConfig();
        rehydrate();
        mount();
        followOtherTab();
      } else if (res.status === 403) {
        refused(body);
      } else if (res.status === 404) {
        stop("not_found", "widget " + widgetId + " does not exist; check data-widget-id in the embed code.");
      } else if (res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408) {
        var code = errorCode(res);
        stop("rejected", "the server refused the installation ping" + (code ? " (" + code + ")" : "") + "; the chat is not shown.");
      } else {
        s.error = "http_" + res.status; // 5xx, 429: retried on a later tick
        slowDown(res);
      }
    }

    /** 429: hold heartbeats and config until the server's retryAfterSeconds has passed (what
     * is on the screen stays as it is: the visitor sees nothing broken). */
    function slowDown(res) {
      if (res.status !== 429) return;
      var e = isObj(res.body) && isObj(res.body.error) ? res.body.error : {};
      var seconds = typeof e.retryAfterSeconds === "number" ? e.retryAfterSeconds : 30;
      holdUntil = Date.now() + Math.min(Math.max(seconds, 1), 3600) * 1000;
    }

    function setOnline(online) {
      s.agentsOnline = online;
      if (view && view.state.agentsOnline !== online) {
        view.state.agentsOnline = online;
        view.update();
      }
    }

    function loadConfig() {
      if (s.config || configLoading || s.stopped || Date.now() < holdUntil) return;
      configLoading = true;
      request("GET", api + "/config")
        .then(function (res) {
          if (res.status === 200 && isObj(res.body)) {
            s.config = normalizeConfig(res.body);
            setOnline(s.config.agentsOnline);
            mount();
          } else if (res.status === 404) {
            stop("not_found", "widget " + widgetId + " does not exist; check data-widget-id in the embed code.");
          } else {
            slowDown(res);
          }
        }, function () {
          /* retried with the next heartbeat */
        })
        .catch(quiet)
        .then(function () {
          configLoading = false;
        });
    }

    /** A visitor call with the visitor token; a 401 gets a fresh token (heartbeat) and one retry. */
    function call(method, path, body, retried) {
      return request(method, api + path, body, store.get("visitorToken")).then(function (res) {
        if (res.status === 401 && !retried) {
          return beat().then(function () {
            return call(method, path, body, true);
          });
        }
        return res;
      });
    }

    function latestConversation() {
      return call("GET", "/conversation").then(function (res) {
        if (res.status === 200 && isObj(res.body) && typeof res.body.id === "string") return res.body;
        if (res.status === 404) store.remove("conv");
        return null;
      });
    }

    /** After a reload: the visitor's latest conversation, before the first render. */
    function rehydrate() {
      if (s.rehydrated !== false || s.stopped) return;
      if (!hintConversation && !store.get("conv")) {
        s.rehydrated = true;
        return;
      }
      s.rehydrated = "loading";
      latestConversation().then(function (conv) {
        if (conv) checked[conv.id] = 1;
        if (conv && (conv.status !== "SOLVED" || recentlySolved(conv))) bootConversation = conv;
      }, function () {
        /* unreachable: start without it; starting a chat later resumes it (409) */
      }).catch(quiet).then(function () {
        s.rehydrated = true;
        mount();
      }).catch(quiet);
    }

    function recentlySolved(conv) {
      var gone = Date.parse(serverTime) - Date.parse(conv.solvedAt);
      return gone >= 0 && gone < SOLVED_KEEP_MS;
    }

    /** Another tab of this visitor started a chat (the heartbeat names it): show it here too. */
    function followOtherTab() {
      var st = view && view.state;
      var id = hintConversation;
      if (!st || !id || checked[id] || (st.conv && st.conv.id === id) || (st.conv && st.conv.status !== "SOLVED") || st.busy) return;
      checked[id] = 1;
      latestConversation().then(function (conv) {
        if (conv && conv.status !== "SOLVED" && view && (!view.state.conv || view.state.conv.status === "SOLVED")) adopt(conv);
      }, quiet).catch(quiet);
    }

    function mount() {
      if (view || s.stopped || !s.heartbeatOk || !s.config || s.rehydrated !== true || !document.body) return;
      if (typeof document.body.attachShadow !== "function") return; // too old: render nothing
      view = createView(document.body, {
        mode: "page",
        config: s.config,
        locale: text(d.locale, 8).toLowerCase(),
        scheme: theme,
        theme: theme,
        effects: effects,
        identity: { name: store.get("name"), email: store.get("email") },
        persist: persist,
        onTyping: onTyping,
        fileUrl: fileUrl
      });
      var st = view.state;
      st.agentsOnline = s.agentsOnline === null ? s.config.agentsOnline : s.agentsOnline;
      if (bootConversation) {
        loadConversation(st, bootConversation);
        st.keepWaiting = session.get("kw");
        s.conversationId = st.conv.id;
        bootConversation = null;
      }
      var saved = session.get("panel");
      st.back = st.conv ? chatScreen(st) : saved === "prechat" || saved === "offline" ? saved : "welcome";
      if (saved) st.screen = st.back; // the panel was open before the reload: open it again
      else st.unread = unreadOf(st); // closed: the badge counts what the visitor has not read
      view.render();
      connect(); // with or without a chat: an agent may start one, agentsOnline may change
    }

    function persist(st) {
      var panelScreen = st.screen === "launcher" ? "" : st.screen;
      if (panelScreen !== persisted) session.set("panel", (persisted = panelScreen));
      readSoon();
    }

    // -- the visitor's read mark: sent while the chat is in front of the visitor --

    var readTimer = null;
    var readSentAt = 0;
    var readUpTo = null; // {id, seq}: what the open panel has shown, not sent yet

    /** The chat panel is open on a visible page and shows agent messages past the visitor's
     * mark: that much is read. Sent (the `read` frame, or REST without a socket) at most once
     * a second, even if the panel closed in between: the visitor saw it. */
    function readSoon() {
      var st = view && view.state;
      var c = st && st.conv;
      if (st && st.screen === "launcher") return sendRead(); // closed: what it saw goes now
      // (most renders: nothing past the mark, and the count is not needed)
      if (!c || c.lastSeq <= c.readMark || document.visibilityState !== "visible" || !unreadOf(st)) return;
      readUpTo = { id: c.id, seq: c.lastSeq };
      readMarks(c, c.lastSeq, null);
      if (!readTimer) readTimer = setTimeout(guard(sendRead), Math.max(0, readSentAt + READ_EVERY_MS - Date.now()));
    }

    function sendRead() {
      clearTimeout(readTimer);
      readTimer = null;
      var up = readUpTo;
      readUpTo = null;
      if (!up || !view) return;
      readSentAt = Date.now();
      if (!(view.state.socket === "ready" && wsSend({ type: "read", conversationId: up.id, seq: up.seq }))) {
        call("POST", "/conversations/" + encodeURIComponent(up.id) + "/read", { seq: up.seq }).catch(quiet);
      }
    }

    // -- actions that talk to the server (the view's effects) --

    function remember(draft) {
      store.set("name", draft.name.trim());
      store.set("email", draft.email.trim());
    }

    function invalid(st, offline) {
      st.errors = validate(st.draft, offline);
      if (!Object.keys(st.errors).length) return false;
      st.focus = ".cc-input[aria-invalid=true]";
      return true;
    }

    var effects = {
      submitPrechat: function (st) {
        if (!invalid(st, false)) {
          remember(st.draft);
          startConversation(st);
        }
        return false;
      },
      submitOffline: function (st) {
        if (!invalid(st, true)) {
          remember(st.draft);
          sendOffline(st);
        }
        return false;
      },
      send: function (st) {
        var body = st.draft.text.trim();
        if (body && st.conv && st.conv.status !== "SOLVED") {
          st.draft.text = "";
          typingSent();
          queue(st, body, newId());
        }
        st.focus = ".cc-text";
        return false;
      },
      score: function (st, n) {
        st.draft.score = n;
        st.formError = null;
        st.focus = '[data-k="star' + n + '"]';
        return false;
      },
      rate: function (st) {
        var c = st.conv;
        if (!c || !st.draft.score || st.busy) return false;
        st.busy = true;
        st.formError = null;
        call("POST", "/conversations/" + encodeURIComponent(c.id) + "/rating", {
          score: st.draft.score, comment: st.draft.comment.trim() || null
        }).then(function (res) {
          if (res.status === 200) {
            c.rating = { score: st.draft.score };
            st.draft.score = 0;
            st.draft.comment = "";
          } else {
            st.formError = "rateFailed";
          }
        }, function () {
          st.formError = "rateFailed";
        }).catch(quiet).then(function () {
          st.busy = false;
          if (view) view.render();
        });
        return false;
      },
      retry: function (st, cmid) {
        st.outbox.forEach(function (o) {
          if (o.cmid === cmid) sendOut(o);
        });
        return false;
      },
      attach: function (st, file) {
        st.formError = file.size > st.config.maxUploadBytes ? "fileTooBig" : null;
        if (!st.formError && st.conv && st.conv.status !== "SOLVED") {
          var o = { cmid: newId(), text: "\ud83d\udcce " + file.name, file: file, progress: 0, senderType: "visitor", status: "sending", via: null, code: null, timer: null };
          st.outbox.push(o);
          sendOut(o);
        }
        return false;
      },
      download: function (st, f) {
        fileBlob(st, f, false).then(function (url) {
          var a = h("a", { href: url, download: f.name });
          document.body.appendChild(a);
          a.click();
          a.remove();
        }).catch(quiet);
        return false;
      },
      earlier: function (st) {
        var c = st.conv;
        var cursor = st.earlier;
        if (!c || !cursor || st.loadingEarlier) return false;
        st.loadingEarlier = true;
        call("GET", "/conversations/" + encodeURIComponent(c.id) + "/messages?before=" + encodeURIComponent(cursor))
          .then(function (res) {
            if (st.conv !== c || st.earlier !== cursor) return;
            if (res.status === 200 && isObj(res.body) && Array.isArray(res.body.messages)) {
              res.body.messages.forEach(function (m) {
                addMessage(st, m);
              });
              st.earlier = typeof res.body.earlierMessages === "string" ? res.body.earlierMessages : null;
            }
          })
          .catch(quiet)
          .then(function () {
            st.loadingEarlier = false;
            if (view) view.update();
          })
          .catch(quiet);
        return false;
      },
      keepWaiting: function (st) {
        if (st.conv) session.set("kw", (st.keepWaiting = st.conv.id));
      },
      newChat: function (st) {
        st.draft.message = "";
      }
    };

    function startConversation(st) {
      var dr = st.draft;
      var cmid = startId || (startId = newId());
      var first = dr.message.trim();
      st.busy = true;
      st.formError = null;
      call("POST", "/conversations", { name: dr.name.trim(), email: dr.email.trim(), message: first, clientMessageId: cmid })
        .then(function (res) {
          if (res.status === 201 && isObj(res.body) && typeof res.body.id === "string") {
            startId = null;
            dr.message = "";
            adopt(res.body, true);
          } else if (res.status === 409 && errorCode(res) === "conversation_active") {
            // a chat is open already (another tab): resume it, and say what the visitor just typed there
            startId = null;
            return latestConversation().then(function (conv) {
              if (!conv) throw new Error("conversation_active but none found");
              dr.message = "";
              adopt(conv, true);
              if (conv.status !== "SOLVED") queue(view.state, first, cmid);
            });
          } else {
            st.formError = res.status === 422 ? "errCheck" : "errSend";
          }
        })
        .catch(function (err) {
          quiet(err);
          st.formError = "errSend";
        })
        .then(function () {
          st.busy = false;
          if (view) view.update();
        })
        .catch(quiet);
    }

    /** Make a server conversation the current one and follow it (screen, socket). */
    function adopt(body, byVisitor) {
      if (!view) return;
      var st = view.state;
      var fresh = !st.conv || st.conv.id !== body.id;
      loadConversation(st, body);
      if (fresh && body.agentsOnline === false && st.conv.status === "WAITING") st.conv.noAgents = true;
      checked[st.conv.id] = 1;
      s.conversationId = st.conv.id;
      store.set("conv", st.conv.id);
      view.move("changed", byVisitor);
      if (!byVisitor) popUp();
      if (ws) resume();
      else connect();
    }

    /** An agent started (or took) a chat this tab did not start: show it, as a message would be. */
    function popUp() {
      var st = view.state;
      if (st.screen === "launcher" && st.conv.status === "OPEN") view.move("open");
    }

    function sendOffline(st) {
      var dr = st.draft;
      var body = { name: dr.name.trim(), email: dr.email.trim(), message: dr.note.trim() };
      if (dr.phone.trim()) body.phone = dr.phone.trim();
      if (st.conv && st.conv.status === "WAITING") body.conversationId = st.conv.id; // the chat that timed out
      st.busy = true;
      st.formError = null;
      call("POST", "/offline-messages", body)
        .then(function (res) {
          if (res.status === 201) {
            dr.note = "";
            if (view) view.move("sent", true);
          } else {
            st.formError = res.status === 422 ? "errCheck" : "errSend";
          }
        }, function () {
          st.formError = "errSend";
        })
        .catch(quiet)
        .then(function () {
          st.busy = false;
          if (view) view.update();
        })
        .catch(quiet);
    }

    // -- the outbox: optimistic messages until the server stored them --

    function queue(st, body, cmid) {
      var o = { cmid: cmid, text: body.slice(0, MAX_TEXT), senderType: "visitor", status: "sending", via: null, code: null, timer: null };
      st.outbox.push(o);
      sendOut(o);
    }

    function pending(o) {
      return !!view && view.state.outbox.indexOf(o) >= 0;
    }

    function sendOut(o) {
      var st = view && view.state;
      if (!st || !st.conv) return;
      o.status = "sending";
      o.code = null;
      clearTimeout(o.timer);
      if (o.file) return uploadOut(st, o, false);
      if (st.socket === "ready" && wsSend({ type: "message", text: o.text, clientMessageId: o.cmid, conversationId: st.conv.id })) {
        o.via = "ws";
        o.timer = setTimeout(guard(function () {
          if (pending(o) && o.status === "sending" && o.via === "ws") viaRest(o); // no ack: same id over REST
        }), ACK_MS);
      } else {
        viaRest(o);
      }
      view.update();
    }

    function viaRest(o) {
      var st = view.state;
      var cid = st.conv && st.conv.id;
      if (!cid) return;
      o.via = "rest";
      clearTimeout(o.timer);
      call("POST", "/conversations/" + encodeURIComponent(cid) + "/messages", { text: o.text, clientMessageId: o.cmid })
        .then(function (res) {
          if (!pending(o)) return; // stored and shown already (ack or event)
          if (res.status === 201 && addMessage(view.state, res.body)) return view.update();
          failed(o, res.status >= 500 || res.status === 429 ? null : errorCode(res) || "http_" + res.status);
        }, function () {
          if (pending(o)) failed(o, null); // offline: retried when the socket is back, or by Retry
        })
        .catch(quiet);
    }

    /** A file goes as the request's body (XHR: fetch reports no upload progress). */
    function uploadOut(st, o, retried) {
      var cid = st.conv.id;
      var xhr = new XMLHttpRequest();
      var shown = 0;
      xhr.open("POST", api + "/conversations/" + encodeURIComponent(cid) + "/attachments");
      xhr.setRequestHeader("Authorization", "Bearer " + store.get("visitorToken"));
      xhr.setRequestHeader("Content-Type", o.file.type || "application/octet-stream");
      xhr.setRequestHeader("X-File-Name", encodeURIComponent(o.file.name));
      xhr.setRequestHeader("X-Client-Message-Id", o.cmid);
      xhr.upload.onprogress = guard(function (e) {
        o.progress = e.lengthComputable ? e.loaded / e.total : 0;
        if (o.progress - shown >= 0.05) {
          shown = o.progress;
          view.update();
        }
      });
      xhr.onload = guard(function () {
        var body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (e) {
          body = null;
        }
        if (!pending(o)) return;
        if (xhr.status === 401 && !retried) {
          return beat().then(function () {
            uploadOut(st, o, true);
          }).catch(quiet);
        }
        if (xhr.status === 201 && addMessage(view.state, body)) return view.update();
        failed(o, xhr.status >= 500 || xhr.status === 429 ? null : errorCode({ body: body }) || "http_" + xhr.status);
      });
      xhr.onerror = guard(function () {
        if (pending(o)) failed(o, null);
      });
      xhr.send(o.file);
      view.update();
    }

    var blobs = {}; // attachment id (+ "t": its thumbnail) -> a promise of its blob: address

    /** A file of the current chat, fetched with the visitor's token, as a blob: address. */
    function fileBlob(st, f, thumb) {
      var key = f.id + (thumb ? "t" : "");
      if (!blobs[key]) {
        var path = api + "/conversations/" + encodeURIComponent(st.conv.id) + "/attachments/" + encodeURIComponent(f.id) + (thumb ? "/thumbnail" : "");
        blobs[key] = fetch(path, { headers: { Authorization: "Bearer " + store.get("visitorToken") }, credentials: "omit", mode: "cors" })
          .then(function (res) {
            if (!res.ok) throw new Error("http " + res.status);
            return res.blob();
          })
          .then(function (b) {
            return URL.createObjectURL(b);
          });
        blobs[key].catch(function () {
          delete blobs[key]; // asked again at the next render
        });
      }
      return blobs[key];
    }

    var thumbs = {}; // attachment id -> blob: address, once loaded

    function fileUrl(f) {
      if (thumbs[f.id]) return thumbs[f.id];
      fileBlob(view.state, f, true).then(function (url) {
        if (!thumbs[f.id]) {
          thumbs[f.id] = url;
          view.update();
        }
      }).catch(quiet);
      return null;
    }

    function failed(o, code) {
      clearTimeout(o.timer);
      o.status = "failed";
      o.via = null;
      o.code = code; // null: a network problem, sent again automatically on reconnect
      if (view) view.update();
    }

    // -- the socket --

    function setSocket(value) {
      if (view && view.state.socket !== value) {
        view.state.socket = value;
        view.update();
      }
    }

    function wsSend(frame) {
      if (!ws || ws.readyState !== 1) return false;
      try {
        ws.send(JSON.stringify(frame));
        return true;
      } catch (e) {
        return false;
      }
    }

    // -- typing: hints to the agent (never the text), and the agent's hints shown here --

    var typingOn = false; // the server was told "on" and not "off" since
    var typingSentAt = 0;
    var typingIdle = null;
    var typingShown = null;

    function typingTo(on) {
      var st = view && view.state;
      typingOn = false;
      if (!st || !st.conv || st.conv.status === "SOLVED" || st.socket !== "ready") return;
      if (wsSend({ type: "typing", conversationId: st.conv.id, state: on ? "on" : "off" })) {
        typingOn = on;
        if (on) typingSentAt = Date.now();
      }
    }

    /** The composer holds `value` now: "on" at the first key and every 4 s while keys come,
     * "off" once it is emptied, left (blur) or idle for 5 s. */
    function onTyping(value) {
      clearTimeout(typingIdle);
      if (!value.trim()) {
        if (typingOn) typingTo(false);
        return;
      }
      if (!typingOn || Date.now() - typingSentAt >= TYPING_REPEAT_MS) typingTo(true);
      typingIdle = setTimeout(guard(function () {
        if (typingOn) typingTo(false);
      }), TYPING_IDLE_MS);
    }

    /** Sending ends the typing (the server knows it from the message): the next key says "on". */
    function typingSent() {
      clearTimeout(typingIdle);
      typingOn = false;
    }

    /** An agent's `typing` event: shown until "off", their message, or its expiry. */
    function showTyping(st, f, data) {
      clearTimeout(typingShown);
      if (data.state === "on") {
        var ms = Math.min(60, Math.max(1, typeof data.expiresInSeconds === "number" ? data.expiresInSeconds : 12)) * 1000;
        st.typing = { conversationId: f.conversationId, senderId: data.senderId, name: text(data.senderName, 200) || null };
        typingShown = setTimeout(guard(function () {
          if (view) {
            view.state.typing = null;
            view.update();
          }
        }), ms);
      } else if (st.typing && st.typing.senderId === data.senderId) {
        st.typing = null;
      }
      view.update();
    }

    function connect() {
      if (s.stopped || leaving || ws || !view) return;
      clearTimeout(retryTimer);
      retryTimer = null;
      var sock;
      var c = view.state.conv;
      var url = wsUrl + "?token=" + encodeURIComponent(store.get("visitorToken") || "");
      // the resume rides in the address: the server replays what was missed before any live
      // event, so nothing arrives out of order or twice (a resume frame after `ready` could
      // follow a live event committed in between)
      if (c) url += "&conversationId=" + encodeURIComponent(c.id) + "&afterSeq=" + c.lastSeq;
      try {
        sock = new WebSocket(url);
      } catch (e) {
        quiet(e);
        return reconnectLater();
      }
      ws = sock;
      resumedInAddress = c ? c.id : null;
      lastFrame = Date.now();
      setSocket("connecting");
      sock.onmessage = guard(function (e) {
        if (ws === sock) onFrame(e.data);
      });
      sock.onclose = guard(function (e) {
        if (ws === sock) dropped(e.code);
      });
    }

    function closeSocket() {
      var sock = ws;
      ws = null;
      if (!sock) return;
      sock.onmessage = sock.onclose = null;
      try {
        sock.close();
      } catch (e) {
        /* closed already */
      }
    }

    function dropped(code) {
      closeSocket();
      if (!view) return;
      setSocket("closed");
      // What went out over the socket without an ack goes again over REST, with the same id.
      view.state.outbox.forEach(function (o) {
        if (o.status === "sending" && o.via === "ws") viaRest(o);
      });
      if (code === 4404) return stop("not_found", "widget " + widgetId + " no longer exists; the chat is closed.");
      if (leaving) return;
      if (code === 4401) {
        beat().then(guard(reconnectLater)); // a fresh visitor token first
        return;
      }
      reconnectLater();
    }

    /** Jittered exponential backoff: 0.5 s, 1 s, 2 s... up to 15 s, each between half and all of it. */
    function reconnectLater() {
      if (retryTimer || s.stopped || !view) return;
      var cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
      attempt = Math.min(attempt + 1, 10);
      retryTimer = setTimeout(guard(function () {
        retryTimer = null;
        connect();
      }), cap / 2 + Math.random() * (cap / 2));
    }

    function reconnectNow() {
      if (s.stopped || !view) return;
      attempt = 0; // the network is back: the next try, if this one fails, comes quickly too
      if (ws) {
        if (view.state.socket === "ready") wsSend({ type: "ping" });
        return;
      }
      clearTimeout(retryTimer);
      retryTimer = null;
      connect();
    }

    function keepAlive() {
      if (!ws || !view || view.state.socket !== "ready") return;
      if (Date.now() - lastFrame > PING_MS * 1.6) return dropped(1006); // no pong: a dead connection
      if (Date.now() - lastSent < PING_MS) return; // a heartbeat went out: its answer will show
      if (wsSend({ type: "ping" })) lastSent = Date.now();
    }

    var resumedInAddress = null; // the conversation the open socket's address resumed

    function resume() {
      var c = view && view.state.conv;
      if (c) wsSend({ type: "resume", conversationId: c.id, afterSeq: c.lastSeq });
    }

    function onFrame(raw) {
      lastFrame = Date.now();
      var f;
      try {
        f = JSON.parse(raw);
      } catch (e) {
        return;
      }
      if (!isObj(f) || !view) return;
      var st = view.state;
      var data = isObj(f.data) ? f.data : {};
      if (f.type === "ready") {
        attempt = 0;
        if (typeof f.agentsOnline === "boolean") setOnline(f.agentsOnline);
        setSocket("ready");
        if (!st.conv || st.conv.id !== resumedInAddress) resume();
      } else if (f.type === "resumed") {
        if (st.conv && f.conversationId === st.conv.id && typeof f.lastSeq === "number") advance(st.conv, f.lastSeq);
        st.outbox.forEach(function (o) {
          if (o.status === "failed" && !o.code) sendOut(o); // failed for want of a network: again now
        });
      } else if (f.type === "agents_online_changed") {
        if (typeof data.agentsOnline === "boolean") setOnline(data.agentsOnline);
      } else if (f.type === "queue_position") {
        // ephemeral, this visitor only: where the WAITING chat stands
        var eta = data.estimatedWaitSeconds;
        if (st.conv && data.conversationId === st.conv.id && st.conv.status === "WAITING" && typeof data.position === "number" && data.position > 0) {
          st.conv.queue = { position: data.position, minutes: typeof eta === "number" && eta >= 0 ? Math.max(1, Math.ceil(eta / 60)) : 0 };
          view.update();
        }
      } else if (f.type === "heartbeat") {
        // answered in order with the socket's events: its agentsOnline is as fresh as they are
        onBeat(f);
        if (typeof f.agentsOnline === "boolean") setOnline(f.agentsOnline);
        followOtherTab();
      } else if (f.type === "conversation_read") {
        // an agent read the chat ("Seen"), or this visitor did in another tab (the badge)
        if (st.conv && data.conversationId === st.conv.id && typeof data.lastReadSeq === "number") {
          if (data.reader === "visitor") readMarks(st.conv, data.lastReadSeq, null);
          else readMarks(st.conv, null, data.lastReadSeq);
          if (st.screen === "launcher") st.unread = unreadOf(st);
          view.update();
        }
      } else if (f.type === "typing") {
        if (st.conv && f.conversationId === st.conv.id && data.senderType === "agent") showTyping(st, f, data);
      } else if (f.type === "ack") {
        if (addMessage(st, f.message)) view.update();
      } else if (f.type === "error") {
        if (isObj(f.error) && f.error.code === "domain_not_allowed") return refused(f);
        st.outbox.forEach(function (o) {
          if (o.cmid === f.clientMessageId) failed(o, (isObj(f.error) && f.error.code) || "error");
        });
      } else if (typeof f.conversationId === "string" && typeof f.type === "string") {
        if (f.type === "message_created" && st.typing && isObj(data.message) && data.message.senderId === st.typing.senderId) {
          clearTimeout(typingShown);
          st.typing = null; // their message is here: they stopped typing it
        }
        var result = applyEvent(st, f);
        if (result === "adopted") {
          s.conversationId = st.conv.id;
          store.set("conv", st.conv.id);
          checked[st.conv.id] = 1;
          resume();
        }
        if (result === "render") view.update();
        else if (result) view.move("changed");
        if (result === "adopted") popUp();
      }
    }

    function onNavigate() {
      if (!s.stopped) setTimeout(guard(pulse), 0); // after the URL changed
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
      leaving = true;
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
          pulse();
          loadConfig();
        }
      }), HEARTBEAT_MS);
      pingTimer = setInterval(guard(keepAlive), PING_MS);
      window.addEventListener("popstate", guard(onNavigate));
      window.addEventListener("hashchange", guard(onNavigate));
      wrapHistory("pushState");
      wrapHistory("replaceState");
      window.addEventListener("pagehide", guard(sendRead)); // what was read, before it goes
      window.addEventListener("pagehide", guard(lastBeat));
      window.addEventListener("pageshow", guard(function (e) {
        if (!e.persisted) return;
        leaving = false; // back from the back-forward cache
        beat();
        reconnectNow();
      }));
      window.addEventListener("online", guard(reconnectNow));
      document.addEventListener("visibilitychange", guard(function () {
        if (document.visibilityState !== "visible") return;
        pulse();
        reconnectNow();
        readSoon();
      }));
    }

    return {
      start: start,
      snapshot: function () {
        var out = {};
        Object.keys(s).forEach(function (k) {
          out[k] = k === "config" ? null : s[k];
        });
        var st = view ? view.state : null;
        var c = st && st.conv;
        out.configLoaded = !!s.config;
        out.mounted = !!view;
        out.screen = st ? st.screen : null;
        out.locale = st ? st.locale : null;
        out.conversationId = c ? c.id : s.conversationId;
        out.status = c ? c.status : null;
        out.assignee = c && c.assignee ? c.assignee.name : null;
        out.waitTimedOut = c ? c.waitTimedOut : false;
        out.lastSeq = c ? c.lastSeq : 0;
        out.socket = st ? st.socket : "idle";
        out.retries = attempt; // reconnect attempts since the last "ready"
        out.messages = st ? Object.keys(st.items).filter(function (k) {
          return st.items[k].kind === "msg";
        }).length : 0;
        out.sending = st ? st.outbox.filter(function (o) {
          return o.status === "sending";
        }).length : 0;
        out.failed = st ? st.outbox.length - out.sending : 0;
        out.unread = st ? st.unread : 0;
        if (st) out.agentsOnline = st.agentsOnline;
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

  /** The preview's forms validate in place and go nowhere. */
  var PREVIEW_EFFECTS = {
    submitPrechat: function (st) {
      st.errors = validate(st.draft, false);
      st.focus = ".cc-input[aria-invalid=true]";
      return false;
    },
    submitOffline: function (st) {
      st.errors = validate(st.draft, true);
      st.focus = ".cc-input[aria-invalid=true]";
      return false;
    },
    send: function () {
      return false;
    },
    keepWaiting: function (st) {
      if (st.conv) st.keepWaiting = st.conv.id;
    }
  };

  /**
   * Render the widget into `container` from a config object (the shape of GET /config) with no
   * network. options: {screen: "launcher"|"welcome"|"prechat"|"waiting"|"open"|"solved"|"timeout"|
   * "offline"|"sent", locale: "en"|"es", theme: "light"|"dark"}. The chat screens show sample data.
   * Returns {update(config), show(screen), destroy(), state()}.
   */
  function preview(container, config, options) {
    options = options || {};
    var view = createView(container, {
      mode: "preview",
      config: normalizeConfig(config),
      screen: options.screen,
      locale: options.locale,
      scheme: options.theme,
      effects: PREVIEW_EFFECTS
    });
    sampleConversation(view.state, view.state.screen);
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
        try {
          return loader ? loader.snapshot() : { mounted: false, screen: null, widgetStatus: null, visitorId: null };
        } catch (err) {
          quiet(err);
          return { mounted: false, error: "state" };
        }
      }
    });
    boot();
  } catch (err) {
    quiet(err);
  }
})();
