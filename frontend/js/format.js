// How dates, times, people and codes are shown. Times come from the API in UTC and are shown in
// the browser's time zone; times sent to the API carry the browser's offset.

const locale = undefined; // the browser's

const dateFormat = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric" });
const longDayFormat = new Intl.DateTimeFormat(locale, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
const shortDayFormat = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short" });
const timeFormat = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(locale, {
  day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});

const pad = (n) => String(n).padStart(2, "0");

/** `YYYY-MM-DD` of a Date in local time. */
export function isoDay(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** `HH:MM` of a Date in local time. */
export function isoTime(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Local midnight of a `YYYY-MM-DD` day (today when missing or malformed). */
export function parseDay(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  if (!match) {
    const now = new Date();
    return new Date(now.getFullYear(), now.getMonth(), now.getDate());
  }
  return new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
}

/** A local day plus `days` (DST-safe: calendar arithmetic, not milliseconds). */
export function addDays(date, days) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days, date.getHours(), date.getMinutes());
}

/** The Monday of the week that holds `date`. */
export function startOfWeek(date) {
  const day = (date.getDay() + 6) % 7; // Monday 0 … Sunday 6
  return new Date(date.getFullYear(), date.getMonth(), date.getDate() - day);
}

/** RFC 3339 with the browser's offset: `2026-12-01T09:00:00+01:00`. */
export function withOffset(date) {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  return `${isoDay(date)}T${isoTime(date)}:${pad(date.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** A local Date from a `YYYY-MM-DD` day and an `HH:MM` time, or null. */
export function localDateTime(day, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || "");
  const t = /^(\d{2}):(\d{2})/.exec(time || "");
  if (!d || !t) {
    return null;
  }
  return new Date(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]), Number(t[2]));
}

const asDate = (value) => (value instanceof Date ? value : new Date(value));

export const formatDate = (value) => (value ? dateFormat.format(asDate(value)) : "");
export const formatLongDay = (value) => longDayFormat.format(asDate(value));
export const formatShortDay = (value) => shortDayFormat.format(asDate(value));
export const formatTime = (value) => timeFormat.format(asDate(value));
export const formatDateTime = (value) => (value ? dateTimeFormat.format(asDate(value)) : "");

/** A birth date (`YYYY-MM-DD`, a calendar day: never shifted by time zone) with the age. */
export function formatBirthDate(text) {
  const born = parseDay(text);
  if (!text || Number.isNaN(born.getTime())) {
    return text || "";
  }
  const now = new Date();
  let age = now.getFullYear() - born.getFullYear();
  if (now.getMonth() < born.getMonth() || (now.getMonth() === born.getMonth() && now.getDate() < born.getDate())) {
    age -= 1;
  }
  return `${dateFormat.format(born)} (${age} y)`;
}

/** `09:00–09:30` of an appointment. */
export function formatRange(start, end) {
  return `${formatTime(start)}–${formatTime(end)}`;
}

const SEX = { female: "Female", male: "Male", other: "Other", unknown: "Unknown" };
export const formatSex = (sex) => SEX[sex] || sex || "";

const ROLE = { admin: "Administrator", doctor: "Doctor", nurse: "Nurse", receptionist: "Receptionist", system: "System" };
export const formatRole = (role) => ROLE[role] || role || "";

const STATUS = {
  booked: "Booked",
  checked_in: "Checked in",
  fulfilled: "Fulfilled",
  cancelled: "Cancelled",
  noshow: "No-show",
  active: "Active",
  entered_in_error: "Entered in error",
};
export const formatStatus = (status) => STATUS[status] || status || "";

const KIND = { note: "Note", diagnosis: "Diagnosis", vitals: "Vitals", prescription: "Prescription", allergy: "Allergy" };
export const formatKind = (kind) => KIND[kind] || kind || "";
export const RECORD_KINDS = Object.keys(KIND);

/** The vital signs in display order: [field, label, unit, step, min, max]. */
export const VITALS = [
  ["temperature_c", "Temperature", "°C", "0.1", 25, 45],
  ["pulse_bpm", "Pulse", "bpm", "1", 20, 250],
  ["systolic_mmhg", "Systolic pressure", "mmHg", "1", 50, 260],
  ["diastolic_mmhg", "Diastolic pressure", "mmHg", "1", 20, 160],
  ["respiratory_rate", "Respiratory rate", "/min", "1", 4, 60],
  ["spo2_percent", "SpO₂", "%", "1", 50, 100],
  ["weight_kg", "Weight", "kg", "0.1", 0.2, 500],
  ["height_cm", "Height", "cm", "0.1", 20, 260],
];

/** "45 seconds", "1 minute", "15 minutes": a wait, rounded up (never come back too early). */
export function formatWait(seconds) {
  if (seconds < 60) {
    return `${seconds} second${seconds === 1 ? "" : "s"}`;
  }
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}
