// The live activity panel: one line per event as it happens, newest first, with links to what
// changed. Names come from the event's own state or the directory.

import { h, link } from "/js/dom.js";
import { nameOf } from "/js/directory.js";
import { formatDateTime, formatKind, formatRole, formatStatus, isoDay, formatTime } from "/js/format.js";

const MAX_ITEMS = 50;

const STATUS_TEXT = {
  idle: "Connecting…",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  unavailable: "Unavailable",
  stopped: "Stopped",
};

/** What happened, as a sentence with a link: `[text before, link, text after]`. */
async function describe(event) {
  const data = event.data || {};
  const verb = event.type.split(".").pop();
  switch (event.aggregate) {
    case "patient": {
      const target = verb === "deleted" ? data.name : link(`/patients/${event.aggregate_id}`, data.name);
      const what = { created: "Patient registered: ", updated: "Patient details updated: ", deleted: "Patient removed: " }[verb] || `Patient ${verb}: `;
      return [what, target];
    }
    case "staff": {
      const what = { created: "Staff member added: ", updated: "Staff member updated: ", password_changed: "Password changed: ", deleted: "Staff member removed: " }[verb] || `Staff ${verb}: `;
      return [what, link("/staff", data.name), data.role ? ` (${formatRole(data.role)})` : ""];
    }
    case "appointment": {
      const [patient, doctor] = await Promise.all([nameOf("patient", data.patient_id), nameOf("staff", data.doctor_id)]);
      const when = data.start ? `${formatDateTime(data.start)}` : "";
      const target = link(`/appointments?doctor=${encodeURIComponent(data.doctor_id)}&date=${isoDay(new Date(data.start))}&view=day`, `${patient} with ${doctor}`);
      if (verb === "created") {
        return ["Appointment booked: ", target, `, ${when}`];
      }
      if (verb === "cancelled" || data.status === "cancelled") {
        return ["Appointment cancelled: ", target, `, ${when}`, data.cancellation_reason ? ` (${data.cancellation_reason})` : ""];
      }
      return [`Appointment ${formatStatus(data.status).toLowerCase()}: `, target, `, ${when}`];
    }
    case "record": {
      const patient = await nameOf("patient", data.patient_id);
      const kind = formatKind(data.kind);
      const what = { created: `${kind} recorded for `, amended: `${kind} amended for `, deleted: `${kind} marked entered in error for ` }[verb] || `${kind} ${verb} for `;
      return [what, link(`/patients/${data.patient_id}`, patient), data.title ? `: ${data.title}` : ""];
    }
    default:
      return [event.type];
  }
}

async function actorName(actor) {
  if (!actor || actor.id === "system") {
    return "the system";
  }
  const name = await nameOf("staff", actor.id);
  return actor.role ? `${name} (${formatRole(actor.role)})` : name;
}

/** Wires the panel in dashboard.html to `feed`. */
export function mountFeedPanel(feed) {
  const list = document.getElementById("feed-list");
  const empty = document.getElementById("feed-empty");
  const status = document.getElementById("feed-status");

  feed.onStatus((state, detail) => {
    status.dataset.status = state;
    status.textContent = STATUS_TEXT[state] || state;
    status.title = detail || "";
  });

  // One event at a time, so that lines keep the order the events came in.
  let queue = Promise.resolve();
  feed.subscribe((event) => {
    if (!event.aggregate) {
      return;
    }
    queue = queue.then(async () => {
      let parts;
      let by;
      try {
        [parts, by] = await Promise.all([describe(event), actorName(event.actor)]);
      } catch {
        parts = [event.type];
        by = event.actor?.role || "";
      }
      const occurred = event.occurred_at ? new Date(event.occurred_at) : new Date();
      const item = h("li", { class: "feed-item", dataset: { type: event.type, aggregate: event.aggregate } },
        h("p", { class: "feed-text" }, parts),
        h("p", { class: "feed-meta" },
          h("time", { datetime: occurred.toISOString() }, formatTime(occurred)),
          ` · by ${by}`),
      );
      list.prepend(item);
      empty.hidden = true;
      while (list.children.length > MAX_ITEMS) {
        list.lastElementChild.remove();
      }
    });
  });
}
