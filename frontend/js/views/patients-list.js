// Patients: search as you type (name words or MRN), a paged table, links to each patient.

import { api, isQuiet, queryString } from "/api.js";
import { debounce, h, link, replace } from "/js/dom.js";
import { formatBirthDate, formatSex } from "/js/format.js";
import { remember } from "/js/directory.js";
import { can } from "/js/roles.js";

const PAGE_SIZE = 20;

export function patientsView({ outlet, query, onLive }) {
  const search = h("input", {
    id: "patient-search", name: "q", type: "search", autocomplete: "off", value: query.q || "",
    "aria-describedby": "patient-search-hint", "aria-controls": "patients-table",
  });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const rows = h("tbody");
  const table = h("table", { id: "patients-table", class: "data" },
    h("caption", { class: "visually-hidden" }, "Patients"),
    h("thead", {}, h("tr", {},
      ["Name", "MRN", "Birth date", "Sex", "Phone", "Actions"].map((title) => h("th", { scope: "col" }, title)))),
    rows,
  );
  const previous = h("button", { type: "button", class: "secondary", disabled: true }, "Previous page");
  const next = h("button", { type: "button", class: "secondary", disabled: true }, "Next page");
  const pageLabel = h("span", { class: "muted" });

  replace(outlet,
    h("div", { class: "page-head" },
      h("h1", {}, "Patients"),
      can.editPatients() ? link("/patients/new", "New patient", { class: "button" }) : null),
    h("form", { class: "search", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("label", { for: "patient-search" }, "Search patients"),
      search,
      h("p", { id: "patient-search-hint", class: "hint" }, "Type part of a name (“ada love”) or a full medical record number.")),
    status,
    error,
    h("div", { class: "table-scroll" }, table),
    h("nav", { class: "pager", "aria-label": "Patient pages" }, previous, pageLabel, next),
  );

  // The cursors of the pages seen, so “Previous” can go back: pages[i] is the URL of page i.
  let pages = [];
  let index = 0;
  let controller = null;
  // The search those pages belong to (the box may already hold a newer one, not yet sent).
  let pagesQuery = "";

  function firstPage() {
    return `/api/patients${queryString({ q: search.value.trim(), limit: PAGE_SIZE })}`;
  }

  async function show(url) {
    controller?.abort();
    controller = new AbortController();
    error.hidden = true;
    status.textContent = "Loading…";
    try {
      const { items, next: nextUrl } = await api.page(url, { signal: controller.signal });
      replace(rows, items.map(row));
      items.forEach((patient) => remember("patient", patient));
      pages = pages.slice(0, index + 1);
      if (nextUrl) {
        pages[index + 1] = nextUrl;
      }
      previous.disabled = index === 0;
      next.disabled = !nextUrl;
      pageLabel.textContent = `Page ${index + 1}`;
      const q = pagesQuery;
      status.textContent = items.length === 0
        ? (q ? `No patients match “${q}”.` : "No patients registered yet.")
        : `${items.length} patient${items.length === 1 ? "" : "s"} shown${q ? ` for “${q}”` : ""}${nextUrl ? ", more on the next page" : ""}.`;
      table.hidden = items.length === 0;
    } catch (failure) {
      if (isQuiet(failure)) {
        return;
      }
      status.textContent = "";
      error.textContent = failure.userMessage || String(failure);
      error.hidden = false;
    }
  }

  function load() {
    pages = [firstPage()];
    index = 0;
    const q = search.value.trim();
    pagesQuery = q;
    history.replaceState(null, "", q ? `#/patients?q=${encodeURIComponent(q)}` : "#/patients");
    show(pages[0]);
  }

  const searchSoon = debounce(load, 250);
  search.addEventListener("input", () => {
    // The pages shown belong to the old query: no paging until the new one has answered.
    previous.disabled = true;
    next.disabled = true;
    status.textContent = "Searching…";
    searchSoon();
  });
  previous.addEventListener("click", () => {
    if (index > 0) {
      index -= 1;
      show(pages[index]);
    }
  });
  next.addEventListener("click", () => {
    if (pages[index + 1]) {
      index += 1;
      show(pages[index]);
    }
  });

  onLive((event) => event.aggregate === "patient", () => {
    // While a new search waits to be sent, refreshing the old one would show its results
    // under the new words; the search about to run brings fresh results anyway.
    if (search.value.trim() === pagesQuery) {
      show(pages[index] || firstPage());
    }
  });
  load();
  return () => {
    searchSoon.cancel();
    controller?.abort();
  };
}

function row(patient) {
  return h("tr", {},
    h("th", { scope: "row" }, link(`/patients/${patient.id}`, patient.name)),
    h("td", { class: "mono" }, patient.mrn),
    h("td", {}, formatBirthDate(patient.birth_date)),
    h("td", {}, formatSex(patient.sex)),
    h("td", {}, patient.phone || ""),
    h("td", {}, can.editPatients() ? link(`/patients/${patient.id}/edit`, "Edit", { "aria-label": `Edit ${patient.name}` }) : ""),
  );
}
