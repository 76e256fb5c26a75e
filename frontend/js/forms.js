// Form building blocks: labelled fields with a hint and an error slot, and showing the API's
// field errors (`errors: [{field, message}]`) next to the fields they name.

import { h, replace, uid } from "/js/dom.js";
import { isQuiet } from "/api.js";

/**
 * A labelled field. `name` is the API's field path (`vitals.pulse_bpm`, `diagnoses[0].code`) so
 * an error for that path finds its input. Returns the wrapper; the control is `wrapper.control`.
 */
export function field({ name, label, type = "text", value, required = false, hint, options, attrs = {}, wide = false }) {
  const id = uid(`f-${name}`);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ");
  const common = {
    id,
    name,
    required,
    "aria-required": required ? "true" : null,
    "aria-describedby": describedBy,
    dataset: { label },
    ...attrs,
  };
  let control;
  if (type === "select") {
    control = h("select", common, (options || []).map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: String(optionValue) === String(value ?? "") }, text)));
  } else if (type === "textarea") {
    control = h("textarea", { rows: 3, ...common, value: value ?? "" });
  } else {
    control = h("input", { type, ...common, value: value ?? "" });
  }
  const wrapper = h("div", { class: ["field", wide && "field-wide"], dataset: { field: name } },
    h("label", { for: id }, label, required ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
  wrapper.control = control;
  return wrapper;
}

/** A checkbox with its label after it. */
export function checkbox({ name, label, checked = false, attrs = {} }) {
  const id = uid(`f-${name}`);
  const control = h("input", { type: "checkbox", id, name, checked, ...attrs });
  const wrapper = h("div", { class: "check" }, control, h("label", { for: id }, label));
  wrapper.control = control;
  return wrapper;
}

/** The alert at the top of a form, for what belongs to no single field. */
export function formAlert() {
  return h("div", { class: "alert", role: "alert", hidden: true, dataset: { formAlert: "" } });
}

function alertOf(form) {
  return form.querySelector("[data-form-alert]");
}

/** Removes every error shown in `form`. */
export function clearErrors(form) {
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const group of form.querySelectorAll(".has-error")) {
    group.classList.remove("has-error");
  }
  const alert = alertOf(form);
  if (alert) {
    alert.replaceChildren();
    alert.hidden = true;
  }
}

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The slot where the error of API field `path` goes: the field's, or a group's (`vitals`). */
function slotFor(form, path) {
  const control = form.elements.namedItem(path);
  if (control && control.nodeType === 1) {
    const wrapper = control.closest(".field");
    return { control, slot: wrapper?.querySelector(".field-error"), label: control.dataset.label || path };
  }
  const group = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
  if (group) {
    return { control: group.querySelector("input, select, textarea"), slot: group.querySelector(".group-error"), label: group.dataset.label || "" };
  }
  return null;
}

/**
 * Shows an API error in `form`: each field error next to its field (and its control marked
 * invalid), the rest in the form's alert; focus goes to the first invalid field, else the alert.
 * `explain(error)` may give a plainer sentence for the alert (the conflict of a booking).
 */
export async function showError(form, error, { explain } = {}) {
  if (isQuiet(error)) {
    return;
  }
  clearErrors(form);
  const alert = alertOf(form);
  const leftovers = [];
  let first = null;
  for (const { field: path, message } of error.errors || []) {
    const target = slotFor(form, path);
    if (target?.slot) {
      target.slot.textContent = target.label ? `${target.label} ${message}.` : `${sentence(message)}.`;
      target.slot.hidden = false;
      target.slot.closest("[data-error-for]")?.classList.add("has-error");
      if (target.control) {
        target.control.setAttribute("aria-invalid", "true");
        first ??= target.control;
      }
    } else {
      leftovers.push(`${path}: ${message}`);
    }
  }
  if (alert) {
    let summary;
    if (explain) {
      summary = await explain(error);
    }
    if (!summary) {
      summary = error.errors?.length
        ? "Some fields need correcting; each is marked below."
        : error.userMessage || String(error.message || error);
    }
    replace(alert,
      h("p", {}, summary),
      leftovers.length ? h("ul", {}, leftovers.map((text) => h("li", {}, text))) : null,
    );
    alert.hidden = false;
  }
  (first || alert)?.focus?.({ preventScroll: false });
  if (!first && alert) {
    alert.setAttribute("tabindex", "-1");
    alert.focus();
  }
}

/** Disables `button` (and marks the form busy) while `work` runs. */
export async function busy(form, button, work) {
  const label = button.textContent;
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = label;
    form.removeAttribute("aria-busy");
  }
}

/** A form value as the API wants it: trimmed, empty → null. */
export function text(form, name) {
  const value = form.elements.namedItem(name)?.value ?? "";
  const trimmed = value.trim();
  return trimmed === "" ? null : trimmed;
}

/** A numeric form value, or null when empty (a non-number is passed on for the API to refuse). */
export function number(form, name) {
  const raw = form.elements.namedItem(name)?.value ?? "";
  if (raw.trim() === "") {
    return null;
  }
  const value = Number(raw);
  return Number.isFinite(value) ? value : raw;
}
