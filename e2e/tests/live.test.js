// Live activity: changes made by another client through the API appear in the feed as they
// happen, and the open views (a search result, a doctor's day, a patient page) refresh by
// themselves. The feed is read with fetch(), the token in a header, never in the URL.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, launch, openPage, screenshot } from "../lib/browser.js";
import { client, createStaff, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, dayFromToday, signIn, zonedTime } from "../lib/ui.js";

describe("live activity", () => {
  let browser;
  let admin;
  let doctor;
  let clerk;
  let other; // another person at another desk, using the API directly

  before(async () => {
    browser = await launch();
    admin = await client();
    doctor = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} Quinn`, specialization: "Family medicine" });
    clerk = await createStaff(admin, { role: "receptionist", name: `Rita ${uniqueWord()}` });
    other = await client(clerk.username, clerk.password);
  });
  after(async () => {
    await browser?.close();
  });

  test("the feed and the open views update after changes made elsewhere", async () => {
    const page = await openPage(browser);
    const streams = [];
    page.on("request", (request) => {
      if (request.url().includes("/api/events/stream")) {
        streams.push({ url: request.url(), headers: request.headers() });
      }
    });
    await signIn(page, doctor.username, doctor.password);
    const feed = page.getByRole("complementary", { name: "Live activity" });
    await feed.getByRole("status").filter({ hasText: "Live" }).waitFor();

    // The token travels in the Authorization header; the URL carries none.
    assert.ok(streams.length >= 1, "the dashboard opened the event stream");
    for (const stream of streams) {
      assert.ok(!/token|eyJ/i.test(stream.url), `no token in ${stream.url}`);
      assert.match(stream.headers.authorization || "", /^Bearer eyJ/);
    }
    assert.equal(await feed.getByRole("list", { name: "Recent changes" }).getAttribute("aria-live"), "polite");

    // A search showing nothing yet; another desk registers a matching patient.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Patients" }).click();
    const word = uniqueWord();
    await page.getByRole("searchbox", { name: "Search patients" }).fill(word);
    await page.getByText(`No patients match “${word}”.`).waitFor();
    const patient = await other.post("/api/patients", { name: `Lin ${word}`, birth_date: "1990-02-03", sex: "female" });
    const items = feed.getByRole("list", { name: "Recent changes" }).getByRole("listitem");
    await items.filter({ hasText: `Patient registered: Lin ${word}` }).waitFor();
    await items.filter({ hasText: `by ${clerk.name} (Receptionist)` }).first().waitFor();
    await page.getByRole("table", { name: "Patients" }).getByRole("link", { name: `Lin ${word}`, exact: true }).waitFor();

    // The doctor's own day tomorrow; the other desk books a visit into it.
    const tomorrow = dayFromToday(1);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Appointments" }).click();
    await page.getByLabel("Date").fill(tomorrow);
    const day = page.locator(`section.day[data-day="${tomorrow}"]`);
    await day.getByRole("button", { name: /^Book 10:30 on/ }).waitFor();
    const visit = await other.post("/api/appointments", {
      patient_id: patient.id, doctor_id: doctor.id, start: zonedTime(tomorrow, "10:30"), reason: "New patient consultation",
    });
    await day.locator(`li[data-appointment-id="${visit.id}"]`).filter({ hasText: `Lin ${word}` }).waitFor();
    assert.equal(await day.getByRole("button", { name: /^Book 10:30 on/ }).count(), 0);
    await items.filter({ hasText: `Appointment booked: Lin ${word} with ${doctor.name}` }).waitFor();

    // Checked in at the desk: the status changes in the open day view.
    await other.put(`/api/appointments/${visit.id}`, {
      patient_id: patient.id, doctor_id: doctor.id, start: visit.start, duration_minutes: 30,
      reason: visit.reason, notes: null, status: "checked_in",
    });
    await day.locator(`li[data-appointment-id="${visit.id}"]`).getByText("Checked in").waitFor();
    await items.filter({ hasText: `Appointment checked in: Lin ${word}` }).waitFor();

    // A fuller morning for the picture in the README.
    const more = [];
    for (const [name, time, reason] of [["Ada Morgan", "08:30", "Blood pressure review"], ["Tomás Ruiz", "09:30", "Vaccination"]]) {
      const someone = await other.post("/api/patients", { name: `${name} ${word}`, birth_date: "1971-04-04", sex: "unknown" });
      more.push(await other.post("/api/appointments", { patient_id: someone.id, doctor_id: doctor.id, start: zonedTime(tomorrow, time), reason }));
    }
    for (const appointment of more) {
      await day.locator(`li[data-appointment-id="${appointment.id}"]`).waitFor();
    }
    await page.evaluate(() => document.activeElement?.blur());
    await screenshot(page, "dashboard", { fullPage: false });

    // An open patient page follows changes to the patient.
    await page.getByRole("link", { name: `Lin ${word}` }).first().click();
    await page.getByRole("heading", { level: 1, name: `Lin ${word}` }).waitFor();
    await other.put(`/api/patients/${patient.id}`, { name: `Lin ${word} Chen`, birth_date: "1990-02-03", sex: "female", phone: "+1 555 0199" });
    await page.getByRole("heading", { level: 1, name: `Lin ${word} Chen` }).waitFor();
    await page.getByRole("region", { name: "Demographics" }).getByText("+1 555 0199").waitFor();
    await items.filter({ hasText: `Patient details updated: Lin ${word} Chen` }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("a booking for another doctor shows in the feed but leaves this doctor's day as it was", async () => {
    // Another doctor's booking does not touch this doctor's open day view.
    const colleague = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} Other` });
    const patient = await admin.post("/api/patients", { name: `Sam ${uniqueWord()}`, birth_date: "1960-06-06", sex: "male" });
    const page = await openPage(browser);
    await signIn(page, doctor.username, doctor.password);
    const feed = page.getByRole("complementary", { name: "Live activity" });
    await feed.getByRole("status").filter({ hasText: "Live" }).waitFor();
    const dayAfter = dayFromToday(3);
    await page.getByLabel("Date").fill(dayAfter);
    const day = page.locator(`section.day[data-day="${dayAfter}"]`);
    await day.getByRole("button", { name: /^Book 09:00 on/ }).waitFor();
    await admin.post("/api/appointments", { patient_id: patient.id, doctor_id: colleague.id, start: zonedTime(dayAfter, "09:00") });
    const items = feed.getByRole("list", { name: "Recent changes" }).getByRole("listitem");
    await items.filter({ hasText: `Appointment booked: ${patient.name} with ${colleague.name}` }).waitFor();
    // Still free for this doctor.
    await day.getByRole("button", { name: /^Book 09:00 on/ }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("after a drop the feed resumes from the last event it saw; a stream ended by expiry signs out", async () => {
    const page = await openPage(browser);
    const envelope = (seq, name) => JSON.stringify({
      event_id: `00000000-0000-7000-8000-0000000000${seq}`, type: "patient.created", aggregate: "patient",
      aggregate_id: `00000000-0000-7000-8000-0000000001${seq}`, aggregate_version: 1,
      occurred_at: new Date().toISOString(), actor: { id: "system", role: "system" }, correlation_id: null,
      data: { id: `00000000-0000-7000-8000-0000000001${seq}`, name },
    });
    // Stand in for the gateway's stream: each answer ends at once, as a dropped connection would.
    const calls = [];
    await page.route((url) => url.pathname === "/api/events/stream", async (route) => {
      const headers = route.request().headers();
      calls.push({ lastEventId: headers["last-event-id"] ?? null, authorization: headers.authorization });
      let body = "";
      if (calls.length === 1) {
        body = `event: ready\ndata: {"last_sequence":41}\n\n: keep-alive\n\nid: 42\nevent: patient.created\ndata: ${envelope(42, "First Dropped")}\n\n`;
      } else if (calls.length === 2) {
        body = `event: ready\ndata: {"last_sequence":43}\n\nid: 43\nevent: patient.created\ndata: ${envelope(43, "Second Resumed")}\n\n`;
      } else {
        // The token runs out as this last stream closes.
        await page.evaluate(() => sessionStorage.setItem("hospital.expires_at", String(Date.now() - 1)));
        body = `event: ready\ndata: {"last_sequence":43}\n\n`;
      }
      await route.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-store" }, body });
    });
    await signIn(page, "admin", ADMIN_PASSWORD);
    const items = page.getByRole("complementary", { name: "Live activity" }).getByRole("listitem");
    await items.filter({ hasText: "Patient registered: First Dropped" }).waitFor();
    await items.filter({ hasText: "Patient registered: Second Resumed" }).waitFor();
    await page.getByText("Your session has expired. Please sign in again.").waitFor();
    assert.equal(calls[0].lastEventId, null, "the first connection starts from now");
    assert.equal(calls[1].lastEventId, "42", "the second resumes after the last event seen");
    assert.equal(calls[2].lastEventId, "43");
    assert.ok(calls.every((call) => /^Bearer eyJ/.test(call.authorization)));
    await page.context().close();
  });
});
