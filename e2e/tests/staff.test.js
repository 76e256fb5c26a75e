// Staff: administrators add and edit staff members (roles, specializations, logins) with the
// API's field errors next to the fields; others see the list without the controls.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, launch, openPage, screenshot } from "../lib/browser.js";
import { client, createStaff, unique, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, openSection, signIn, unlabelledControls } from "../lib/ui.js";

describe("staff", () => {
  let browser;
  let admin;
  before(async () => {
    browser = await launch();
    admin = await client();
  });
  after(async () => {
    await browser?.close();
  });

  test("an administrator adds a doctor with a login, then edits the specialization", async () => {
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    await openSection(page, "Staff");
    await page.getByRole("link", { name: "New staff member" }).click();
    await page.getByRole("heading", { level: 1, name: "New staff member" }).waitFor();
    assert.deepEqual(await unlabelledControls(page), []);

    const name = `Dr ${uniqueWord()} Yang`;
    const username = `cyang.${unique()}`;
    await page.getByLabel("Full name").fill(name);
    await page.getByLabel("Role").selectOption("doctor");
    await page.getByLabel("Specialization").fill("Cardiothoracic surgery");
    await page.getByLabel("Username").fill("X!");
    await page.getByLabel("Password").fill("short");
    await page.getByRole("button", { name: "Add staff member" }).click();
    await page.locator(".field[data-field=username] .field-error").filter({ hasText: /^Username / }).waitFor();
    await page.locator(".field[data-field=password] .field-error").filter({ hasText: /^Password / }).waitFor();
    assert.equal(await page.getByLabel("Username").getAttribute("aria-invalid"), "true");
    await screenshot(page, "staff-form-errors");

    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password").fill("a long enough password");
    await page.getByRole("button", { name: "Add staff member" }).click();
    await page.getByRole("heading", { level: 1, name: "Staff" }).waitFor();
    await page.getByRole("searchbox", { name: "Search staff" }).fill(name);
    const row = page.getByRole("table", { name: "Staff" }).getByRole("row").filter({ hasText: name });
    await row.getByText("Cardiothoracic surgery").waitFor();
    await row.getByText("Doctor").waitFor();
    await row.getByText(username).waitFor();

    // The new doctor can sign in.
    await client(username, "a long enough password");

    await row.getByRole("link", { name: `Edit ${name}` }).click();
    await page.getByRole("heading", { level: 1, name: `Edit ${name}` }).waitFor();
    await page.getByLabel("Specialization").fill("Cardiology");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { level: 1, name: "Staff" }).waitFor();
    await page.getByRole("searchbox", { name: "Search staff" }).fill(name);
    await row.getByText("Cardiology").waitFor();
    // The login was kept as it was.
    await client(username, "a long enough password");

    await page.getByLabel("Role").selectOption("doctor");
    await row.waitFor();
    await screenshot(page, "staff-list");
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("a nurse sees the staff list without the controls to change it", async () => {
    const nurse = await createStaff(admin, { role: "nurse", name: `Nurse ${uniqueWord()}` });
    const page = await openPage(browser);
    await signIn(page, nurse.username, nurse.password);
    await openSection(page, "Staff");
    await page.getByRole("table", { name: "Staff" }).getByRole("row").filter({ hasText: nurse.name }).waitFor();
    assert.equal(await page.getByRole("link", { name: "New staff member" }).count(), 0);
    assert.equal(await page.getByRole("link", { name: /^Edit / }).count(), 0);
    assert.equal(await page.getByRole("button", { name: /^Remove / }).count(), 0);
    await page.goto(page.url().replace(/#.*$/, "#/staff/new"));
    await page.getByText("Only administrators manage staff.").waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });
});
