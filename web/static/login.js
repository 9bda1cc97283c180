/* Sign-in page: posts {email, password} to /api/auth/login (the answer sets the session cookie),
 * then goes to the local `next` path the server put on the form. */
(function () {
  "use strict";
  var P = window.CurbePage;
  var form = document.getElementById("login-form");
  var email = form.elements.email;
  var password = form.elements.password;
  var error = document.getElementById("login-error");
  var submit = document.getElementById("login-submit");

  function safeNext(value) {
    if (!value || value.charAt(0) !== "/" || value.charAt(1) === "/" || value.indexOf("\\") !== -1) {
      return "/inbox";
    }
    return value;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    email.setAttribute("aria-invalid", "true");
    password.setAttribute("aria-invalid", "true");
  }

  function clearError() {
    error.hidden = true;
    error.textContent = "";
    email.removeAttribute("aria-invalid");
    password.removeAttribute("aria-invalid");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearError();
    if (!email.value.trim() || !password.value) {
      showError("Enter your email and password.");
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    P.api("POST", "/api/auth/login", { email: email.value.trim(), password: password.value }).then(
      function (result) {
        if (result.ok) {
          location.assign(safeNext(form.getAttribute("data-next")));
          return;
        }
        submit.disabled = false;
        submit.textContent = "Sign in";
        if (result.status === 401) {
          showError(P.errorMessage(result, "Wrong email or password."));
          password.select();
        } else if (result.status === 429) {
          showError(P.errorMessage(result, "Too many attempts. Wait a minute and try again."));
        } else {
          showError(P.errorMessage(result, "Could not sign in. Try again."));
        }
      }
    );
  });
})();
