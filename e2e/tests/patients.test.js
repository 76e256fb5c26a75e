// Patients: the API's field errors next to the fields, registering, search as you type, paging,
// the patient page, editing and removing.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, launch, openPage, screenshot } from "../lib/browser.js";
import { client, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, openSection, signIn, unlabelledControls } from "../lib/ui.js";

describe("patients", () => {
  let browser;
  let admin;
  before(async () => {
    browser = await launch();
    admin = await client();
  });
  after(async () => {
    await browser?.close();
  });

  test("register a patient: field errors first, then the patient page", async () => {
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    await page.getByRole("link", { name: "New patient" }).click();
    await page.getByRole("heading", { level: 1, name: "New patient" }).waitFor();
    assert.deepEqual(await unlabelledControls(page), []);

    // Nothing filled in, an impossible e-mail: the API's errors appear next to each field.
    await page.getByLabel("E-mail").fill("nope");
    await page.getByRole("button", { name: "Register patient" }).click();
    await page.getByText("Full name is required.").waitFor();
    await page.getByText("E-mail must be an e-mail address.").waitFor();
    await page.getByRole("alert").filter({ hasText: "Some fields need correcting" }).waitFor();
    assert.equal(await page.getByLabel("Full name").getAttribute("aria-invalid"), "true");
    // Each message is tied to its field for screen readers.
    const described = await page.getByLabel("Full name").getAttribute("aria-describedby");
    const message = await page.locator(`[id="${described.split(" ").pop()}"]`).textContent();
    assert.equal(message, "Full name is required.");
    // Focus went to the first field in error.
    assert.equal(await page.evaluate(() => document.activeElement?.name), "name");
    await screenshot(page, "patient-form-errors");

    const word = uniqueWord();
    const name = `Ada ${word} Lovelace`;
    await page.getByLabel("Full name").fill(name);
    await page.getByLabel("Birth date").fill("1985-12-10");
    await page.getByLabel("Sex").selectOption("female");
    await page.getByLabel("Phone").fill("+44 20 7946 0958");
    await page.getByLabel("E-mail").fill("ada@example.org");
    await page.getByLabel("Address").fill("12 St James Square, London");
    await page.getByRole("button", { name: "Register patient" }).click();

    await page.getByRole("heading", { level: 1, name }).waitFor();
    const facts = page.getByRole("region", { name: "Demographics" });
    await facts.getByText("+44 20 7946 0958").waitFor();
    await facts.getByText("10 Dec 1985").waitFor();
    const mrn = (await facts.locator(".mono").textContent()).trim();
    assert.match(mrn, /^\d{10}$/);
    await page.getByRole("region", { name: "Appointments" }).getByText("No upcoming appointments.").waitFor();
    // Administrators do not read medical records: the page leaves that part out.
    assert.equal(await page.getByRole("region", { name: "Medical records" }).count(), 0);

    // Search as you type: part of a word finds the patient, so does the MRN.
    await openSection(page, "Patients");
    const search = page.getByRole("searchbox", { name: "Search patients" });
    await search.pressSequentially(word.slice(0, 5).toLowerCase(), { delay: 30 });
    const table = page.getByRole("table", { name: "Patients" });
    await table.getByRole("link", { name, exact: true }).waitFor();
    await page.getByRole("status").filter({ hasText: "1 patient shown for" }).waitFor();
    await search.fill(mrn);
    await table.getByRole("link", { name, exact: true }).waitFor();
    await search.fill(`${word}zzz`);
    await page.getByText(`No patients match “${word}zzz”.`).waitFor();

    // Edit: a bad e-mail is refused next to the field, a good change is saved.
    await search.fill(word);
    await table.getByRole("link", { name: `Edit ${name}` }).click();
    await page.getByRole("heading", { level: 1, name: `Edit ${name}` }).waitFor();
    await page.getByLabel("E-mail").fill("still not an address");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByText("E-mail must be an e-mail address.").waitFor();
    await page.getByLabel("E-mail").fill("ada.lovelace@example.org");
    await page.getByLabel("Phone").fill("+44 20 0000 0001");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { level: 1, name }).waitFor();
    await facts.getByText("+44 20 0000 0001").waitFor();
    await facts.getByText("ada.lovelace@example.org").waitFor();
    await screenshot(page, "patient-page");
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("the patient list pages through a long result", async () => {
    const surname = uniqueWord();
    for (let i = 1; i <= 23; i += 1) {
      await admin.post("/api/patients", { name: `Pat${String(i).padStart(2, "0")} ${surname}`, birth_date: "1990-01-01", sex: "unknown" });
    }
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    await page.getByRole("searchbox", { name: "Search patients" }).fill(surname);
    const table = page.getByRole("table", { name: "Patients" });
    await page.getByRole("status").filter({ hasText: `20 patients shown for “${surname}”` }).waitFor();
    assert.equal(await table.locator("tbody tr").count(), 20);
    await page.getByRole("button", { name: "Next page" }).click();
    await page.getByRole("status").filter({ hasText: `3 patients shown for “${surname}”` }).waitFor();
    await table.getByRole("link", { name: `Pat23 ${surname}`, exact: true }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Next page" }).isDisabled(), true);
    await page.getByRole("button", { name: "Previous page" }).click();
    await table.getByRole("link", { name: `Pat01 ${surname}`, exact: true }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("removing a patient asks first, then the patient is gone", async () => {
    const name = `Remove ${uniqueWord()} Me`;
    const patient = await admin.post("/api/patients", { name, birth_date: "1970-05-05", sex: "male" });
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    await page.getByRole("searchbox", { name: "Search patients" }).fill(name);
    await page.getByRole("table", { name: "Patients" }).getByRole("link", { name, exact: true }).click();
    await page.getByRole("heading", { level: 1, name }).waitFor();

    await page.getByRole("button", { name: "Remove patient" }).click();
    const dialog = page.getByRole("dialog", { name: `Remove ${name} from the register?` });
    await dialog.getByRole("button", { name: "Keep it" }).click();
    await dialog.waitFor({ state: "detached" });
    await page.getByRole("heading", { level: 1, name }).waitFor();

    await page.getByRole("button", { name: "Remove patient" }).click();
    await dialog.getByRole("button", { name: "Remove patient" }).click();
    await page.getByRole("heading", { level: 1, name: "Patients" }).waitFor();
    await page.getByText(`${name} was removed from the register.`).waitFor();
    await assert.rejects(admin.get(`/api/patients/${patient.id}`), /404/);
    assertNoPageErrors(page);
    await page.context().close();
  });
});
