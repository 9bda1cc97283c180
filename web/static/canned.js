/* Settings › Canned replies: the workspace's saved answers (GET/POST/PATCH/DELETE
 * /api/chat/canned-replies). One form adds a reply or edits the one chosen; the list below is
 * read from the server after every change, so it shows what is stored. Texts are shown as text.
 */
(function () {
  "use strict";
  var P = window.CurbePage;
  var $ = function (id) {
    return document.getElementById(id);
  };
  var rows = $("canned-rows");
  if (!rows) return;
  var form = $("canned-form");
  var idField = $("canned-id");
  var shortcut = $("canned-shortcut");
  var text = $("canned-text");
  var error = $("canned-error");
  var save = $("canned-save");
  var cancel = $("canned-cancel");
  var title = $("canned-form-title");
  var notice = $("canned-notice");
  var replies = [];

  var on401 = P.on401;

  function say(message, kind) {
    P.say(notice, message, kind);
  }

  function render() {
    $("canned-loading").hidden = true;
    $("canned-empty").hidden = replies.length > 0;
    rows.replaceChildren.apply(
      rows,
      replies.map(function (r) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-reply-id", r.id);
        tr.appendChild(P.el("td", "canned-shortcut", "/" + r.shortcut));
        tr.appendChild(P.el("td", "canned-text", r.text));
        var actions = P.el("td", "canned-actions");
        var edit = P.el("button", "btn btn-small", "Edit");
        edit.type = "button";
        edit.setAttribute("data-action", "edit");
        edit.setAttribute("aria-label", "Edit /" + r.shortcut);
        var del = P.el("button", "btn btn-small btn-danger", "Delete");
        del.type = "button";
        del.setAttribute("data-action", "delete");
        del.setAttribute("aria-label", "Delete /" + r.shortcut);
        actions.append(edit, del);
        tr.appendChild(actions);
        return tr;
      })
    );
  }

  function load() {
    return P.api("GET", "/api/chat/canned-replies").then(function (result) {
      if (on401(result)) return;
      if (!result.ok || !result.data) {
        say(P.errorMessage(result, "Could not load the canned replies."), "error");
        return;
      }
      replies = result.data.cannedReplies;
      render();
    });
  }

  function reset() {
    idField.value = "";
    shortcut.value = "";
    text.value = "";
    error.hidden = true;
    title.textContent = "New canned reply";
    save.textContent = "Add reply";
    cancel.hidden = true;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var editing = idField.value;
    var body = { shortcut: shortcut.value.trim().replace(/^\//, ""), text: text.value };
    if (!body.shortcut || !text.value.trim()) {
      error.textContent = "Give the reply a shortcut and a text.";
      error.hidden = false;
      (body.shortcut ? text : shortcut).focus();
      return;
    }
    save.disabled = true;
    var request = editing
      ? P.api("PATCH", "/api/chat/canned-replies/" + encodeURIComponent(editing), body)
      : P.api("POST", "/api/chat/canned-replies", body);
    request.then(function (result) {
      save.disabled = false;
      if (on401(result)) return;
      if (!result.ok) {
        error.textContent = P.errorMessage(result, "Could not save the reply.");
        error.hidden = false;
        shortcut.focus();
        return;
      }
      say((editing ? "Saved /" : "Added /") + result.data.shortcut + ".", "ok");
      reset();
      load().then(function () {
        shortcut.focus();
      });
    });
  });

  cancel.addEventListener("click", function () {
    reset();
    shortcut.focus();
  });

  rows.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    var tr = event.target.closest("[data-reply-id]");
    if (!button || !tr) return;
    var id = tr.getAttribute("data-reply-id");
    var reply = replies.filter(function (r) {
      return r.id === id;
    })[0];
    if (!reply) return;
    if (button.getAttribute("data-action") === "edit") {
      idField.value = reply.id;
      shortcut.value = reply.shortcut;
      text.value = reply.text;
      error.hidden = true;
      title.textContent = "Edit /" + reply.shortcut;
      save.textContent = "Save";
      cancel.hidden = false;
      shortcut.focus();
      return;
    }
    if (!window.confirm("Delete /" + reply.shortcut + "? Nobody will find it in the composer any more.")) return;
    P.api("DELETE", "/api/chat/canned-replies/" + encodeURIComponent(id)).then(function (result) {
      if (on401(result)) return;
      if (!result.ok && result.status !== 404) {
        say(P.errorMessage(result, "Could not delete the reply."), "error");
        return;
      }
      if (idField.value === id) reset();
      say("Deleted /" + reply.shortcut + ".", "ok");
      load();
    });
  });

  load();
})();
