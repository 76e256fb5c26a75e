// Registering a patient or editing one: the API's field errors appear next to the fields.

import { api, isQuiet } from "/api.js";
import { h, link, replace } from "/js/dom.js";
import { busy, clearErrors, field, formAlert, showError, text } from "/js/forms.js";
import { isoDay } from "/js/format.js";
import { remember } from "/js/directory.js";
import { navigate } from "/js/router.js";
import { announce } from "/js/notify.js";
import { can } from "/js/roles.js";

const SEXES = [["", "Choose…"], ["female", "Female"], ["male", "Male"], ["other", "Other"], ["unknown", "Unknown"]];

export async function patientFormView({ outlet, params }) {
  const editing = Boolean(params.id);
  const heading = h("h1", {}, editing ? "Edit patient" : "New patient");
  if (!can.editPatients()) {
    replace(outlet, heading, h("p", { class: "alert", role: "alert" }, "Only administrators and the front desk register and edit patients."), link("/patients", "Back to patients"));
    return;
  }
  replace(outlet, heading, h("p", { class: "status", role: "status" }, editing ? "Loading…" : ""));

  let patient = {};
  if (editing) {
    try {
      patient = await api.get(`/api/patients/${encodeURIComponent(params.id)}`);
    } catch (error) {
      if (!isQuiet(error)) {
        replace(outlet, heading, h("p", { class: "alert", role: "alert" }, error.userMessage), link("/patients", "Back to patients"));
      }
      return;
    }
    heading.textContent = `Edit ${patient.name}`;
  }

  const save = h("button", { type: "submit" }, editing ? "Save changes" : "Register patient");
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "patient-form-title" },
    h("h2", { id: "patient-form-title", class: "visually-hidden" }, "Patient details"),
    formAlert(),
    h("div", { class: "grid" },
      field({ name: "name", label: "Full name", value: patient.name, required: true, attrs: { autocomplete: "off", maxlength: 200 } }),
      field({ name: "birth_date", label: "Birth date", type: "date", value: patient.birth_date, required: true, attrs: { max: isoDay(new Date()), min: "1880-01-01" } }),
      field({ name: "sex", label: "Sex", type: "select", options: SEXES, value: patient.sex, required: true }),
      field({ name: "phone", label: "Phone", type: "tel", value: patient.phone, attrs: { autocomplete: "off" } }),
      field({ name: "email", label: "E-mail", type: "email", value: patient.email, attrs: { autocomplete: "off" } }),
      field({ name: "address", label: "Address", type: "textarea", value: patient.address, wide: true }),
    ),
    h("div", { class: "actions" },
      save,
      link(editing ? `/patients/${patient.id}` : "/patients", "Cancel", { class: "button secondary" })),
  );
  replace(outlet, heading, form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      name: text(form, "name") ?? "",
      birth_date: text(form, "birth_date") ?? "",
      sex: text(form, "sex") ?? "",
      phone: text(form, "phone"),
      email: text(form, "email"),
      address: text(form, "address"),
    };
    await busy(form, save, async () => {
      try {
        const saved = editing
          ? await api.put(`/api/patients/${patient.id}`, body, { ifMatch: patient.version })
          : await api.post("/api/patients", body);
        remember("patient", saved);
        announce(editing ? `Saved ${saved.name}.` : `Registered ${saved.name} (MRN ${saved.mrn}).`);
        navigate(`/patients/${saved.id}`);
      } catch (error) {
        await showError(form, error);
      }
    });
  });
}
