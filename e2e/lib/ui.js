// What a person does over and over: sign in, open a section, wait for a view to settle.

import assert from "node:assert/strict";
import { BASE_URL, TIME_ZONE } from "./browser.js";

/** Signs in through the login page and waits for the dashboard's first view. */
export async function signIn(page, username, password) {
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/dashboard\.html/);
  await page.getByRole("heading", { level: 1 }).waitFor();
}

/** Opens a section from the main navigation and waits for its heading. */
export async function openSection(page, name) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
}

/** The calendar day `days` after today in the browser's time zone, as `YYYY-MM-DD`. */
export function dayFromToday(days) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date()).split("-").map(Number);
  const date = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2] + days));
  return date.toISOString().slice(0, 10);
}

/** RFC 3339 for a wall-clock time on `day` in the browser's time zone (`2026-12-01T11:00:00+01:00`). */
export function zonedTime(day, time) {
  const guess = new Date(`${day}T${time}:00Z`);
  const offsetName = new Intl.DateTimeFormat("en-US", { timeZone: TIME_ZONE, timeZoneName: "longOffset" })
    .formatToParts(guess).find((part) => part.type === "timeZoneName").value; // "GMT+01:00" or "GMT"
  const offset = offsetName === "GMT" ? "+00:00" : offsetName.replace("GMT", "");
  return `${day}T${time}:00${offset}`;
}

/** Every form control on the page without an accessible name (should be none). */
export async function unlabelledControls(page) {
  return page.evaluate(() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
    .filter((control) => !(control.labels?.length > 0 || control.getAttribute("aria-label") || control.getAttribute("aria-labelledby")))
    .map((control) => control.outerHTML.slice(0, 120)));
}

/** Fails when the page reported script errors or CSP violations. */
export function assertNoPageErrors(page, ignore = []) {
  const problems = page.problems.filter((text) =>
    !/Failed to load resource: the server responded with a status of (401|404|409|412|422)/.test(text)
    && !ignore.some((pattern) => pattern.test(text)));
  assert.deepEqual(problems, [], "the page reported errors");
}

/** The horizontal overflow of the page in pixels (0 when nothing sticks out sideways). */
export async function horizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}
