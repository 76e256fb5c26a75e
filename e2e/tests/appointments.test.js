// Appointments: the front desk books from a free slot in a doctor's day view and sees it there,
// a conflicting booking is refused with a plain message, and the visit goes through check-in
// and fulfilment; no-show and cancel; the week view.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, screenshot } from "../lib/browser.js";
import { client, createStaff, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, dayFromToday, signIn, unlabelledControls, zonedTime } from "../lib/ui.js";

describe("appointments", () => {
  let browser;
  let admin;
  let doctor;
  let clerk;
  let ada;
  let bob;
  const tomorrow = dayFromToday(1);

  before(async () => {
    browser = await launch();
    admin = await client();
    doctor = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} House`, specialization: "Diagnostic medicine" });
    clerk = await createStaff(admin, { role: "receptionist", name: `Pam ${uniqueWord()}` });
    ada = await admin.post("/api/patients", { name: `Ada ${uniqueWord()}`, birth_date: "1985-12-10", sex: "female" });
    bob = await admin.post("/api/patients", { name: `Bob ${uniqueWord()}`, birth_date: "1979-03-02", sex: "male" });
  });
  after(async () => {
    await browser?.close();
  });

  /** Opens the doctor's day view for `day` from the Appointments section. */
  async function openDay(page, day) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Appointments" }).click();
    await page.getByRole("heading", { level: 1, name: "Appointments" }).waitFor();
    await page.getByLabel("Doctor").selectOption(doctor.id);
    await page.getByLabel("Date").fill(day);
    await page.getByRole("radio", { name: "Day" }).check();
    await page.getByRole("heading", { level: 2, name: new RegExp(`${doctor.name} ·`) }).waitFor();
    return page.locator(`section.day[data-day="${day}"]`);
  }

  test("book from a free slot, see it in the day view, and be told plainly about a conflict", async () => {
    const page = await openPage(browser);
    await signIn(page, clerk.username, clerk.password);

    // From the patient's page: "Book appointment" keeps the patient for the booking.
    await page.goto(page.url().replace(/#.*$/, `#/patients/${ada.id}`));
    await page.getByRole("heading", { level: 1, name: ada.name }).waitFor();
    await page.getByRole("link", { name: "Book appointment" }).click();
    await page.getByText(`Booking for ${ada.name}: choose a free slot.`).waitFor();
    await page.getByLabel("Doctor").selectOption(doctor.id);
    await page.getByLabel("Date").fill(tomorrow);
    const day = page.locator(`section.day[data-day="${tomorrow}"]`);
    await day.waitFor();
    assert.deepEqual(await unlabelledControls(page), []);

    await day.getByRole("button", { name: /^Book 09:00 on .* with / }).click();
    const dialog = page.getByRole("dialog", { name: "Book an appointment" });
    await dialog.waitFor();
    assert.deepEqual(await unlabelledControls(page), []);
    assert.equal(await dialog.getByRole("listbox", { name: "Patient" }).inputValue(), ada.id);
    assert.equal(await dialog.getByLabel("Date and time").inputValue(), `${tomorrow}T09:00`);
    await dialog.getByLabel("Reason").fill("Follow-up");
    await dialog.getByRole("button", { name: "Book appointment" }).click();
    await dialog.waitFor({ state: "detached" });

    // The doctor's day view shows it at 09:00 local time, and 09:00 is no longer free.
    const booked = day.locator("li.appointment").filter({ hasText: ada.name });
    await booked.waitFor();
    assert.match(await booked.textContent(), /09:00–09:30/);
    assert.match(await booked.textContent(), /Follow-up/);
    assert.match(await booked.textContent(), /Booked/);
    assert.equal(await day.getByRole("button", { name: /^Book 09:00 on/ }).count(), 0);
    const stored = await admin.get(`/api/appointments?doctor_id=${doctor.id}`);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].start, new Date(zonedTime(tomorrow, "09:00")).toISOString().replace(".000Z", "Z"));
    await screenshot(page, "appointments-day");

    // Another patient at 09:15 with the same doctor overlaps: the API's 409, said plainly.
    await page.getByRole("button", { name: "Stop booking for this patient" }).click();
    await day.getByRole("button", { name: /^Book 10:00 on/ }).click();
    await dialog.waitFor();
    await dialog.getByLabel("Find patient").fill(bob.name);
    await dialog.getByRole("status").filter({ hasText: "1 patient found and chosen" }).waitFor();
    await dialog.getByLabel("Date and time").fill(`${tomorrow}T09:15`);
    await dialog.getByRole("button", { name: "Book appointment" }).click();
    const conflict = dialog.getByRole("alert");
    await conflict.filter({ hasText: `Not booked: ${doctor.name} already has an appointment from 09:00 to 09:30` }).waitFor();
    assert.match(await conflict.textContent(), new RegExp(`with ${ada.name}\\)\\. Choose another time\\.`));
    await screenshot(page, "appointments-conflict");

    // Choosing a free time books it.
    await dialog.getByLabel("Date and time").fill(`${tomorrow}T10:00`);
    await dialog.getByRole("button", { name: "Book appointment" }).click();
    await dialog.waitFor({ state: "detached" });
    await day.locator("li.appointment").filter({ hasText: bob.name }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("a booking made elsewhere while the form is open is reported as a conflict", async () => {
    const page = await openPage(browser);
    await signIn(page, clerk.username, clerk.password);
    const day = await openDay(page, tomorrow);
    await day.getByRole("button", { name: /^Book 14:00 on/ }).click();
    const dialog = page.getByRole("dialog", { name: "Book an appointment" });
    await dialog.getByLabel("Find patient").fill(ada.name);
    await dialog.getByRole("status").filter({ hasText: "1 patient found and chosen" }).waitFor();
    // Meanwhile another client books Bob at 14:00 with the same doctor.
    await admin.post("/api/appointments", { patient_id: bob.id, doctor_id: doctor.id, start: zonedTime(tomorrow, "14:00") });
    await dialog.getByRole("button", { name: "Book appointment" }).click();
    await dialog.getByRole("alert").filter({ hasText: `Not booked: ${doctor.name} already has an appointment from 14:00 to 14:30` }).waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await day.locator("li.appointment").filter({ hasText: "14:00–14:30" }).filter({ hasText: bob.name }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("check in, fulfil, no-show and cancel; the week view", async () => {
    const dayAfter = dayFromToday(2);
    const first = await admin.post("/api/appointments", { patient_id: ada.id, doctor_id: doctor.id, start: zonedTime(dayAfter, "08:30"), reason: "Check-up" });
    await admin.post("/api/appointments", { patient_id: bob.id, doctor_id: doctor.id, start: zonedTime(dayAfter, "11:00"), duration_minutes: 45 });
    const third = await admin.post("/api/appointments", { patient_id: bob.id, doctor_id: doctor.id, start: zonedTime(dayAfter, "15:00") });

    const page = await openPage(browser);
    await signIn(page, clerk.username, clerk.password);
    const day = await openDay(page, dayAfter);
    const adaVisit = day.locator(`li[data-appointment-id="${first.id}"]`);
    await adaVisit.getByRole("button", { name: /^Check in:/ }).click();
    await adaVisit.getByText("Checked in").waitFor();
    await adaVisit.getByRole("button", { name: /^Fulfil:/ }).click();
    await adaVisit.getByText("Fulfilled").waitFor();
    assert.equal(await adaVisit.getByRole("button").count(), 0, "a fulfilled visit has no further steps");

    const bobVisit = day.locator("li.appointment").filter({ hasText: "11:00–11:45" });
    await bobVisit.getByRole("button", { name: /^No-show:/ }).click();
    const noShow = page.getByRole("dialog", { name: "Record a no-show?" });
    await noShow.getByRole("button", { name: "Record no-show" }).click();
    await bobVisit.getByText("No-show").waitFor();

    const lateVisit = day.locator(`li[data-appointment-id="${third.id}"]`);
    await lateVisit.getByRole("button", { name: /^Cancel:/ }).click();
    const cancel = page.getByRole("dialog", { name: "Cancel this appointment?" });
    await cancel.getByLabel("Reason for cancelling (optional)").fill("Patient called in sick");
    await cancel.getByRole("button", { name: "Cancel appointment" }).click();
    await lateVisit.getByText("Cancelled: Patient called in sick").waitFor();
    // A cancelled appointment frees its time again.
    await day.getByRole("button", { name: /^Book 15:00 on/ }).waitFor();
    const stored = await admin.get(`/api/appointments/${third.id}`);
    assert.equal(stored.status, "cancelled");

    // The week view holds both days, with links into each day.
    await page.getByRole("radio", { name: "Week" }).check();
    const week = page.locator(".board.view-week");
    await week.waitFor();
    const tomorrowColumn = week.locator(`section.day[data-day="${tomorrow}"]`);
    const afterColumn = week.locator(`section.day[data-day="${dayAfter}"]`);
    if (await tomorrowColumn.count()) {
      await tomorrowColumn.locator("li.appointment").filter({ hasText: ada.name }).first().waitFor();
    }
    await afterColumn.locator("li.appointment").filter({ hasText: "Fulfilled" }).waitFor();
    assert.equal(await week.locator("section.day").count(), 7);
    await screenshot(page, "appointments-week");

    // The patient's page lists the visit with its status.
    await page.goto(page.url().replace(/#.*$/, `#/patients/${ada.id}`));
    const upcoming = page.getByRole("table", { name: "Upcoming appointments" });
    await upcoming.getByRole("row").filter({ hasText: "Fulfilled" }).waitFor();
    await upcoming.getByRole("row").filter({ hasText: "Follow-up" }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });
});
