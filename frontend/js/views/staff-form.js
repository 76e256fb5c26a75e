// Adding or editing a staff member (administrators): role, specialization, contact, and the login
// (username, and a password that is only ever sent, never shown).

import { api, isQuiet } from "/api.js";
import { h, link, replace } from "/js/dom.js";
import { busy, checkbox, clearErrors, field, formAlert, showError, text } from "/js/forms.js";
import { can } from "/js/roles.js";
import { remember } from "/js/directory.js";
import { navigate } from "/js/router.js";
import { announce } from "/js/notify.js";

const ROLES = [["", "Choose…"], ["doctor", "Doctor"], ["nurse", "Nurse"], ["receptionist", "Receptionist"], ["admin", "Administrator"]];

export async function staffFormView({ outlet, params }) {
  const editing = Boolean(params.id);
  const heading = h("h1", {}, editing ? "Edit staff member" : "New staff member");
  if (!can.manageStaff()) {
    replace(outlet, heading, h("p", { class: "alert", role: "alert" }, "Only administrators manage staff."), link("/staff", "Back to staff"));
    return;
  }
  let person = {};
  if (editing) {
    replace(outlet, heading, h("p", { class: "status", role: "status" }, "Loading…"));
    try {
      person = await api.get(`/api/staff/${encodeURIComponent(params.id)}`);
    } catch (error) {
      if (!isQuiet(error)) {
        replace(outlet, heading, h("p", { class: "alert", role: "alert" }, error.userMessage), link("/staff", "Back to staff"));
      }
      return;
    }
    heading.textContent = `Edit ${person.name}`;
  }

  const save = h("button", { type: "submit" }, editing ? "Save changes" : "Add staff member");
  const removeLogin = editing && person.username ? checkbox({ name: "remove_login", label: "Remove this person's login" }) : null;
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Staff member" },
    formAlert(),
    h("div", { class: "grid" },
      field({ name: "name", label: "Full name", value: person.name, required: true, attrs: { autocomplete: "off" } }),
      field({ name: "role", label: "Role", type: "select", options: ROLES, value: person.role, required: true }),
      field({ name: "specialization", label: "Specialization", value: person.specialization, hint: "For doctors, such as Cardiology", attrs: { autocomplete: "off" } }),
      field({ name: "phone", label: "Phone", type: "tel", value: person.phone, attrs: { autocomplete: "off" } }),
      field({ name: "email", label: "E-mail", type: "email", value: person.email, attrs: { autocomplete: "off" } }),
    ),
    h("fieldset", { class: "group" },
      h("legend", {}, "Login"),
      h("div", { class: "grid" },
        field({ name: "username", label: "Username", value: person.username, hint: "3–64 of a–z, 0–9, dot, dash, underscore; leave empty for no login", attrs: { autocomplete: "off", autocapitalize: "none", spellcheck: "false" } }),
        field({ name: "password", label: editing ? "New password" : "Password", type: "password", hint: editing ? "At least 12 characters; leave empty to keep the current one" : "At least 12 characters", attrs: { autocomplete: "new-password" } })),
      removeLogin),
    h("div", { class: "actions" }, save, link("/staff", "Cancel", { class: "button secondary" })),
  );
  replace(outlet, heading, form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      name: text(form, "name") ?? "",
      role: text(form, "role") ?? "",
      specialization: text(form, "specialization"),
      phone: text(form, "phone"),
      email: text(form, "email"),
    };
    const username = text(form, "username");
    const password = form.elements.namedItem("password").value;
    if (removeLogin?.control.checked) {
      body.username = null;
    } else if (username || !editing) {
      if (username) {
        body.username = username;
      }
      if (password) {
        body.password = password;
      }
    } else if (password) {
      body.password = password;
    }
    if (editing && !removeLogin?.control.checked && username && username === person.username && !password) {
      delete body.username; // unchanged login: keep it as it is
    }
    await busy(form, save, async () => {
      try {
        const saved = editing
          ? await api.put(`/api/staff/${person.id}`, body, { ifMatch: person.version })
          : await api.post("/api/staff", body);
        remember("staff", saved);
        announce(editing ? `Saved ${saved.name}.` : `Added ${saved.name}.`);
        navigate("/staff");
      } catch (error) {
        await showError(form, error);
      }
    });
  });
}
