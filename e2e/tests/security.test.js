// Security features as people meet them: the pages run under their Content-Security-Policy
// without a single violation; signing out revokes the token; changing one's password keeps one
// signed in; the front desk never sees medical records; administrators read the audit trail;
// too many failed sign-ins are refused with the time to wait.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, BASE_URL, launch, openPage, screenshot } from "../lib/browser.js";
import { client, createStaff, loginFrom, statusWith, unique, uniqueWord } from "../lib/api.js";
import { assertNoPageErrors, dayFromToday, signIn, unlabelledControls } from "../lib/ui.js";

/** Records every `securitypolicyviolation` of each document the page loads. */
async function watchViolations(page) {
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`);
    });
  });
}

const violations = (page) => page.evaluate(() => window.cspViolations);

describe("security", () => {
  let browser;
  let admin;
  before(async () => {
    browser = await launch();
    admin = await client();
  });
  after(async () => {
    await browser?.close();
  });

  test("the login page and the dashboard run under the CSP without a violation", async () => {
    const page = await openPage(browser);
    await watchViolations(page);
    const login = await page.goto(`${BASE_URL}/`);
    const policy = login.headers()["content-security-policy"];
    assert.match(policy, /script-src 'self'/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.doesNotMatch(policy, /unsafe/);
    assert.equal(login.headers()["x-frame-options"], "DENY");
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    assert.deepEqual(await violations(page), []);

    await signIn(page, "admin", ADMIN_PASSWORD);
    // The live feed connected (fetch to our own origin) and a view rendered.
    await page.getByRole("complementary", { name: "Live activity" }).getByRole("status").filter({ hasText: "Live" }).waitFor();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Staff" }).click();
    await page.getByRole("table", { name: "Staff" }).waitFor();
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("dialog", { name: "Change password" }).getByRole("button", { name: "Cancel" }).click();
    assert.deepEqual(await violations(page), []);
    // A reload revalidates the page (304): it must run under the same policy.
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Staff" }).waitFor();
    await page.getByRole("table", { name: "Staff" }).waitFor();
    assert.deepEqual(await violations(page), []);
    assertNoPageErrors(page);

    // The policy is enforced, so the empty list above means something: inline code is refused.
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true";
      document.body.append(script);
    });
    // The report is an event queued after the refusal.
    await page.waitForFunction(() => window.cspViolations.some((v) => v.startsWith("script-src")));
    assert.equal(await page.evaluate(() => window.inlineRan), undefined);
    await page.context().close();
  });

  test("signing out revokes the token at the gateway", async () => {
    const clerk = await createStaff(admin, { role: "receptionist", name: `Rosa ${uniqueWord()}` });
    const page = await openPage(browser);
    await signIn(page, clerk.username, clerk.password);
    const token = await page.evaluate(() => sessionStorage.getItem("hospital.access_token"));
    assert.equal(await statusWith(token), 200);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You have signed out.").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("hospital.access_token")), null);
    // Whoever copied the token has nothing: the gateway refuses it now.
    assert.equal(await statusWith(token), 401);
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("changing one's password keeps one signed in; the new password signs in", async () => {
    const nurse = await createStaff(admin, { role: "nurse", name: `Nurse ${uniqueWord()}` });
    const page = await openPage(browser);
    await signIn(page, nurse.username, nurse.password);
    const oldToken = await page.evaluate(() => sessionStorage.getItem("hospital.access_token"));

    const opener = page.getByRole("button", { name: "Change password" });
    await opener.click();
    const dialog = page.getByRole("dialog", { name: "Change password" });
    assert.deepEqual(await unlabelledControls(page), []);
    assert.equal(await page.evaluate(() => document.activeElement?.name), "current_password");

    // The two new passwords differ: said before anything is sent.
    await dialog.getByLabel("Current password").fill(nurse.password);
    await dialog.getByLabel(/^New password/).fill("a brand new passphrase");
    await dialog.getByLabel("Confirm new password").fill("a brand new passphrase!");
    await dialog.getByRole("button", { name: "Change password" }).click();
    await dialog.getByText("Confirm new password must be the same as the new password.").waitFor();

    // A wrong current password: the API's field error, next to the field.
    await dialog.getByLabel("Current password").fill("not my password at all");
    await dialog.getByLabel("Confirm new password").fill("a brand new passphrase");
    await dialog.getByRole("button", { name: "Change password" }).click();
    await dialog.locator(".field[data-field=current_password] .field-error").filter({ hasText: /^Current password / }).waitFor();
    assert.equal(await dialog.getByLabel("Current password").getAttribute("aria-invalid"), "true");

    // Too weak a new password: the error is the new password's.
    await dialog.getByLabel("Current password").fill(nurse.password);
    await dialog.getByLabel(/^New password/).fill("short");
    await dialog.getByLabel("Confirm new password").fill("short");
    await dialog.getByRole("button", { name: "Change password" }).click();
    await dialog.locator(".field[data-field=new_password] .field-error").filter({ hasText: /^New password / }).waitFor();
    await screenshot(page, "change-password-errors");

    const newPassword = `a new passphrase ${unique()}`;
    await dialog.getByLabel(/^New password/).fill(newPassword);
    await dialog.getByLabel("Confirm new password").fill(newPassword);
    await dialog.getByRole("button", { name: "Change password" }).click();
    await dialog.waitFor({ state: "detached" });
    await page.getByRole("status").filter({ hasText: "Your password has been changed." }).waitFor();
    // Focus is back on the button that opened the dialog.
    assert.equal(await page.evaluate(() => document.activeElement?.id), "change-password");

    // Still signed in, with a fresh token; the old one is refused.
    const newToken = await page.evaluate(() => sessionStorage.getItem("hospital.access_token"));
    assert.notEqual(newToken, oldToken);
    assert.equal(await statusWith(oldToken), 401);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Staff" }).click();
    await page.getByRole("table", { name: "Staff" }).getByText(nurse.name).waitFor();
    await page.getByRole("complementary", { name: "Live activity" }).getByRole("status").filter({ hasText: "Live" }).waitFor();
    assertNoPageErrors(page, [/status of 422/]);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You have signed out.").waitFor();
    await signIn(page, nurse.username, newPassword);
    // The old password no longer works (tried from another address: see loginFrom).
    assert.equal((await loginFrom("127.0.0.3", nurse.username, nurse.password)).status, 401);
    await page.context().close();
  });

  test("the front desk sees a patient without the medical records, and no audit trail", async () => {
    const clerk = await createStaff(admin, { role: "receptionist", name: `Remy ${uniqueWord()}` });
    const patient = await admin.post("/api/patients", { name: `Olive ${uniqueWord()}`, birth_date: "1970-01-02", sex: "female" });
    const page = await openPage(browser);
    await signIn(page, clerk.username, clerk.password);
    assert.equal(await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).count(), 0);
    await page.goto(`${BASE_URL}/dashboard.html#/patients/${patient.id}`);
    await page.getByRole("heading", { level: 1, name: patient.name }).waitFor();
    await page.getByRole("region", { name: "Appointments" }).getByText("No upcoming appointments.").waitFor();
    assert.equal(await page.getByRole("region", { name: "Medical records" }).count(), 0);
    assert.equal(await page.getByRole("alert").filter({ hasText: /\S/ }).count(), 0);
    // The front desk edits patients; the access log is the administrators'.
    await page.getByRole("link", { name: "Edit details" }).waitFor();
    assert.equal(await page.getByRole("link", { name: "Access log" }).count(), 0);
    // Nothing was even asked for: no 403 behind the scenes.
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("what a role may not do is not offered, and a refusal by the API is explained", async () => {
    const doctor = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} Self` });
    const colleague = await createStaff(admin, { role: "doctor", name: `Dr ${uniqueWord()} Other` });
    const nurse = await createStaff(admin, { role: "nurse", name: `Nurse ${uniqueWord()}` });
    const patient = await admin.post("/api/patients", { name: `Perry ${uniqueWord()}`, birth_date: "1966-06-06", sex: "male" });
    const tomorrow = dayFromToday(1);

    // A doctor books into their own day only.
    const page = await openPage(browser);
    await signIn(page, doctor.username, doctor.password);
    const dayOf = async (who) => {
      await page.goto(`${BASE_URL}/dashboard.html#/appointments?doctor=${who.id}&date=${tomorrow}&view=day`);
      const day = page.locator(`section.day[data-day="${tomorrow}"]`);
      await day.getByText("Free").first().waitFor();
      return day;
    };
    assert.ok(await (await dayOf(doctor)).getByRole("button", { name: /^Book / }).count() > 0);
    assert.equal(await (await dayOf(colleague)).getByRole("button", { name: /^Book / }).count(), 0);
    assertNoPageErrors(page);
    await page.context().close();

    // A nurse books nothing; the audit trail, asked for by its address, is refused in a sentence.
    const nursePage = await openPage(browser);
    await signIn(nursePage, nurse.username, nurse.password);
    await nursePage.goto(`${BASE_URL}/dashboard.html#/patients/${patient.id}`);
    await nursePage.getByRole("heading", { level: 1, name: patient.name }).waitFor();
    await nursePage.getByRole("region", { name: "Medical records" }).waitFor();
    assert.equal(await nursePage.getByRole("link", { name: "Book appointment" }).count(), 0);
    assert.equal(await nursePage.getByRole("link", { name: "Edit details" }).count(), 0);
    await nursePage.goto(`${BASE_URL}/dashboard.html#/audit`);
    await nursePage.getByRole("alert")
      .filter({ hasText: "Your role does not allow this: a nurse may not read the audit trail." })
      .waitFor();
    assert.equal(await nursePage.getByLabel("Patient id").count(), 0);
    await screenshot(nursePage, "forbidden-explained");
    assertNoPageErrors(nursePage, [/status of 403/]);
    await nursePage.context().close();
  });

  test("an administrator finds their own access to a patient in the audit trail", async () => {
    const patient = await admin.post("/api/patients", { name: `Audra ${uniqueWord()}`, birth_date: "1981-03-04", sex: "female" });
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    await page.goto(`${BASE_URL}/dashboard.html#/patients/${patient.id}`);
    await page.getByRole("heading", { level: 1, name: patient.name }).waitFor();

    await page.getByRole("link", { name: "Access log" }).click();
    await page.getByRole("heading", { level: 1, name: "Audit trail" }).waitFor();
    assert.equal(await page.getByLabel("Patient id").inputValue(), patient.id);
    assert.deepEqual(await unlabelledControls(page), []);
    const table = page.getByRole("table", { name: "Audit entries, oldest first" });
    const mine = table.getByRole("row").filter({ hasText: `GET /api/patients/${patient.id}` }).filter({ hasText: "Administrator" });
    // Recorded as the call was answered; give the trail a moment if it lags.
    for (let attempt = 0; attempt < 20 && (await mine.count()) === 0; attempt += 1) {
      await page.waitForTimeout(250);
      await page.getByRole("button", { name: "Apply filters" }).click();
      await page.getByRole("status").filter({ hasText: /entr(y|ies) shown|No audit entries/ }).waitFor();
    }
    await mine.first().waitFor();
    await mine.first().getByText("Allowed").waitFor();
    await screenshot(page, "audit-trail");

    // The same trail from the navigation, narrowed by who acted.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
    const adminId = await page.evaluate(() => JSON.parse(atob(sessionStorage.getItem("hospital.access_token").split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub);
    await page.getByLabel("Staff member id").fill(adminId);
    await page.getByLabel("Patient id").fill(patient.id);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await table.getByRole("row").filter({ hasText: `GET /api/patients/${patient.id}` }).first().waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("too many failed sign-ins: the login page says how long to wait", async () => {
    const username = `nobody.${unique()}`;
    // The failures come from 127.0.0.2, so only this username (and that address) is held back.
    let refused = null;
    for (let attempt = 0; attempt < 10 && !refused; attempt += 1) {
      const reply = await loginFrom("127.0.0.2", username, "not the password");
      if (reply.status === 429) {
        refused = reply;
      } else {
        assert.equal(reply.status, 401);
      }
    }
    assert.ok(refused, "the gateway starts refusing");
    assert.match(String(refused.headers["retry-after"]), /^\d+$/);

    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/`);
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password").fill("still not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "Too many failed sign-in attempts" });
    await alert.waitFor();
    assert.match(await alert.textContent(), /try again in \d+ (minutes?|seconds?)\./);
    // The form stays usable for someone else at this computer.
    assert.equal(await page.getByRole("button", { name: "Sign in" }).isEnabled(), true);
    await screenshot(page, "login-throttled");
    assertNoPageErrors(page, [/status of 429/]);
    await page.context().close();
  });
});
