// A tablet (820 × 1180, portrait): nothing sticks out sideways, the live panel moves below the
// content, and a booking can be made with the keyboard alone.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch, openPage, screenshot } from "../lib/browser.js";
import { client, createStaff, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, dayFromToday, horizontalOverflow, signIn } from "../lib/ui.js";

describe("tablet", () => {
  let browser;
  let admin;
  let doctor;
  let clerk;
  let patient;
  before(async () => {
    browser = await launch();
    admin = await client();
    doctor = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} Bailey`, specialization: "Paediatrics" });
    clerk = await createStaff(admin, { role: "receptionist", name: `Jo ${uniqueWord()}` });
    patient = await admin.post("/api/patients", { name: `Kim ${uniqueWord()} Park`, birth_date: "2015-07-01", sex: "female", address: "A rather long address line, 1234 Some Very Long Street Name, Springfield" });
  });
  after(async () => {
    await browser?.close();
  });

  test("every section fits the width of a tablet", async () => {
    const page = await openPage(browser, { width: 820, height: 1180 });
    await signIn(page, clerk.username, clerk.password);
    for (const [route, heading] of [
      ["#/patients", "Patients"],
      [`#/patients/${patient.id}`, patient.name],
      ["#/staff", "Staff"],
      [`#/appointments?doctor=${doctor.id}&date=${dayFromToday(1)}&view=week`, "Appointments"],
      [`#/appointments?doctor=${doctor.id}&date=${dayFromToday(1)}&view=day`, "Appointments"],
    ]) {
      await page.goto(page.url().replace(/#.*$/, route));
      await page.getByRole("heading", { level: 1, name: heading }).waitFor();
      if (route.startsWith("#/patients/")) {
        // The front desk's patient page has no records part; its appointments settle it.
        await page.getByRole("region", { name: "Appointments" }).getByText("No upcoming appointments.").waitFor();
      } else {
        await page.getByRole("status").filter({ hasText: /shown|record|appointment|staff member|match/ }).first().waitFor();
      }
      assert.equal(await horizontalOverflow(page), 0, `${route} overflows sideways`);
    }
    // The live panel sits below the content, not beside it.
    const main = await page.locator("main").boundingBox();
    const feed = await page.getByRole("complementary", { name: "Live activity" }).boundingBox();
    assert.ok(feed.y >= main.y + main.height - 1, "the live panel is below the main content");
    await page.goto(page.url().replace(/#.*$/, `#/appointments?doctor=${doctor.id}&date=${dayFromToday(1)}&view=week`));
    await page.locator(".board.view-week").waitFor();
    await screenshot(page, "tablet-week");
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("booking with the keyboard alone", async () => {
    const page = await openPage(browser, { width: 820, height: 1180 });
    await signIn(page, clerk.username, clerk.password);
    const tomorrow = dayFromToday(1);
    await page.goto(page.url().replace(/#.*$/, `#/appointments?doctor=${doctor.id}&date=${tomorrow}&view=day`));
    const day = page.locator(`section.day[data-day="${tomorrow}"]`);
    const slot = day.getByRole("button", { name: /^Book 11:00 on/ });
    await slot.waitFor();
    await slot.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Book an appointment" });
    await dialog.waitFor();
    // Focus starts in the patient search; type, Tab to the list (one match is chosen), on to submit.
    assert.equal(await page.evaluate(() => document.activeElement?.name), "patient_search");
    await page.keyboard.type(patient.name);
    await dialog.getByRole("status").filter({ hasText: "1 patient found and chosen" }).waitFor();
    await page.keyboard.press("Tab"); // the patient list
    assert.equal(await page.evaluate(() => document.activeElement?.name), "patient_id");
    // On through date and time (several stops: day, month, year, hours, minutes) and duration.
    const visited = [];
    for (let presses = 0; presses < 15; presses += 1) {
      await page.keyboard.press("Tab");
      const name = await page.evaluate(() => document.activeElement?.name);
      visited.push(name);
      if (name === "reason") {
        break;
      }
    }
    assert.deepEqual([...new Set(visited)], ["start", "duration_minutes", "reason"]);
    await page.keyboard.type("School check-up");
    await page.keyboard.press("Enter"); // submits the form
    await dialog.waitFor({ state: "detached" });
    const booked = day.locator("li.appointment").filter({ hasText: patient.name });
    await booked.waitFor();
    // Focus lands on the new appointment, so the keyboard user knows where it went.
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains("appointment")), true);
    assert.match(await booked.textContent(), /School check-up/);
    // Escape closes a dialog without booking.
    await day.getByRole("button", { name: /^Book 12:00 on/ }).focus();
    await page.keyboard.press("Enter");
    await dialog.waitFor();
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    assertNoPageErrors(page);
    await page.context().close();
  });
});
