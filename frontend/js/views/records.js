// A patient's records timeline, newest first: each record with its diagnoses and vital signs,
// its amendment history on demand, and (for those who write that kind) amend / entered in error.

import { api, isQuiet } from "/api.js";
import { h, replace } from "/js/dom.js";
import { nameOf } from "/js/directory.js";
import { formatDateTime, formatKind, formatRole, formatStatus, VITALS } from "/js/format.js";
import { can } from "/js/roles.js";
import { confirmAction } from "/js/dialogs.js";
import { announce } from "/js/notify.js";
import { recordForm } from "/js/views/record-form.js";

const CHANGE = { created: "Created", amended: "Amended", entered_in_error: "Marked entered in error" };

function vitalsList(vitals) {
  if (!vitals) {
    return null;
  }
  const items = [];
  if (vitals.systolic_mmhg != null && vitals.diastolic_mmhg != null) {
    items.push(["Blood pressure", `${vitals.systolic_mmhg}/${vitals.diastolic_mmhg} mmHg`]);
  }
  for (const [name, label, unit] of VITALS) {
    if (vitals[name] == null) {
      continue;
    }
    if ((name === "systolic_mmhg" || name === "diastolic_mmhg") && vitals.systolic_mmhg != null && vitals.diastolic_mmhg != null) {
      continue;
    }
    items.push([label, `${vitals[name]} ${unit}`]);
  }
  if (items.length === 0) {
    return null;
  }
  return h("dl", { class: "vitals" }, items.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value))));
}

function diagnosesList(diagnoses) {
  if (!diagnoses?.length) {
    return null;
  }
  return h("ul", { class: "diagnoses", "aria-label": "Diagnoses" }, diagnoses.map((d) =>
    h("li", {}, h("span", { class: "code" }, d.code), ` ${d.description}`)));
}

/** The content of one version of a record (shared by the timeline and the history). */
function recordContent(record) {
  return [
    record.body ? h("p", { class: "record-body" }, record.body) : null,
    diagnosesList(record.diagnoses),
    vitalsList(record.vitals),
  ];
}

/** The amendment history of `record`, loaded when its disclosure is opened. */
function historyDisclosure(record) {
  const body = h("div", { class: "history" }, h("p", { class: "muted" }, "Loading…"));
  const summary = h("summary", {}, record.version > 1 ? `History (${record.version} versions)` : "History");
  const details = h("details", { class: "record-history" }, summary, body);
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) {
      return;
    }
    loaded = true;
    try {
      const versions = await api.get(`/api/records/${record.id}/history`);
      const items = await Promise.all(versions.map(async (version) => {
        const by = version.changed_by?.id === "system" ? "the system" : await nameOf("staff", version.changed_by?.id);
        return h("li", { class: "version" },
          h("p", { class: "version-head" },
            h("strong", {}, `Version ${version.version}`),
            ` · ${CHANGE[version.change] || version.change} by ${by}`,
            version.changed_by?.role ? ` (${formatRole(version.changed_by.role)})` : "",
            ` · `, h("time", { datetime: version.changed_at }, formatDateTime(version.changed_at))),
          h("p", { class: "version-title" }, version.record.title),
          recordContent(version.record));
      }));
      replace(body, h("ol", { class: "versions", reversed: true }, items.reverse()));
    } catch (error) {
      loaded = false;
      if (!isQuiet(error)) {
        replace(body, h("p", { class: "alert", role: "alert" }, error.userMessage));
      }
    }
  });
  return details;
}

/**
 * The timeline of `patient` in `container`. `appointments()` gives the patient's appointments
 * (for the amend form's visit choice). Returns `{reload}`.
 */
export function recordsTimeline({ patient, container, appointments }) {
  const list = h("ol", { class: "timeline", "aria-label": "Medical records, newest first" });
  const status = h("p", { class: "status", role: "status" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const showWithdrawn = h("input", { type: "checkbox", id: "show-withdrawn" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show older records");
  let nextUrl = null;
  let editing = null; // the id of the record being amended: a refresh leaves its form alone

  replace(container,
    h("div", { class: "check" }, showWithdrawn, h("label", { for: "show-withdrawn" }, "Show records entered in error")),
    status, error, list, more);

  async function item(record) {
    const author = await nameOf("staff", record.author_id);
    const withdrawn = record.status === "entered_in_error";
    const actions = h("div", { class: "row-actions" });
    const article = h("article", { class: ["record", withdrawn && "withdrawn"], "aria-labelledby": `record-${record.id}-title` },
      h("header", { class: "record-head" },
        h("span", { class: `badge kind-${record.kind}` }, formatKind(record.kind)),
        h("h3", { id: `record-${record.id}-title` }, record.title),
        withdrawn ? h("span", { class: "badge status-withdrawn" }, formatStatus(record.status)) : null),
      h("p", { class: "record-meta" },
        h("time", { datetime: record.recorded_at }, formatDateTime(record.recorded_at)),
        ` · by ${author}`,
        record.version > 1 ? ` · amended (version ${record.version})` : ""),
      recordContent(record),
      historyDisclosure(record),
      actions,
    );
    const li = h("li", { dataset: { recordId: record.id } }, article);
    if (!withdrawn && can.changeRecord(record.kind)) {
      actions.append(
        h("button", {
          type: "button", class: "small secondary", "aria-label": `Amend ${record.title}`,
          onclick: async () => {
            editing = record.id;
            const form = recordForm({
              patient, record, appointments: await appointments(),
              onSaved: () => { editing = null; reload(); },
              onCancel: () => { editing = null; form.replaceWith(article); article.querySelector("button")?.focus(); },
            });
            article.replaceWith(form);
            form.querySelector("input, textarea, select:not([disabled])")?.focus();
          },
        }, "Amend"),
        h("button", {
          type: "button", class: "small secondary danger-text", "aria-label": `Mark ${record.title} as entered in error`,
          onclick: async () => {
            const answer = await confirmAction({
              title: "Mark this record as entered in error?",
              message: `“${record.title}” stays readable in the history but leaves the timeline.`,
              confirmLabel: "Mark entered in error", danger: true,
            });
            if (!answer.confirmed) {
              return;
            }
            try {
              await api.del(`/api/records/${record.id}`);
              announce(`“${record.title}” marked as entered in error.`);
              reload();
            } catch (failure) {
              if (!isQuiet(failure)) {
                error.textContent = failure.userMessage;
                error.hidden = false;
              }
            }
          },
        }, "Entered in error"),
      );
    }
    return li;
  }

  async function load(url, fresh) {
    error.hidden = true;
    try {
      const page = await api.page(url);
      const items = await Promise.all(page.items.map(item));
      if (fresh) {
        // A refresh (a live event, often one's own change) keeps open the histories the reader
        // opened, instead of folding them away under their eyes.
        const open = new Set([...list.querySelectorAll("details.record-history[open]")]
          .map((details) => details.closest("li[data-record-id]")?.dataset.recordId));
        replace(list, items);
        for (const li of items) {
          if (open.has(li.dataset.recordId)) {
            li.querySelector("details.record-history").open = true;
          }
        }
      } else {
        list.append(...items);
      }
      nextUrl = page.next;
      more.hidden = !nextUrl;
      status.textContent = list.children.length === 0 ? "No records yet." : `${list.children.length} record${list.children.length === 1 ? "" : "s"}.`;
    } catch (failure) {
      if (!isQuiet(failure)) {
        error.textContent = failure.userMessage;
        error.hidden = false;
      }
    }
  }

  function reload() {
    if (editing) {
      return; // someone is amending: refreshing would throw their edit away
    }
    const statusFilter = showWithdrawn.checked ? "&status=all" : "";
    load(`/api/patients/${patient.id}/records?limit=20${statusFilter}`, true);
  }

  showWithdrawn.addEventListener("change", reload);
  more.addEventListener("click", () => nextUrl && load(nextUrl, false));
  reload();
  return { reload };
}
