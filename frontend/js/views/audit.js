// The audit trail (administrators; anyone else is told the API's refusal): who accessed what and
// when, allowed or denied, oldest first as recorded. Filters by patient, by the acting staff member and by time; "Show more" follows
// the API's `Link: rel="next"`. The filters live in the address, so a patient page can link here.

import { api, isQuiet, queryString } from "/api.js";
import { h, link, replace } from "/js/dom.js";
import { clearErrors, field, formAlert, showError } from "/js/forms.js";
import { formatDateTime, formatRole, isoDay, isoTime, withOffset } from "/js/format.js";
import { navigate } from "/js/router.js";

const PAGE_SIZE = 100;
const FILTERS = ["patient_id", "actor", "from", "to"];

/** `YYYY-MM-DDTHH:MM` in local time for a datetime-local input, from an RFC 3339 time. */
function inputTime(text) {
  const date = new Date(text || "");
  return Number.isNaN(date.getTime()) ? "" : `${isoDay(date)}T${isoTime(date)}`;
}

/** RFC 3339 with the browser's offset from a datetime-local value, or null when empty. */
function apiTime(value) {
  if (!value) {
    return null;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : withOffset(date);
}

export function auditView({ outlet, query }) {
  const heading = h("h1", {}, "Audit trail");

  const apply = h("button", { type: "submit" }, "Apply filters");
  const form = h("form", { class: "form filters-form", novalidate: true, "aria-label": "Audit filters" },
    formAlert(),
    h("div", { class: "grid" },
      field({ name: "patient_id", label: "Patient id", value: query.patient_id, hint: "The patient's id (from the patient page's address)", attrs: { autocomplete: "off", spellcheck: "false" } }),
      field({ name: "actor", label: "Staff member id", value: query.actor, hint: "Who acted: a staff member's id", attrs: { autocomplete: "off", spellcheck: "false" } }),
      field({ name: "from", label: "From", type: "datetime-local", value: inputTime(query.from) }),
      field({ name: "to", label: "To", type: "datetime-local", value: inputTime(query.to) })),
    h("div", { class: "actions" }, apply,
      h("button", { type: "button", class: "secondary", onclick: () => navigate("/audit", {}, { replace: true }) }, "Clear filters")),
  );
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const rows = h("tbody");
  const table = h("table", { id: "audit-table", class: "data compact", hidden: true },
    h("caption", { class: "visually-hidden" }, "Audit entries, oldest first"),
    h("thead", {}, h("tr", {},
      ["When", "Who", "What", "Patient", "Outcome", "Client", "Request id"].map((title) => h("th", { scope: "col" }, title)))),
    rows);
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more entries");

  replace(outlet,
    h("div", { class: "page-head" }, heading),
    h("p", { class: "lead" }, "Every call to the API: who made it, on what, and whether it was allowed. Oldest first; set “From” to start later."),
    form, status, error,
    h("div", { class: "table-scroll" }, table),
    h("div", { class: "pager" }, more));

  let nextUrl = null;
  let shown = 0;
  let controller = null;

  function row(entry) {
    return h("tr", { class: `outcome-${entry.outcome}` },
      h("td", {}, h("time", { datetime: entry.at, title: entry.at }, formatDateTime(entry.at))),
      h("td", {},
        entry.actor_name || entry.actor_id || "—",
        entry.actor_role ? h("span", { class: "muted" }, ` (${formatRole(entry.actor_role)})`) : null),
      h("td", {},
        entry.action || "",
        h("br"),
        h("span", { class: "mono small" }, `${entry.method || ""} ${entry.path || ""}`.trim())),
      // The id, not the name: looking the name up would itself be an access to the patient,
      // and reading the trail must not write into it.
      h("td", {}, entry.patient_id
        ? link(`/patients/${entry.patient_id}`, h("span", { class: "mono small" }, `${entry.patient_id.slice(0, 8)}…`), { "aria-label": `Patient ${entry.patient_id}`, title: entry.patient_id })
        : "—"),
      h("td", {},
        h("span", { class: `badge outcome-${entry.outcome}` }, entry.outcome === "denied" ? "Denied" : "Allowed"),
        entry.status ? ` ${entry.status}` : ""),
      h("td", { class: "mono small addr" }, entry.client_addr || ""),
      h("td", { class: "mono small" }, entry.request_id || ""));
  }

  async function load(url, { append }) {
    controller?.abort();
    controller = new AbortController();
    error.hidden = true;
    status.textContent = "Loading…";
    try {
      const page = await api.page(url, { signal: controller.signal });
      const built = page.items.map(row);
      if (append) {
        rows.append(...built);
        shown += page.items.length;
      } else {
        replace(rows, built);
        shown = page.items.length;
      }
      nextUrl = page.next;
      more.hidden = !nextUrl;
      table.hidden = shown === 0;
      status.textContent = shown === 0
        ? "No audit entries match."
        : `${shown} entr${shown === 1 ? "y" : "ies"} shown${nextUrl ? "; more are available" : ""}.`;
    } catch (failure) {
      if (isQuiet(failure)) {
        return;
      }
      status.textContent = "";
      if (failure.status === 403) {
        // Only administrators get here by the menu; anyone else typed the address. The API
        // refuses (and records the attempt); say why, without the filters.
        replace(outlet, heading, h("p", { class: "alert", role: "alert" }, failure.userMessage));
      } else if (failure.errors?.length) {
        await showError(form, failure);
      } else {
        error.textContent = failure.userMessage;
        error.hidden = false;
      }
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = {
      patient_id: form.elements.namedItem("patient_id").value.trim(),
      actor: form.elements.namedItem("actor").value.trim(),
      from: apiTime(form.elements.namedItem("from").value),
      to: apiTime(form.elements.namedItem("to").value),
    };
    // The filters go into the address (so the view can be bookmarked); the route then loads.
    navigate("/audit", values, { replace: true });
  });
  more.addEventListener("click", () => {
    if (nextUrl) {
      load(nextUrl, { append: true });
    }
  });

  const filters = Object.fromEntries(FILTERS.map((name) => [name, query[name]]));
  load(`/api/audit${queryString({ ...filters, limit: PAGE_SIZE })}`, { append: false });
  return () => controller?.abort();
}
