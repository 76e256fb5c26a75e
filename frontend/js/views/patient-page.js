// One patient: demographics, upcoming and past appointments (with their next steps), and the
// records timeline with a form to add to it. Sections refresh when the live feed reports a
// change to this patient, their appointments or their records.

import { api, isQuiet } from "/api.js";
import { h, link, replace } from "/js/dom.js";
import { nameOf, remember } from "/js/directory.js";
import { formatBirthDate, formatDateTime, formatRange, formatSex, formatStatus, isoDay } from "/js/format.js";
import { can } from "/js/roles.js";
import { confirmAction } from "/js/dialogs.js";
import { announce } from "/js/notify.js";
import { navigate } from "/js/router.js";
import { appointmentActions } from "/js/views/appointment-actions.js";
import { recordsTimeline } from "/js/views/records.js";
import { recordForm } from "/js/views/record-form.js";

export async function patientView({ outlet, params, onLive }) {
  const id = params.id;
  const heading = h("h1", {}, "Patient");
  replace(outlet, heading, h("p", { class: "status", role: "status" }, "Loading…"));

  let patient;
  try {
    patient = await api.get(`/api/patients/${encodeURIComponent(id)}`);
  } catch (error) {
    if (!isQuiet(error)) {
      heading.textContent = error.status === 404 ? "Patient not found" : "Patient";
      replace(outlet, heading,
        h("p", { class: "alert", role: "alert" }, error.status === 404 ? "This patient does not exist or was removed from the register." : error.userMessage),
        link("/patients", "Back to patients"));
    }
    return;
  }
  remember("patient", patient);

  const pageError = h("p", { class: "alert", role: "alert", hidden: true });
  const demographics = h("section", { class: "panel", "aria-labelledby": "demographics-title" });
  const appointmentsSection = h("section", { class: "panel", "aria-labelledby": "appointments-title" });
  const recordsSection = h("section", { class: "panel", "aria-labelledby": "records-title" });
  const recordsBody = h("div");
  const composer = h("div", { class: "composer" });

  heading.textContent = patient.name;
  // Records only for those who may read them: the front desk and administrators see the
  // patient without the clinical part, rather than an error.
  const readsRecords = can.readRecords();
  const actions = h("div", { class: "page-actions" },
    can.bookAppointments() ? link(`/appointments?patient=${patient.id}`, "Book appointment", { class: "button" }) : null,
    can.editPatients() ? link(`/patients/${patient.id}/edit`, "Edit details", { class: "button secondary" }) : null,
    can.viewAudit() ? link(`/audit?patient_id=${patient.id}`, "Access log", { class: "button secondary" }) : null,
    can.deletePatients() ? h("button", { type: "button", class: "secondary danger-text", onclick: remove }, "Remove patient") : null,
  );
  replace(outlet,
    h("p", { class: "breadcrumb" }, link("/patients", "Patients"), " › ", patient.name),
    h("div", { class: "page-head" }, heading, actions),
    pageError,
    h("div", { class: ["patient-columns", !readsRecords && "single"] },
      h("div", {}, demographics, appointmentsSection),
      readsRecords ? recordsSection : null));

  function showDemographics() {
    heading.textContent = patient.name;
    const rows = [
      ["MRN", h("span", { class: "mono" }, patient.mrn)],
      ["Birth date", formatBirthDate(patient.birth_date)],
      ["Sex", formatSex(patient.sex)],
      ["Phone", patient.phone || "—"],
      ["E-mail", patient.email || "—"],
      ["Address", patient.address || "—"],
    ];
    replace(demographics,
      h("h2", { id: "demographics-title" }, "Demographics"),
      h("dl", { class: "facts" }, rows.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value)))));
  }

  // Appointments: upcoming (not yet ended) and past.
  let appointments = [];
  const upcomingBody = h("tbody");
  const pastBody = h("tbody");
  const appointmentError = h("p", { class: "alert", role: "alert", hidden: true });
  const upcomingEmpty = h("p", { class: "muted" }, "No upcoming appointments.");
  const pastEmpty = h("p", { class: "muted" }, "No past appointments.");
  const tableOf = (caption, body) => h("div", { class: "table-scroll" }, h("table", { class: "data compact" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, ["When", "Doctor", "Reason", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    body));
  replace(appointmentsSection,
    h("h2", { id: "appointments-title" }, "Appointments"),
    appointmentError,
    h("h3", {}, "Upcoming"), upcomingEmpty, tableOf("Upcoming appointments", upcomingBody),
    h("h3", {}, "Past"), pastEmpty, tableOf("Past appointments", pastBody));

  async function appointmentRow(appointment) {
    const doctor = await nameOf("staff", appointment.doctor_id);
    const start = new Date(appointment.start);
    return h("tr", { class: `status-${appointment.status}` },
      h("td", {}, link(`/appointments?doctor=${appointment.doctor_id}&date=${isoDay(start)}&view=day`,
        `${formatDateTime(appointment.start)} (${formatRange(appointment.start, appointment.end)})`)),
      h("td", {}, doctor),
      h("td", {}, appointment.reason || ""),
      h("td", {}, h("span", { class: `badge status-${appointment.status}` }, formatStatus(appointment.status))),
      h("td", {}, appointmentActions(appointment, {
        who: `${patient.name} with ${doctor}`,
        onChanged: loadAppointments,
        onError: (text) => { appointmentError.textContent = text; appointmentError.hidden = false; },
      })));
  }

  async function loadAppointments() {
    appointmentError.hidden = true;
    try {
      appointments = await api.all(`/api/patients/${patient.id}/appointments?limit=200`, { maxPages: 5 });
      const now = Date.now();
      const upcoming = appointments.filter((a) => new Date(a.end).getTime() >= now);
      const past = appointments.filter((a) => new Date(a.end).getTime() < now).reverse();
      replace(upcomingBody, await Promise.all(upcoming.map(appointmentRow)));
      replace(pastBody, await Promise.all(past.map(appointmentRow)));
      upcomingEmpty.hidden = upcoming.length > 0;
      upcomingBody.closest(".table-scroll").hidden = upcoming.length === 0;
      pastEmpty.hidden = past.length > 0;
      pastBody.closest(".table-scroll").hidden = past.length === 0;
    } catch (error) {
      if (!isQuiet(error)) {
        appointmentError.textContent = error.userMessage;
        appointmentError.hidden = false;
      }
    }
  }

  // Records: the composer (for those who write records) and the timeline.
  const kinds = readsRecords ? can.recordKinds() : [];
  const addButton = kinds.length
    ? h("button", { type: "button", onclick: openComposer }, kinds.length === 1 && kinds[0] === "vitals" ? "Record vital signs" : "Add to the record")
    : null;
  replace(recordsSection,
    h("div", { class: "section-head" }, h("h2", { id: "records-title" }, "Medical records"), addButton),
    composer, recordsBody);
  const timeline = readsRecords
    ? recordsTimeline({ patient, container: recordsBody, appointments: async () => appointments })
    : null;

  function openComposer() {
    addButton.hidden = true;
    const form = recordForm({
      patient,
      appointments,
      onSaved: () => { closeComposer(); timeline.reload(); },
      onCancel: closeComposer,
    });
    replace(composer, form);
    form.querySelector("select:not([disabled]), input")?.focus();
  }
  function closeComposer() {
    composer.replaceChildren();
    addButton.hidden = false;
    addButton.focus();
  }

  async function remove() {
    const answer = await confirmAction({
      title: `Remove ${patient.name} from the register?`,
      message: "Their medical records are kept; their future appointments are cancelled.",
      confirmLabel: "Remove patient", danger: true,
    });
    if (!answer.confirmed) {
      return;
    }
    try {
      await api.del(`/api/patients/${patient.id}`);
      announce(`${patient.name} was removed from the register.`);
      navigate("/patients");
    } catch (error) {
      if (!isQuiet(error)) {
        pageError.textContent = error.userMessage;
        pageError.hidden = false;
      }
    }
  }

  async function reloadPatient() {
    try {
      patient = await api.get(`/api/patients/${patient.id}`);
      showDemographics();
    } catch (error) {
      if (!isQuiet(error) && error.status === 404) {
        pageError.textContent = "This patient has just been removed from the register.";
        pageError.hidden = false;
      }
    }
  }

  showDemographics();
  loadAppointments();

  onLive((e) => e.aggregate === "patient" && e.aggregate_id === patient.id, reloadPatient);
  onLive((e) => e.aggregate === "appointment" && e.data?.patient_id === patient.id, loadAppointments);
  if (timeline) {
    onLive((e) => e.aggregate === "record" && e.data?.patient_id === patient.id, () => timeline.reload());
  }
  onLive((e) => e.aggregate === "staff", loadAppointments, 500);
}
