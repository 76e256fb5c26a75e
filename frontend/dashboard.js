// The patient list: GET /api/patients with the session token, page by page (Link: rel="next").

import { endSession, problemMessage, sessionToken, tokenClaims } from "/api.js";

const token = sessionToken();
if (!token) {
  window.location.replace("/login.html");
}

const table = document.getElementById("patients");
const rows = table.querySelector("tbody");
const more = document.getElementById("more");
const status = document.getElementById("status");
const errorBox = document.getElementById("error");
let nextPage = null;

const claims = tokenClaims(token || "");
document.getElementById("who").textContent = claims.name ? `${claims.name} (${claims.role})` : "";

document.getElementById("sign-out").addEventListener("click", () => {
  endSession();
  window.location.assign("/login.html");
});

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = event.target.elements.q.value.trim();
  load(q ? `/api/patients?q=${encodeURIComponent(q)}` : "/api/patients", true);
});

more.addEventListener("click", () => {
  if (nextPage) {
    load(nextPage, false);
  }
});

/** The URL of `Link: <...>; rel="next"`, if any. */
function nextLink(response) {
  const link = response.headers.get("Link") || "";
  const match = link.match(/<([^>]+)>\s*;\s*rel="next"/);
  return match ? match[1] : null;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function addRow(patient) {
  const row = rows.insertRow();
  for (const value of [patient.name, patient.mrn, patient.birth_date, patient.sex, patient.phone]) {
    // textContent, never innerHTML: names are data, not markup.
    row.insertCell().textContent = value ?? "";
  }
}

async function load(url, fresh) {
  showError("");
  status.textContent = "Loading…";
  more.disabled = true;
  try {
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    });
    if (response.status === 401) {
      endSession();
      window.location.assign("/login.html");
      return;
    }
    if (!response.ok) {
      status.textContent = "";
      showError(await problemMessage(response));
      return;
    }
    const patients = await response.json();
    if (fresh) {
      rows.replaceChildren();
    }
    patients.forEach(addRow);
    nextPage = nextLink(response);
    more.hidden = !nextPage;
    table.hidden = rows.rows.length === 0;
    status.textContent =
      rows.rows.length === 0 ? "No patients found." : `${rows.rows.length} patients shown.`;
  } catch {
    status.textContent = "";
    showError("The server could not be reached. Check the connection and try again.");
  } finally {
    more.disabled = false;
  }
}

if (token) {
  load("/api/patients", true);
}
