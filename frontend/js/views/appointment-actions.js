// The steps of an appointment's life as buttons: check in, fulfil, no-show, cancel. Each is a
// full replacement (PUT) based on the version shown, so a stale screen gets a plain 412 message.

import { api, isQuiet } from "/api.js";
import { h } from "/js/dom.js";
import { confirmAction } from "/js/dialogs.js";
import { announce } from "/js/notify.js";
import { formatDateTime } from "/js/format.js";
import { can } from "/js/roles.js";

/** The changes open to an appointment in `status`: [new status, button label]. */
export function nextSteps(status) {
  switch (status) {
    case "booked":
      return [["checked_in", "Check in"], ["noshow", "No-show"], ["cancelled", "Cancel"]];
    case "checked_in":
      return [["fulfilled", "Fulfil"], ["cancelled", "Cancel"]];
    default:
      return [];
  }
}

/** The full body of a PUT that changes only the status (and the cancellation reason). */
function replacement(appointment, status, reason) {
  const body = {
    patient_id: appointment.patient_id,
    doctor_id: appointment.doctor_id,
    start: appointment.start,
    duration_minutes: appointment.duration_minutes,
    reason: appointment.reason ?? null,
    notes: appointment.notes ?? null,
    status,
  };
  if (status === "cancelled" && reason) {
    body.cancellation_reason = reason;
  }
  return body;
}

const DONE = {
  checked_in: "checked in",
  fulfilled: "marked fulfilled",
  noshow: "marked as a no-show",
  cancelled: "cancelled",
};

/**
 * The buttons for `appointment` (with `who`, a short description for labels and messages, such
 * as the patient's name). `onChanged(updated)` runs after a successful change; `onError(text)`
 * shows a failure.
 */
export function appointmentActions(appointment, { who, onChanged, onError }) {
  const steps = nextSteps(appointment.status);
  if (steps.length === 0 || !can.changeAppointments(appointment.doctor_id)) {
    return null;
  }
  const when = formatDateTime(appointment.start);
  const group = h("div", { class: "row-actions", role: "group", "aria-label": `Actions for ${who}, ${when}` });
  for (const [status, label] of steps) {
    const button = h("button", {
      type: "button",
      class: status === "cancelled" || status === "noshow" ? "small secondary danger-text" : "small",
      "aria-label": `${label}: ${who}, ${when}`,
      dataset: { action: status },
    }, label);
    button.addEventListener("click", async () => {
      let reason = "";
      if (status === "cancelled" || status === "noshow") {
        const answer = await confirmAction({
          title: status === "cancelled" ? "Cancel this appointment?" : "Record a no-show?",
          message: `${who}, ${when}.`,
          confirmLabel: status === "cancelled" ? "Cancel appointment" : "Record no-show",
          danger: true,
          askReason: status === "cancelled",
          reasonLabel: "Reason for cancelling (optional)",
        });
        if (!answer.confirmed) {
          return;
        }
        reason = answer.reason;
      }
      for (const other of group.querySelectorAll("button")) {
        other.disabled = true;
      }
      try {
        const updated = await api.put(`/api/appointments/${appointment.id}`, replacement(appointment, status, reason), {
          ifMatch: appointment.version,
        });
        announce(`Appointment ${DONE[status]}: ${who}, ${when}.`);
        onChanged?.(updated);
      } catch (error) {
        if (!isQuiet(error)) {
          onError?.(error.userMessage || String(error));
        }
        for (const other of group.querySelectorAll("button")) {
          other.disabled = false;
        }
      }
    });
    group.append(button);
  }
  return group;
}
