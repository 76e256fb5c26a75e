// Times sent to the API carry the browser's offset, and calendar days never shift with time
// zones (frontend/js/format.js). Runs in Node, in the time zone given by TZ.

import { test } from "node:test";
import assert from "node:assert/strict";
import { addDays, formatWait, isoDay, localDateTime, parseDay, startOfWeek, withOffset } from "../../frontend/js/format.js";

test("a local wall-clock time is sent with the local offset and means the same instant", () => {
  const nine = localDateTime("2026-12-01", "09:00");
  const text = withOffset(nine);
  assert.match(text, /^2026-12-01T09:00:00[+-]\d{2}:\d{2}$/);
  assert.equal(new Date(text).getTime(), nine.getTime());
  const summer = localDateTime("2026-07-01", "09:00");
  assert.equal(new Date(withOffset(summer)).getTime(), summer.getTime());
});

test("days are calendar days: parse, add across month ends, the Monday of a week", () => {
  assert.equal(isoDay(parseDay("2026-12-31")), "2026-12-31");
  assert.equal(isoDay(addDays(parseDay("2026-12-31"), 1)), "2027-01-01");
  assert.equal(isoDay(addDays(parseDay("2026-03-28"), 2)), "2026-03-30"); // across a DST change in Europe
  assert.equal(isoDay(startOfWeek(parseDay("2026-11-26"))), "2026-11-23"); // Thursday → Monday
  assert.equal(isoDay(startOfWeek(parseDay("2026-11-29"))), "2026-11-23"); // Sunday → Monday
  assert.equal(localDateTime("2026-12-01", ""), null);
});

test("a wait is said in seconds under a minute, else in whole minutes rounded up", () => {
  assert.equal(formatWait(1), "1 second");
  assert.equal(formatWait(45), "45 seconds");
  assert.equal(formatWait(60), "1 minute");
  assert.equal(formatWait(61), "2 minutes");
  assert.equal(formatWait(900), "15 minutes");
});
