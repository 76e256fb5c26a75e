// Appointments per doctor: a day view (every 30-minute slot, free ones bookable) and a week
// view (seven days, free time merged into ranges). Refreshes when the doctor's appointments
// change anywhere.

import { api, isQuiet } from "/api.js";
import { h, link, replace } from "/js/dom.js";
import { doctors as loadDoctors, nameOf, patient as loadPatient } from "/js/directory.js";
import { addDays, formatLongDay, formatRange, formatShortDay, formatStatus, formatTime, isoDay, parseDay, startOfWeek, withOffset } from "/js/format.js";
import { currentUser } from "/js/session.js";
import { appointmentActions } from "/js/views/appointment-actions.js";
import { openBooking } from "/js/views/booking.js";
import { can } from "/js/roles.js";

const DAY_START_HOUR = 8;
const DAY_END_HOUR = 18;
const SLOT_MINUTES = 30;
const ACTIVE = new Set(["booked", "checked_in"]);

/** The 30-minute slots of a working day that no active appointment overlaps and that are ahead. */
function freeSlots(day, appointments, now) {
  const slots = [];
  const active = appointments.filter((a) => ACTIVE.has(a.status));
  for (let minutes = DAY_START_HOUR * 60; minutes < DAY_END_HOUR * 60; minutes += SLOT_MINUTES) {
    const start = new Date(day.getFullYear(), day.getMonth(), day.getDate(), 0, minutes);
    const end = new Date(start.getTime() + SLOT_MINUTES * 60_000);
    if (start < now) {
      continue;
    }
    const taken = active.some((a) => new Date(a.start) < end && new Date(a.end) > start);
    if (!taken) {
      slots.push({ start, end });
    }
  }
  return slots;
}

/** Adjacent free slots merged into ranges (for the week view). */
function mergeSlots(slots) {
  const ranges = [];
  for (const slot of slots) {
    const last = ranges[ranges.length - 1];
    if (last && last.end.getTime() === slot.start.getTime()) {
      last.end = slot.end;
    } else {
      ranges.push({ ...slot });
    }
  }
  return ranges;
}

export async function scheduleView({ outlet, query, onLive }) {
  const heading = h("h1", {}, "Appointments");
  replace(outlet, heading, h("p", { class: "status", role: "status" }, "Loading…"));

  let doctorList;
  try {
    doctorList = await loadDoctors();
  } catch (error) {
    if (!isQuiet(error)) {
      replace(outlet, heading, h("p", { class: "alert", role: "alert" }, error.userMessage));
    }
    return;
  }
  if (doctorList.length === 0) {
    replace(outlet, heading, h("p", { class: "notice" }, "There are no doctors yet. An administrator adds them under ", link("/staff", "Staff"), "."));
    return;
  }

  const me = currentUser();
  const state = {
    doctorId: [query.doctor, me.role === "doctor" ? me.id : null, doctorList[0].id]
      .find((id) => id && doctorList.some((d) => d.id === id)),
    day: parseDay(query.date),
    view: query.view === "week" ? "week" : "day",
    patientId: query.patient || "",
  };
  let bookingFor = null;
  if (state.patientId) {
    try {
      bookingFor = await loadPatient(state.patientId);
      if (bookingFor?.removed) {
        bookingFor = null;
      }
    } catch {
      bookingFor = null;
    }
  }

  const doctorSelect = h("select", { id: "schedule-doctor", name: "doctor" },
    doctorList.map((d) => h("option", { value: d.id, selected: d.id === state.doctorId }, d.specialization ? `${d.name} · ${d.specialization}` : d.name)));
  const dateInput = h("input", { id: "schedule-date", name: "date", type: "date", value: isoDay(state.day) });
  const viewRadios = ["day", "week"].map((view) => {
    const id = `schedule-view-${view}`;
    return h("span", { class: "segment" },
      h("input", { type: "radio", id, name: "view", value: view, checked: state.view === view }),
      h("label", { for: id }, view === "day" ? "Day" : "Week"));
  });
  const rangeTitle = h("h2", { id: "schedule-range", class: "range-title", "aria-live": "polite" });
  const status = h("p", { class: "status", role: "status" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const board = h("div", { class: "board", "aria-labelledby": "schedule-range" });

  const controls = h("form", { class: "schedule-controls", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "field" }, h("label", { for: "schedule-doctor" }, "Doctor"), doctorSelect),
    h("div", { class: "field" }, h("label", { for: "schedule-date" }, "Date"), dateInput),
    h("fieldset", { class: "segmented" }, h("legend", {}, "View"), h("div", { class: "segments" }, viewRadios)),
    h("div", { class: "stepper", role: "group", "aria-label": "Move through the calendar" },
      h("button", { type: "button", class: "secondary", onclick: () => step(-1) }, "Previous"),
      h("button", { type: "button", class: "secondary", onclick: () => goTo(new Date()) }, "Today"),
      h("button", { type: "button", class: "secondary", onclick: () => step(1) }, "Next")),
  );

  replace(outlet,
    h("div", { class: "page-head" }, heading),
    controls,
    bookingFor ? h("p", { class: "notice booking-banner" },
      `Booking for ${bookingFor.name}: choose a free slot. `,
      h("button", {
        type: "button", class: "small secondary",
        onclick: (event) => {
          bookingFor = null;
          event.target.closest(".booking-banner").remove();
          syncUrl();
          doctorSelect.focus();
        },
      }, "Stop booking for this patient")) : null,
    rangeTitle, status, error, board);

  const doctor = () => doctorList.find((d) => d.id === state.doctorId);

  function syncUrl() {
    const params = new URLSearchParams({ doctor: state.doctorId, date: isoDay(state.day), view: state.view });
    if (bookingFor) {
      params.set("patient", bookingFor.id);
    }
    history.replaceState(null, "", `#/appointments?${params}`);
  }

  function goTo(day) {
    state.day = new Date(day.getFullYear(), day.getMonth(), day.getDate());
    dateInput.value = isoDay(state.day);
    load();
  }
  function step(direction) {
    goTo(addDays(state.day, direction * (state.view === "week" ? 7 : 1)));
  }

  doctorSelect.addEventListener("change", () => {
    state.doctorId = doctorSelect.value;
    load();
  });
  dateInput.addEventListener("change", () => {
    if (dateInput.value) {
      goTo(parseDay(dateInput.value));
    }
  });
  for (const radio of controls.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", () => {
      state.view = radio.value;
      load();
    });
  }

  function range() {
    if (state.view === "week") {
      const from = startOfWeek(state.day);
      return { from, to: addDays(from, 7), days: Array.from({ length: 7 }, (_, i) => addDays(from, i)) };
    }
    return { from: state.day, to: addDays(state.day, 1), days: [state.day] };
  }

  async function book(start) {
    const appointment = await openBooking({ doctor: doctor(), start, patient: bookingFor });
    // Reload either way: a refused booking usually means the day changed meanwhile.
    await load();
    if (appointment) {
      board.querySelector(`[data-appointment-id="${appointment.id}"]`)?.focus();
    }
  }

  async function appointmentItem(appointment, compact) {
    const patientName = await nameOf("patient", appointment.patient_id);
    const actions = compact ? null : appointmentActions(appointment, {
      who: patientName,
      onChanged: load,
      onError: (text) => { error.textContent = text; error.hidden = false; },
    });
    return h("li", {
      class: ["slot", "appointment", `status-${appointment.status}`],
      tabindex: "-1",
      dataset: { appointmentId: appointment.id, start: appointment.start },
    },
      h("span", { class: "slot-time" }, formatRange(appointment.start, appointment.end)),
      h("div", { class: "slot-body" },
        h("p", { class: "slot-title" }, link(`/patients/${appointment.patient_id}`, patientName)),
        appointment.reason && !compact ? h("p", { class: "slot-reason" }, appointment.reason) : null,
        h("span", { class: `badge status-${appointment.status}` }, formatStatus(appointment.status)),
        appointment.cancellation_reason && !compact ? h("p", { class: "muted" }, `Cancelled: ${appointment.cancellation_reason}`) : null),
      actions);
  }

  function freeItem(slot, day, compact) {
    const label = compact ? formatRange(slot.start, slot.end) : formatTime(slot.start);
    return h("li", { class: "slot free", dataset: { start: slot.start.toISOString() } },
      h("span", { class: "slot-time" }, label),
      h("span", { class: "slot-body muted" }, "Free"),
      // Only those who may book with this doctor are offered the button.
      can.changeAppointments(doctor().id) ? h("button", {
        type: "button", class: "small", onclick: () => book(slot.start),
        "aria-label": `Book ${formatTime(slot.start)} on ${formatLongDay(day)} with ${doctor().name}`,
      }, compact ? `Book ${formatTime(slot.start)}` : "Book") : null);
  }

  async function dayColumn(day, appointments, compact, now) {
    const next = addDays(day, 1);
    const mine = appointments.filter((a) => new Date(a.start) >= day && new Date(a.start) < next);
    let free = freeSlots(day, mine, now);
    if (compact) {
      free = mergeSlots(free);
    }
    const entries = [
      ...(await Promise.all(mine.map(async (a) => ({ at: new Date(a.start), node: await appointmentItem(a, compact) })))),
      ...free.map((slot) => ({ at: slot.start, node: freeItem(slot, day, compact) })),
    ].sort((a, b) => a.at - b.at);
    const titleId = `day-${isoDay(day)}`;
    const today = isoDay(day) === isoDay(now);
    return h("section", { class: ["day", today && "today"], "aria-labelledby": titleId, dataset: { day: isoDay(day) } },
      h("h3", { id: titleId }, compact ? link(`/appointments?doctor=${state.doctorId}&date=${isoDay(day)}&view=day`, formatShortDay(day), { "aria-label": `${formatLongDay(day)}: open the day view` }) : formatLongDay(day), today ? h("span", { class: "badge today-badge" }, "Today") : null),
      entries.length
        ? h("ol", { class: "agenda" }, entries.map((e) => e.node))
        : h("p", { class: "muted" }, day < now ? "No appointments." : "No free time left."));
  }

  let controller = null;
  let shown = new Set();
  async function load() {
    syncUrl();
    controller?.abort();
    controller = new AbortController();
    const { from, to, days } = range();
    rangeTitle.textContent = state.view === "week"
      ? `${doctor().name} · week of ${formatShortDay(from)} – ${formatShortDay(addDays(to, -1))}`
      : `${doctor().name} · ${formatLongDay(from)}`;
    status.textContent = "Loading…";
    error.hidden = true;
    try {
      const url = `/api/appointments?doctor_id=${encodeURIComponent(state.doctorId)}&from=${encodeURIComponent(withOffset(from))}&to=${encodeURIComponent(withOffset(to))}&limit=500`;
      const appointments = await api.all(url, { signal: controller.signal });
      const now = new Date();
      const compact = state.view === "week";
      const columns = await Promise.all(days.map((day) => dayColumn(day, appointments, compact, now)));
      board.className = `board view-${state.view}`;
      replace(board, columns);
      shown = new Set(appointments.map((a) => a.id));
      const active = appointments.filter((a) => ACTIVE.has(a.status)).length;
      status.textContent = `${appointments.length} appointment${appointments.length === 1 ? "" : "s"}${active !== appointments.length ? ` (${active} active)` : ""}.`;
    } catch (failure) {
      if (!isQuiet(failure)) {
        status.textContent = "";
        error.textContent = failure.userMessage;
        error.hidden = false;
      }
    }
  }

  onLive((event) => event.aggregate === "appointment"
    && (event.data?.doctor_id === state.doctorId || shown.has(event.aggregate_id)), load);
  onLive((event) => event.aggregate === "patient", load, 500);
  await load();
  return () => controller?.abort();
}

