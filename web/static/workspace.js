/* Settings › Workspace: the language the workspace's conversations are searched in
 * (PATCH /api/chat/workspace). What the page shows after a save is what the server answered.
 */
(function () {
  "use strict";
  var P = window.CurbePage;
  var form = document.getElementById("workspace-form");
  if (!form) return;
  var language = document.getElementById("search-language");
  var save = document.getElementById("workspace-save");
  var notice = document.getElementById("workspace-notice");
  var error = document.getElementById("workspace-error");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    save.disabled = true;
    P.say(error, "");
    P.say(notice, "");
    P.api("PATCH", "/api/chat/workspace", { searchLanguage: language.value }).then(function (result) {
      save.disabled = false;
      if (P.on401(result)) return;
      if (!(result.ok && result.data)) {
        P.say(error, P.errorMessage(result, "Could not save the workspace."), "error");
        return;
      }
      language.value = result.data.searchLanguage;
      P.say(notice, "Saved. New messages are searched in " + language.selectedOptions[0].textContent + ".", "ok");
    });
  });
})();
