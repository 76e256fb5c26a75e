// Staff: everyone sees the list (roles, specializations, contact); administrators add, edit and
// remove staff members and their logins.

import { api, isQuiet, queryString } from "/api.js";
import { debounce, h, link, replace } from "/js/dom.js";
import { formatRole } from "/js/format.js";
import { can } from "/js/roles.js";
import { confirmAction } from "/js/dialogs.js";
import { announce } from "/js/notify.js";
import { currentUser } from "/js/session.js";

const ROLES = [["", "All roles"], ["doctor", "Doctors"], ["nurse", "Nurses"], ["receptionist", "Receptionists"], ["admin", "Administrators"]];

export function staffView({ outlet, onLive }) {
  const manage = can.manageStaff();
  const search = h("input", { id: "staff-search", type: "search", autocomplete: "off", "aria-controls": "staff-table" });
  const roleFilter = h("select", { id: "staff-role", "aria-controls": "staff-table" }, ROLES.map(([v, t]) => h("option", { value: v }, t)));
  const status = h("p", { class: "status", role: "status" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const rows = h("tbody");
  const columns = ["Name", "Role", "Specialization", "Username", "Contact", manage ? "Actions" : null].filter(Boolean);
  const table = h("table", { id: "staff-table", class: "data" },
    h("caption", { class: "visually-hidden" }, "Staff"),
    h("thead", {}, h("tr", {}, columns.map((t) => h("th", { scope: "col" }, t)))),
    rows);

  replace(outlet,
    h("div", { class: "page-head" },
      h("h1", {}, "Staff"),
      manage ? link("/staff/new", "New staff member", { class: "button" }) : null),
    h("form", { class: "search filters", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("div", { class: "field" }, h("label", { for: "staff-search" }, "Search staff"), search),
      h("div", { class: "field" }, h("label", { for: "staff-role" }, "Role"), roleFilter)),
    status, error, h("div", { class: "table-scroll" }, table));

  let controller = null;
  const me = currentUser().id;

  function row(person) {
    return h("tr", {},
      h("th", { scope: "row" }, person.name),
      h("td", {}, h("span", { class: `badge role-${person.role}` }, formatRole(person.role))),
      h("td", {}, person.specialization || ""),
      h("td", { class: "mono" }, person.username || h("span", { class: "muted" }, "no login")),
      h("td", {}, [person.email, person.phone].filter(Boolean).join(" · ")),
      manage ? h("td", {}, h("div", { class: "row-actions" },
        link(`/staff/${person.id}/edit`, "Edit", { "aria-label": `Edit ${person.name}`, class: "button small secondary" }),
        person.id === me ? null : h("button", {
          type: "button", class: "small secondary danger-text", "aria-label": `Remove ${person.name}`,
          onclick: () => remove(person),
        }, "Remove"))) : null);
  }

  async function remove(person) {
    const answer = await confirmAction({
      title: `Remove ${person.name}?`,
      message: "Their login stops working. Records they wrote are kept; their future appointments are cancelled.",
      confirmLabel: "Remove staff member", danger: true,
    });
    if (!answer.confirmed) {
      return;
    }
    try {
      await api.del(`/api/staff/${person.id}`);
      announce(`${person.name} was removed.`);
      load();
    } catch (failure) {
      if (!isQuiet(failure)) {
        error.textContent = failure.userMessage;
        error.hidden = false;
      }
    }
  }

  async function load() {
    controller?.abort();
    controller = new AbortController();
    error.hidden = true;
    status.textContent = "Loading…";
    try {
      const q = search.value.trim();
      const people = await api.all(`/api/staff${queryString({ q, limit: 200 })}`, { signal: controller.signal, maxPages: 10 });
      const role = roleFilter.value;
      const shown = role ? people.filter((p) => p.role === role) : people;
      replace(rows, shown.map(row));
      table.hidden = shown.length === 0;
      status.textContent = shown.length === 0 ? "No staff members match." : `${shown.length} staff member${shown.length === 1 ? "" : "s"}.`;
    } catch (failure) {
      if (!isQuiet(failure)) {
        status.textContent = "";
        error.textContent = failure.userMessage;
        error.hidden = false;
      }
    }
  }

  search.addEventListener("input", debounce(load, 250));
  roleFilter.addEventListener("change", load);
  onLive((event) => event.aggregate === "staff", load);
  load();
  return () => controller?.abort();
}
