// Writing a medical record (or amending one): kind, title, notes, ICD-10 diagnoses and vital
// signs. Input names are the API's field paths, so its errors land next to the right input.

import { api } from "/api.js";
import { h, uid } from "/js/dom.js";
import { busy, checkbox, clearErrors, field, formAlert, number, showError, text } from "/js/forms.js";
import { formatDateTime, formatKind, formatStatus, VITALS } from "/js/format.js";
import { can } from "/js/roles.js";
import { announce } from "/js/notify.js";

/**
 * A record form for `patient`. With `record`, it amends that record (a new version; the old one
 * stays in the history). `appointments` are offered as the visit it belongs to.
 * `onSaved(record)` and `onCancel()` are called when done.
 */
export function recordForm({ patient, record = null, appointments = [], onSaved, onCancel }) {
  const amending = Boolean(record);
  const kinds = amending ? [record.kind] : can.recordKinds();
  const titleId = uid("record-form-title");
  const save = h("button", { type: "submit" }, amending ? "Save amendment" : "Save record");

  const kindField = field({
    name: "kind", label: "Kind", type: "select", required: true,
    options: kinds.map((kind) => [kind, formatKind(kind)]),
    value: record?.kind || kinds[0],
    attrs: { disabled: amending || kinds.length === 1 },
  });
  const visits = appointments.filter((a) => a.status !== "cancelled");
  const appointmentField = field({
    name: "appointment_id", label: "Visit", type: "select",
    options: [["", "Not linked to a visit"], ...visits.map((a) => [a.id, `${formatDateTime(a.start)} · ${formatStatus(a.status)}${a.reason ? ` · ${a.reason}` : ""}`])],
    value: record?.appointment_id || "",
  });

  // Diagnoses: rows of code + description, renumbered so names match `diagnoses[i].…`.
  const diagnosisRows = h("div", { class: "diagnosis-rows" });
  const diagnoses = h("fieldset", { class: "group", dataset: { errorFor: "diagnoses", label: "" } },
    h("legend", {}, "Diagnoses (ICD-10)"),
    h("p", { class: "group-error field-error", hidden: true }),
    diagnosisRows,
    h("button", { type: "button", class: "small secondary", onclick: () => { addDiagnosis(); diagnosisRows.lastElementChild.querySelector("input").focus(); } }, "Add a diagnosis"),
  );
  function renumber() {
    [...diagnosisRows.children].forEach((row, i) => {
      row.querySelector("[data-part=code]").name = `diagnoses[${i}].code`;
      row.querySelector("[data-part=description]").name = `diagnoses[${i}].description`;
      row.querySelector(".row-title").textContent = `Diagnosis ${i + 1}`;
    });
  }
  function addDiagnosis(diagnosis = {}) {
    const i = diagnosisRows.children.length;
    const code = field({ name: `diagnoses[${i}].code`, label: "ICD-10 code", value: diagnosis.code, hint: "Such as J30.2 or E11.9", attrs: { autocomplete: "off", autocapitalize: "characters", spellcheck: "false", size: 8 } });
    code.control.dataset.part = "code";
    const description = field({ name: `diagnoses[${i}].description`, label: "Description", value: diagnosis.description, attrs: { autocomplete: "off" } });
    description.control.dataset.part = "description";
    const row = h("div", { class: "diagnosis-row" },
      h("p", { class: "row-title" }, `Diagnosis ${i + 1}`),
      code, description,
      h("button", {
        type: "button", class: "small secondary",
        onclick: () => { row.remove(); renumber(); },
      }, "Remove"));
    code.control.addEventListener("blur", () => { code.control.value = code.control.value.trim().toUpperCase(); });
    diagnosisRows.append(row);
    renumber();
  }
  (record?.diagnoses?.length ? record.diagnoses : [{}]).forEach(addDiagnosis);

  const vitals = h("fieldset", { class: "group", dataset: { errorFor: "vitals", label: "" } },
    h("legend", {}, "Vital signs"),
    h("p", { class: "group-error field-error", hidden: true }),
    h("div", { class: "grid vitals-grid" }, VITALS.map(([name, label, unit, step, min, max]) =>
      field({
        name: `vitals.${name}`, label: `${label} (${unit})`, type: "number",
        value: record?.vitals?.[name] ?? "", attrs: { step, min, max, inputmode: "decimal" },
      }))),
  );
  const includeVitals = checkbox({ name: "include_vitals", label: "Add vital signs to this record", checked: Boolean(record?.vitals && record.kind !== "vitals") });

  const defaultTitle = (kind) => (kind === "vitals" ? "Vital signs" : "");
  const titleField = field({ name: "title", label: "Title", value: record?.title ?? defaultTitle(kindField.control.value), required: true, attrs: { autocomplete: "off", maxlength: 200 } });
  const bodyField = field({ name: "body", label: "Notes", type: "textarea", value: record?.body, wide: true, attrs: { rows: 4 } });

  const form = h("form", { class: "form record-form", novalidate: true, "aria-labelledby": titleId },
    h("h3", { id: titleId }, amending ? `Amend “${record.title}”` : `New record for ${patient.name}`),
    amending ? h("p", { class: "hint" }, "An amendment becomes a new version; the current version stays readable in the history.") : null,
    formAlert(),
    h("div", { class: "grid" }, kindField, appointmentField, titleField),
    bodyField,
    diagnoses,
    includeVitals,
    vitals,
    h("div", { class: "actions" }, save, h("button", { type: "button", class: "secondary", onclick: () => onCancel?.() }, "Cancel")),
  );

  function layout() {
    const kind = kindField.control.value;
    diagnoses.hidden = kind !== "diagnosis";
    includeVitals.hidden = kind === "vitals";
    vitals.hidden = kind !== "vitals" && !includeVitals.control.checked;
  }
  kindField.control.addEventListener("change", () => {
    if (!titleField.control.value || titleField.control.value === "Vital signs") {
      titleField.control.value = defaultTitle(kindField.control.value);
    }
    layout();
  });
  includeVitals.control.addEventListener("change", layout);
  layout();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const kind = kindField.control.value;
    const body = {
      patient_id: patient.id,
      kind,
      title: text(form, "title") ?? "",
      body: text(form, "body"),
      appointment_id: text(form, "appointment_id"),
      diagnoses: diagnoses.hidden ? [] : [...diagnosisRows.children]
        .map((row, i) => ({ code: (text(form, `diagnoses[${i}].code`) || "").toUpperCase(), description: text(form, `diagnoses[${i}].description`) || "" }))
        .filter((d) => d.code || d.description),
    };
    if (!vitals.hidden) {
      const values = {};
      for (const [name] of VITALS) {
        const value = number(form, `vitals.${name}`);
        if (value !== null) {
          values[name] = value;
        }
      }
      body.vitals = values;
    }
    if (amending) {
      body.recorded_at = record.recorded_at;
    }
    await busy(form, save, async () => {
      try {
        const saved = amending
          ? await api.put(`/api/records/${record.id}`, body, { ifMatch: record.version })
          : await api.post("/api/records", body);
        announce(amending ? `Amended “${saved.title}” (version ${saved.version}).` : `Saved “${saved.title}” to ${patient.name}'s record.`);
        onSaved?.(saved);
      } catch (error) {
        await showError(form, error);
      }
    });
  });

  return form;
}
