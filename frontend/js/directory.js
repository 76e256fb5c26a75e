// Names for ids: appointments and records carry patient and staff ids, the screens show names.
// One cached lookup per id, kept current by the live feed (each event carries the full state).

import { api, ApiError } from "/api.js";

const cache = { patient: new Map(), staff: new Map() };
const PATHS = { patient: "/api/patients/", staff: "/api/staff/" };

function lookup(kind, id) {
  if (!id) {
    return Promise.resolve(null);
  }
  const known = cache[kind].get(id);
  if (known) {
    return known;
  }
  const pending = api.get(PATHS[kind] + encodeURIComponent(id)).catch((error) => {
    if (error instanceof ApiError && error.status === 404) {
      return { id, name: kind === "patient" ? "(removed patient)" : "(former staff member)", removed: true };
    }
    cache[kind].delete(id);
    throw error;
  });
  cache[kind].set(id, pending);
  return pending;
}

/** The patient with `id` (a placeholder with `removed` once deleted). */
export const patient = (id) => lookup("patient", id);
/** The staff member with `id`. */
export const staff = (id) => lookup("staff", id);

/** A name for a patient or staff id, never failing (falls back to a short id). */
export async function nameOf(kind, id) {
  try {
    const person = await lookup(kind, id);
    return person?.name || "";
  } catch {
    return id ? `${id.slice(0, 8)}…` : "";
  }
}

/** Keeps the cache current from a live event (`patient.updated` carries the whole patient). */
export function learn(event) {
  if (!cache[event.aggregate]) {
    return;
  }
  if (event.type.endsWith(".deleted")) {
    cache[event.aggregate].delete(event.aggregate_id);
    doctorsCache = event.aggregate === "staff" ? null : doctorsCache;
    return;
  }
  if (event.data && event.data.id) {
    cache[event.aggregate].set(event.aggregate_id, Promise.resolve(event.data));
  }
  if (event.aggregate === "staff") {
    doctorsCache = null;
  }
}

/** Remembers a patient or staff member the screen just read or wrote. */
export function remember(kind, item) {
  if (item?.id && cache[kind]) {
    cache[kind].set(item.id, Promise.resolve(item));
  }
}

let doctorsCache = null;

/** Every doctor, by name (the staff list has no role filter, so it is read whole). */
export function doctors() {
  if (!doctorsCache) {
    doctorsCache = api.all("/api/staff?limit=500").then((people) => {
      people.forEach((person) => remember("staff", person));
      return people
        .filter((person) => person.role === "doctor")
        .sort((a, b) => a.name.localeCompare(b.name));
    }).catch((error) => {
      doctorsCache = null;
      throw error;
    });
  }
  return doctorsCache;
}
