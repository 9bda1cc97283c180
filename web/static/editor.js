/* Settings › Chat widgets › editor: form, live preview, save/delete, embed code.
 *
 * Save sends the whole form: POST /api/chat/widgets for a new widget (then opens its edit page),
 * PATCH /api/chat/widgets/<id> for an existing one. The server is the authority on validation: a
 * 422 {"error": {"fields": {"appearance.colorTheme": "...", "domains.1": "..."}}} puts each
 * message in a .field-error right after the input whose data-field matches the key (or its
 * nearest parent key: "domains.1" -> "domains"). The client only checks the obvious.
 *
 * The preview is /widget.js's `CurbeChat.preview(container, config, options)`; every input event
 * rebuilds the unsaved config and calls handle.update(config).
 */
(function () {
  "use strict";
  var P = window.CurbePage;
  var form = document.getElementById("widget-form");
  if (!form) return;

  function $(id) {
    return document.getElementById(id);
  }

  var isNew = form.getAttribute("data-new") === "true";
  var widgetId = form.getAttribute("data-widget-id") || null;
  var HEX = /^#[0-9a-fA-F]{6}$/;
  var lastValidColor = HEX.test($("f-color").value) ? $("f-color").value : "#2563eb";

  var banner = $("form-message");
  var saveButton = $("save-widget");
  var saveStatus = $("save-status");

  // --- form <-> widget ------------------------------------------------------------------------

  function optional(id) {
    var value = $(id).value.trim();
    return value === "" ? null : value;
  }

  function domainsList() {
    return $("f-domains")
      .value.split(/\r?\n/)
      .map(function (line) {
        return line.trim();
      })
      .filter(function (line) {
        return line !== "";
      });
  }

  function waitValue() {
    var raw = $("f-wait").value.trim();
    if (/^[0-9]+$/.test(raw)) return parseInt(raw, 10);
    return raw === "" ? null : raw;
  }

  /** The request body: the whole form, in the widget's wire shape. */
  function buildBody() {
    return {
      name: $("f-name").value.trim(),
      domains: domainsList(),
      waitTimeoutSeconds: waitValue(),
      locale: $("f-locale").value,
      routing: $("f-routing").value,
      appearance: {
        colorTheme: $("f-color").value.trim(),
        minimized: $("f-minimized").value,
        position: $("f-position").value,
        showAgentAvatar: $("f-avatar").checked,
        branding: { enabled: $("f-branding").checked, text: $("f-branding-text").value.trim() },
        welcome: { title: $("f-welcome-title").value.trim(), text: $("f-welcome-text").value.trim() },
      },
      channels: {
        liveChat: $("f-livechat").checked,
        sms: optional("f-sms"),
        call: optional("f-call"),
        whatsapp: optional("f-whatsapp"),
        telegram: optional("f-telegram"),
        messenger: optional("f-messenger"),
        email: optional("f-email"),
      },
    };
  }

  function fillForm(w) {
    var a = w.appearance || {};
    var c = w.channels || {};
    var branding = a.branding || {};
    var welcome = a.welcome || {};
    $("f-name").value = w.name || "";
    if (a.colorTheme) {
      $("f-color").value = a.colorTheme;
      if (HEX.test(a.colorTheme)) {
        $("f-color-picker").value = a.colorTheme.toLowerCase();
        lastValidColor = a.colorTheme;
      }
    }
    if (a.minimized) $("f-minimized").value = a.minimized;
    if (a.position) $("f-position").value = a.position;
    $("f-avatar").checked = !!a.showAgentAvatar;
    $("f-branding").checked = !!branding.enabled;
    $("f-branding-text").value = branding.text || "";
    $("f-welcome-title").value = welcome.title || "";
    $("f-welcome-text").value = welcome.text || "";
    $("f-livechat").checked = c.liveChat !== false;
    ["sms", "call", "whatsapp", "telegram", "messenger", "email"].forEach(function (key) {
      $("f-" + key).value = c[key] || "";
    });
    $("f-domains").value = (w.domains || []).join("\n");
    if (w.waitTimeoutSeconds !== undefined && w.waitTimeoutSeconds !== null) {
      $("f-wait").value = String(w.waitTimeoutSeconds);
    }
    $("f-locale").value = w.locale || "auto";
    $("f-routing").value = w.routing || "manual";
  }

  function applySaved(w) {
    fillForm(w);
    $("crumb-name").textContent = w.name;
    document.title = w.name + " · Chat widgets · Curbe Chat";
    if (w.embedCode) $("embed-code").value = w.embedCode;
    var badge = $("editor-status");
    if (badge && w.status) {
      badge.className = "status-badge status-" + String(w.status).toLowerCase();
      badge.textContent = P.statusLabel(w.status);
    }
    updatePreview();
  }

  // --- colour ---------------------------------------------------------------------------------

  $("f-color-picker").addEventListener("input", function () {
    $("f-color").value = $("f-color-picker").value;
  });
  $("f-color").addEventListener("input", function () {
    var value = $("f-color").value.trim();
    if (/^[0-9a-fA-F]{6}$/.test(value)) value = "#" + value;
    if (HEX.test(value)) $("f-color-picker").value = value.toLowerCase();
  });
  $("f-color").addEventListener("change", function () {
    var value = $("f-color").value.trim();
    if (/^[0-9a-fA-F]{6}$/.test(value)) $("f-color").value = "#" + value;
  });

  // --- errors ---------------------------------------------------------------------------------

  function capitalised(message) {
    message = String(message || "is not valid");
    return message.charAt(0).toUpperCase() + message.slice(1);
  }

  function inputFor(key) {
    var k = String(key);
    for (;;) {
      var node = form.querySelector('[data-field="' + CSS.escape(k) + '"]');
      if (node) return node;
      var dot = k.lastIndexOf(".");
      if (dot < 0) return null;
      k = k.slice(0, dot);
    }
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(function (node) {
      var input = form.querySelector('[aria-describedby~="' + node.id + '"]');
      if (input) {
        var rest = input
          .getAttribute("aria-describedby")
          .split(/\s+/)
          .filter(function (t) {
            return t && t !== node.id;
          });
        if (rest.length) input.setAttribute("aria-describedby", rest.join(" "));
        else input.removeAttribute("aria-describedby");
      }
      node.remove();
    });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (input) {
      input.removeAttribute("aria-invalid");
    });
    banner.hidden = true;
    banner.textContent = "";
  }

  /** Show `fields` ({key: message}) beside their inputs; returns how many found no input. */
  function showErrors(fields, body) {
    var byInput = new Map();
    var orphans = [];
    Object.keys(fields).forEach(function (key) {
      var message = capitalised(fields[key]);
      var m = /^domains\.(\d+)$/.exec(key);
      var entry = m && body && body.domains ? body.domains[+m[1]] : undefined;
      if (entry !== undefined && String(fields[key]).indexOf(entry) === -1) {
        message = "\u201c" + entry + "\u201d " + String(fields[key]);
      }
      var input = inputFor(key);
      if (!input) {
        orphans.push(key + ": " + fields[key]);
        return;
      }
      if (!byInput.has(input)) byInput.set(input, []);
      byInput.get(input).push(message);
    });
    var first = null;
    byInput.forEach(function (messages, input) {
      var error = P.el("p", "field-error", messages.join(" · "));
      error.id = (input.id || "field") + "-error";
      error.setAttribute("data-error-for", input.getAttribute("data-field"));
      var anchor = input.type === "checkbox" ? input.closest("label") || input : input;
      anchor.insertAdjacentElement("afterend", error);
      input.setAttribute("aria-invalid", "true");
      var described = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
      described.push(error.id);
      input.setAttribute("aria-describedby", described.join(" "));
      if (!first) first = input;
    });
    if (first) first.focus();
    return orphans;
  }

  function showBanner(message) {
    banner.textContent = message;
    banner.hidden = false;
  }

  /** Light checks only; the server decides. */
  function localErrors(body) {
    var errors = {};
    if (!body.name) errors.name = "enter a name for this widget";
    if (!HEX.test(body.appearance.colorTheme)) {
      errors["appearance.colorTheme"] = "must be a colour like #2563eb";
    }
    if (typeof body.waitTimeoutSeconds !== "number" || body.waitTimeoutSeconds < 1) {
      errors.waitTimeoutSeconds = "must be a whole number of seconds";
    }
    return errors;
  }

  // --- save / delete --------------------------------------------------------------------------

  function saving(on) {
    saveButton.disabled = on;
    saveStatus.textContent = on ? "Saving…" : "";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var body = buildBody();
    var local = localErrors(body);
    if (Object.keys(local).length) {
      showErrors(local, body);
      showBanner("Fix the highlighted fields, then save again.");
      return;
    }
    saving(true);
    var request = isNew
      ? P.api("POST", "/api/chat/widgets", body)
      : P.api("PATCH", "/api/chat/widgets/" + encodeURIComponent(widgetId), body);
    request.then(function (result) {
      saving(false);
      if (result.ok && result.data && typeof result.data.id === "string") {
        if (isNew) {
          location.assign("/settings/widgets/" + encodeURIComponent(result.data.id) + "?created=1");
          return;
        }
        applySaved(result.data);
        saveStatus.textContent = "Saved";
        return;
      }
      if (result.status === 401) {
        P.toLogin();
        return;
      }
      var error = result.data && result.data.error;
      var orphans = [];
      if (error && error.fields && typeof error.fields === "object") {
        orphans = showErrors(error.fields, body);
      }
      if (error && error.fields && !orphans.length) {
        showBanner("Fix the highlighted fields, then save again.");
      } else {
        var message = P.errorMessage(result, "Could not save the widget.");
        showBanner(orphans.length ? message + " (" + orphans.join("; ") + ")" : message);
      }
    });
  });

  var deleteButton = $("delete-widget");
  if (deleteButton) {
    deleteButton.addEventListener("click", function () {
      var name = $("crumb-name").textContent;
      var ok = window.confirm(
        "Delete the widget \u201c" + name + "\u201d? Sites that embed it stop showing the chat. This cannot be undone."
      );
      if (!ok) return;
      deleteButton.disabled = true;
      P.api("DELETE", "/api/chat/widgets/" + encodeURIComponent(widgetId)).then(function (result) {
        if (result.ok || result.status === 404) {
          location.assign("/settings/widgets");
          return;
        }
        deleteButton.disabled = false;
        if (result.status === 401) return P.toLogin();
        showBanner(P.errorMessage(result, "Could not delete the widget."));
      });
    });
  }

  // --- embed code -----------------------------------------------------------------------------

  var copyButton = $("copy-embed");
  if (copyButton) {
    copyButton.addEventListener("click", function () {
      var area = $("embed-code");
      P.copyText(area.value).then(
        function () {
          $("copy-status").textContent = "Copied to the clipboard";
        },
        function () {
          area.focus();
          area.select();
          $("copy-status").textContent = "Press Ctrl+C (⌘C on a Mac) to copy";
        }
      );
    });
  }

  // --- live preview ---------------------------------------------------------------------------

  var handle = null;
  var screen = "welcome";

  function previewConfig() {
    var body = buildBody();
    var color = body.appearance.colorTheme;
    if (HEX.test(color)) lastValidColor = color;
    else body.appearance.colorTheme = lastValidColor; // half-typed: keep the last good colour
    return {
      name: body.name || "Chat",
      appearance: body.appearance,
      channels: body.channels,
      locale: body.locale,
      agentsOnline: true,
      waitTimeoutSeconds: typeof body.waitTimeoutSeconds === "number" ? body.waitTimeoutSeconds : 60,
    };
  }

  function unavailable() {
    handle = null;
    $("preview-unavailable").hidden = false;
    $("widget-preview").hidden = true;
  }

  function updatePreview() {
    if (!handle) return;
    try {
      handle.update(previewConfig());
    } catch (e) {
      if (window.console) console.error("widget preview failed", e);
    }
  }

  function startPreview() {
    var api = window.CurbeChat;
    if (!api || typeof api.preview !== "function") {
      unavailable();
      return;
    }
    try {
      handle = api.preview($("widget-preview"), previewConfig(), { screen: screen });
      if (!handle || typeof handle.update !== "function") {
        unavailable();
        return;
      }
      if (typeof handle.show === "function") handle.show(screen);
    } catch (e) {
      if (window.console) console.error("widget preview failed", e);
      unavailable();
    }
  }

  document.querySelectorAll(".segmented [data-screen]").forEach(function (button) {
    button.addEventListener("click", function () {
      screen = button.getAttribute("data-screen");
      document.querySelectorAll(".segmented [data-screen]").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
      if (handle && typeof handle.show === "function") {
        try {
          handle.show(screen);
        } catch (e) {
          if (window.console) console.error("widget preview failed", e);
        }
      }
    });
  });

  form.addEventListener("input", updatePreview);
  form.addEventListener("change", updatePreview);
  startPreview();
})();
