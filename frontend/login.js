// The login form: POST /auth/login, keep the token for this tab, go to the dashboard.

import { problemMessage, saveSession } from "/api.js";

const form = document.getElementById("login-form");
const button = document.getElementById("login-button");
const errorBox = document.getElementById("login-error");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  button.disabled = true;
  button.textContent = "Signing in…";
  form.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        username: form.elements.username.value,
        password: form.elements.password.value,
      }),
    });
    if (response.ok) {
      saveSession(await response.json());
      window.location.assign("/dashboard.html");
      return;
    }
    showError(await problemMessage(response));
    form.elements.password.value = "";
    form.elements.password.focus();
  } catch {
    showError("The server could not be reached. Check the connection and try again.");
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
    form.removeAttribute("aria-busy");
  }
});
