// The login page: POST /auth/login, keep the token for this tab, go to the dashboard. Shows why
// the last session ended (expired, signed out) when it did, and how long to wait after too many
// failed attempts (429).

import { saveSession, sessionToken, takeLoginNotice, takeReturnPlace } from "/js/session.js";
import { formatWait } from "/js/format.js";

const form = document.getElementById("login-form");
const button = document.getElementById("login-button");
const errorBox = document.getElementById("login-error");
const notice = document.getElementById("login-notice");

const message = takeLoginNotice();
if (message) {
  notice.textContent = message;
  notice.hidden = false;
} else if (sessionToken()) {
  // Already signed in in this tab.
  window.location.replace(takeReturnPlace());
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

async function problemText(response) {
  if (response.status === 429) {
    // Too many failed sign-ins for this username or from this computer: say how long to wait.
    const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    return Number.isFinite(seconds) && seconds > 0
      ? `Too many failed sign-in attempts. Signing in is paused for your security: try again in ${formatWait(seconds)}.`
      : "Too many failed sign-in attempts. Signing in is paused for your security: wait a few minutes, then try again.";
  }
  try {
    const problem = await response.json();
    if (response.status === 401) {
      return "The username or password is not right. Try again.";
    }
    if (problem.detail) {
      return problem.detail.charAt(0).toUpperCase() + problem.detail.slice(1);
    }
  } catch {
    // Not a problem document.
  }
  return `Signing in failed (HTTP ${response.status}).`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showError("Enter your username and password.");
    (username ? form.elements.password : form.elements.username).focus();
    return;
  }
  button.disabled = true;
  button.textContent = "Signing in…";
  form.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (response.ok) {
      saveSession(await response.json());
      notice.hidden = true;
      window.location.assign(takeReturnPlace());
      return;
    }
    showError(await problemText(response));
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
