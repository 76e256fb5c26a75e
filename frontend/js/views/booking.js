// Booking an appointment from a free slot: a modal form with a patient picker (search as you
// type), the start (prefilled from the slot), duration, reason and notes. A 409 from the API is
// explained plainly: who already has which appointment, when.

import { api, isQuiet, queryString } from "/api.js";
import { debounce, h } from "/js/dom.js";
import { busy, clearErrors, field, formAlert, showError, text } from "/js/forms.js";
import { openDialog } from "/js/dialogs.js";
import { nameOf, remember } from "/js/directory.js";
import { formatLongDay, formatRange, formatTime, isoDay, isoTime, withOffset } from "/js/format.js";
import { announce } from "/js/notify.js";

const DURATIONS = [5, 10, 15, 20, 30, 45, 60, 90, 120].map((m) => [String(m), `${m} minutes`]);

/**
 * A sentence for a booking conflict, from the problem's detail
 * (`the doctor already has appointment <id> from <start> to <end>`), with names and local times.
 */
export async function explainConflict(error, { doctor }) {
  if (error.status !== 409) {
    return null;
  }
  const match = /(doctor|patient) already has appointment ([0-9a-f-]{36}) from (\S+) to (\S+)/i.exec(error.detail || "");
  if (!match) {
    return `Not booked: ${error.userMessage}`;
  }
  const [, who, id, from, to] = match;
  let other = null;
  try {
    other = await api.get(`/api/appointments/${id}`);
  } catch {
    // The sentence works without it.
  }
  const when = `from ${formatTime(from)} to ${formatTime(to)} on ${formatLongDay(from)}`;
  if (who.toLowerCase() === "doctor") {
    const patient = other ? await nameOf("patient", other.patient_id) : "";
    return `Not booked: ${doctor.name} already has an appointment ${when}${patient ? ` (with ${patient})` : ""}. Choose another time.`;
  }
  const [patient, otherDoctor] = other
    ? await Promise.all([nameOf("patient", other.patient_id), nameOf("staff", other.doctor_id)])
    : ["The patient", ""];
  return `Not booked: ${patient} already has an appointment ${when}${otherDoctor ? ` (with ${otherDoctor})` : ""}. Choose another time.`;
}

/** Opens the booking dialog. Resolves to the new appointment, or null when closed without one. */
export function openBooking({ doctor, start, patient = null }) {
  const search = field({ name: "patient_search", label: "Find patient", type: "search", hint: "Type a name or an MRN, then choose below", attrs: { autocomplete: "off" } });
  const picker = field({
    name: "patient_id", label: "Patient", type: "select", required: true,
    options: patient ? [[patient.id, patient.name]] : [],
    value: patient?.id,
    attrs: { size: 4 },
  });
  const pickerStatus = h("p", { class: "hint", role: "status" }, patient ? "" : "Search to list patients.");
  const startField = field({
    name: "start", label: "Date and time", type: "datetime-local", required: true,
    value: `${isoDay(start)}T${isoTime(start)}`, attrs: { step: 300 },
  });
  const durationField = field({ name: "duration_minutes", label: "Duration", type: "select", options: DURATIONS, value: "30" });
  const save = h("button", { type: "submit" }, "Book appointment");
  const form = h("form", { class: "form booking-form", novalidate: true },
    h("p", { class: "lead" }, `With ${doctor.name}${doctor.specialization ? ` (${doctor.specialization})` : ""}`),
    formAlert(),
    search, pickerStatus, picker,
    h("div", { class: "grid" }, startField, durationField),
    field({ name: "reason", label: "Reason", attrs: { autocomplete: "off" } }),
    field({ name: "notes", label: "Notes", type: "textarea", attrs: { rows: 2 } }),
    h("div", { class: "actions" },
      save,
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close("cancel") }, "Cancel")),
  );
  const dialog = openDialog({ title: "Book an appointment", content: form, className: "booking-dialog" });

  let controller = null;
  const findPatients = debounce(async () => {
    const q = search.control.value.trim();
    controller?.abort();
    if (!q) {
      return;
    }
    controller = new AbortController();
    try {
      const { items } = await api.page(`/api/patients${queryString({ q, limit: 20 })}`, { signal: controller.signal });
      items.forEach((p) => remember("patient", p));
      const chosen = picker.control.value;
      picker.control.replaceChildren(...items.map((p) =>
        h("option", { value: p.id, selected: p.id === chosen }, `${p.name} · MRN ${p.mrn} · born ${p.birth_date}`)));
      if (items.length === 1) {
        picker.control.value = items[0].id;
      }
      pickerStatus.textContent = items.length === 0 ? `No patients match “${q}”.` : `${items.length} patient${items.length === 1 ? "" : "s"} found${items.length === 1 ? " and chosen" : ": choose one below"}.`;
    } catch (error) {
      if (!isQuiet(error)) {
        pickerStatus.textContent = error.userMessage;
      }
    }
  }, 250);
  search.control.addEventListener("input", findPatients);
  (patient ? form.elements.namedItem("reason") : search.control).focus();

  let booked = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const [day, time] = (form.elements.namedItem("start").value || "").split("T");
    const when = day && time ? new Date(`${day}T${time}`) : null;
    const body = {
      patient_id: text(form, "patient_id") ?? "",
      doctor_id: doctor.id,
      start: when && !Number.isNaN(when.getTime()) ? withOffset(when) : "",
      duration_minutes: Number(form.elements.namedItem("duration_minutes").value),
      reason: text(form, "reason"),
      notes: text(form, "notes"),
    };
    await busy(form, save, async () => {
      try {
        booked = await api.post("/api/appointments", body);
        const who = await nameOf("patient", booked.patient_id);
        announce(`Booked ${who} with ${doctor.name}, ${formatLongDay(booked.start)} ${formatRange(booked.start, booked.end)}.`);
        dialog.close("booked");
      } catch (error) {
        await showError(form, error, { explain: (e) => explainConflict(e, { doctor }) });
      }
    });
  });

  return dialog.closed.then(() => {
    controller?.abort();
    return booked;
  });
}
