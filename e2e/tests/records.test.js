// Medical records: a doctor writes a diagnosis with vital signs (the API's range errors shown
// next to the fields), sees it in the timeline, amends it and reads its history; a nurse adds
// vital signs only; others write none.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, launch, openPage, screenshot } from "../lib/browser.js";
import { client, createStaff, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, openSection, signIn, unlabelledControls } from "../lib/ui.js";

describe("records", () => {
  let browser;
  let admin;
  let doctor;
  let nurse;
  let patient;

  before(async () => {
    browser = await launch();
    admin = await client();
    doctor = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} Grey`, specialization: "General surgery" });
    nurse = await createStaff(admin, { role: "nurse", name: `Nurse ${uniqueWord()}` });
    patient = await admin.post("/api/patients", { name: `Grace ${uniqueWord()} Hopper`, birth_date: "1976-12-09", sex: "female" });
  });
  after(async () => {
    await browser?.close();
  });

  async function openPatient(page) {
    await openSection(page, "Patients");
    await page.getByRole("searchbox", { name: "Search patients" }).fill(patient.name);
    await page.getByRole("table", { name: "Patients" }).getByRole("link", { name: patient.name, exact: true }).click();
    await page.getByRole("heading", { level: 1, name: patient.name }).waitFor();
    return page.getByRole("region", { name: "Medical records" });
  }

  test("a doctor writes a diagnosis with vitals, amends it, and reads the history", async () => {
    const page = await openPage(browser);
    await signIn(page, doctor.username, doctor.password);
    // A doctor starts on their own schedule.
    await page.getByRole("heading", { level: 2, name: new RegExp(`^${doctor.name} ·`) }).waitFor();
    const records = await openPatient(page);

    await records.getByRole("button", { name: "Add to the record" }).click();
    const form = records.getByRole("form", { name: `New record for ${patient.name}` });
    await form.getByLabel("Kind").selectOption("diagnosis");
    await form.getByLabel("Title").fill("Seasonal allergy");
    await form.getByLabel("Notes").fill("Sneezing since March.");
    await form.getByLabel("ICD-10 code").fill("J30.2");
    await form.getByLabel("Description").fill("Other seasonal allergic rhinitis");
    await form.getByLabel("Add vital signs to this record").check();
    assert.deepEqual(await unlabelledControls(page), []);
    await form.getByLabel("Temperature (°C)").fill("36.9");
    await form.getByLabel("Pulse (bpm)").fill("400");
    await form.getByLabel("Systolic pressure (mmHg)").fill("120");
    await form.getByLabel("Diastolic pressure (mmHg)").fill("80");
    await form.getByRole("button", { name: "Save record" }).click();

    // The API's range error sits next to the pulse field.
    await form.getByText("Pulse (bpm) must be between 20 and 250.").waitFor();
    assert.equal(await form.getByLabel("Pulse (bpm)").getAttribute("aria-invalid"), "true");
    await screenshot(page, "record-form-errors");
    await form.getByLabel("Pulse (bpm)").fill("72");
    await form.getByRole("button", { name: "Save record" }).click();
    await form.waitFor({ state: "detached" });

    // The timeline shows it, newest first, with diagnosis and vitals.
    const timeline = records.getByRole("list", { name: "Medical records, newest first" });
    const entry = timeline.getByRole("article", { name: "Seasonal allergy" });
    await entry.waitFor();
    await entry.getByText("J30.2").waitFor();
    await entry.getByText("Other seasonal allergic rhinitis").waitFor();
    await entry.getByText("120/80 mmHg").waitFor();
    await entry.getByText("72 bpm").waitFor();
    await entry.getByText(`by ${doctor.name}`).waitFor();

    // Amend: a new version; the first stays in the history.
    await entry.getByRole("button", { name: "Amend Seasonal allergy" }).click();
    const amend = records.getByRole("form", { name: "Amend “Seasonal allergy”" });
    assert.equal(await amend.getByLabel("ICD-10 code").inputValue(), "J30.2");
    await amend.getByLabel("Notes").fill("Sneezing since March; worse outdoors.");
    await amend.getByRole("button", { name: "Save amendment" }).click();
    await amend.waitFor({ state: "detached" });
    const amended = timeline.getByRole("article", { name: "Seasonal allergy" });
    await amended.getByText("Sneezing since March; worse outdoors.").waitFor();
    await amended.getByText("amended (version 2)").waitFor();

    await amended.getByText("History (2 versions)").click();
    const versions = amended.locator(".versions > li");
    // The amendment's own live event may refresh the timeline, which reopens this history and
    // loads it again: count once the list has settled, not in the middle of a reload.
    let count = 0;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await page.waitForTimeout(100)) {
      count = await versions.count();
      if (count === 2) {
        break;
      }
    }
    assert.equal(count, 2);
    assert.match(await versions.nth(0).textContent(), new RegExp(`Version 2 · Amended by ${doctor.name} \\(Doctor\\)`));
    assert.match(await versions.nth(0).textContent(), /worse outdoors/);
    assert.match(await versions.nth(1).textContent(), new RegExp(`Version 1 · Created by ${doctor.name}`));
    assert.match(await versions.nth(1).textContent(), /Sneezing since March\./);
    await screenshot(page, "record-timeline");

    // A note, then marked entered in error: it leaves the timeline but can be shown.
    await records.getByRole("button", { name: "Add to the record" }).click();
    await form.getByLabel("Kind").selectOption("note");
    await form.getByLabel("Title").fill("Wrong patient note");
    await form.getByRole("button", { name: "Save record" }).click();
    const wrong = timeline.getByRole("article", { name: "Wrong patient note" });
    await wrong.waitFor();
    await wrong.getByRole("button", { name: "Mark Wrong patient note as entered in error" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Mark entered in error" }).click();
    await wrong.waitFor({ state: "detached" });
    await records.getByLabel("Show records entered in error").check();
    await timeline.getByRole("article", { name: "Wrong patient note" }).getByText("Entered in error").waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("a nurse records vital signs only; an administrator sees no records", async () => {
    const page = await openPage(browser);
    await signIn(page, nurse.username, nurse.password);
    const records = await openPatient(page);
    assert.equal(await records.getByRole("button", { name: "Add to the record" }).count(), 0);
    await records.getByRole("button", { name: "Record vital signs" }).click();
    const form = records.getByRole("form", { name: `New record for ${patient.name}` });
    const kinds = await form.getByLabel("Kind").locator("option").allTextContents();
    assert.deepEqual(kinds, ["Vitals"]);
    assert.equal(await form.getByLabel("Title").inputValue(), "Vital signs");
    await form.getByRole("button", { name: "Save record" }).click();
    await form.getByText("A vitals record needs at least one vital sign.").waitFor();
    await form.getByLabel("SpO₂ (%)").fill("97");
    await form.getByLabel("Respiratory rate (/min)").fill("16");
    await form.getByRole("button", { name: "Save record" }).click();
    const timeline = records.getByRole("list", { name: "Medical records, newest first" });
    const vitals = timeline.getByRole("article", { name: "Vital signs" }).first();
    await vitals.getByText("97 %").waitFor();
    await vitals.getByText(`by ${nurse.name}`).waitFor();
    // The doctor's diagnosis is readable but not the nurse's to amend.
    await timeline.getByRole("article", { name: "Seasonal allergy" }).waitFor();
    assert.equal(await timeline.getByRole("button", { name: "Amend Seasonal allergy" }).count(), 0);
    assertNoPageErrors(page);
    await page.context().close();

    // Administrators neither read nor write records: no records part, and no error either.
    const adminPage = await openPage(browser);
    await signIn(adminPage, "admin", ADMIN_PASSWORD);
    await openPatient(adminPage);
    await adminPage.getByRole("region", { name: "Demographics" }).waitFor();
    assert.equal(await adminPage.getByRole("region", { name: "Medical records" }).count(), 0);
    assert.equal(await adminPage.getByRole("alert").filter({ hasText: /\S/ }).count(), 0);
    assertNoPageErrors(adminPage);
    await adminPage.context().close();
  });
});
