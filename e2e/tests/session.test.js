// Signing in and out: a wrong password, a keyboard-only login, sign out, a token the gateway
// refuses (401) and a token that expires: each ends on the login page with a message.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, BASE_URL, launch, openPage, screenshot } from "../lib/browser.js";
import { assertNoPageErrors, signIn, unlabelledControls } from "../lib/ui.js";

describe("session", () => {
  let browser;
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });

  test("a wrong password is refused with a message, and the form stays usable", async () => {
    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/`);
    assert.deepEqual(await unlabelledControls(page), []);
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "username or password is not right" }).waitFor();
    assert.equal(await page.getByLabel("Password").inputValue(), "");
    await screenshot(page, "login-refused");
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("signing in with the keyboard only, then signing out", async () => {
    const page = await openPage(browser);
    await page.goto(`${BASE_URL}/`);
    // The username field has focus on arrival; Tab to the password, Enter submits.
    await page.keyboard.type("admin");
    await page.keyboard.press("Tab");
    await page.keyboard.type(ADMIN_PASSWORD);
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/dashboard\.html#\/patients/);
    await page.getByRole("heading", { level: 1, name: "Patients" }).waitFor();
    await page.getByText("Administrator · Administrator").waitFor();
    const token = await page.evaluate(() => sessionStorage.getItem("hospital.access_token"));
    assert.ok(token && token.split(".").length === 3, "the token is kept in sessionStorage");

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Smart Healthcare System" }).waitFor();
    await page.getByText("You have signed out.").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("hospital.access_token")), null);

    // Without a session the dashboard sends people to the login page.
    await page.goto(`${BASE_URL}/dashboard.html#/staff`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("a token the gateway refuses (401) returns to the login page with a message", async () => {
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    // Spoil the signature: the gateway answers 401 to the next call.
    await page.evaluate(() => {
      const token = sessionStorage.getItem("hospital.access_token");
      sessionStorage.setItem("hospital.access_token", `${token.slice(0, -4)}AAAA`);
    });
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Staff" }).click();
    await page.getByText("Your session is no longer valid. Please sign in again.").waitFor();
    assert.equal(new URL(page.url()).pathname, "/");

    // Signing in again returns to where the session ended.
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Staff" }).waitFor();
    assertNoPageErrors(page);
    await page.context().close();
  });

  test("an expired token returns to the login page with a message", async () => {
    const page = await openPage(browser);
    await signIn(page, "admin", ADMIN_PASSWORD);
    // Pretend the token runs out in a second and a half (the gateway's own expiry is minutes).
    await page.evaluate(() => sessionStorage.setItem("hospital.expires_at", String(Date.now() + 1500)));
    await page.reload();
    await page.getByText("Your session has expired. Please sign in again.").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("hospital.access_token")), null);
    await screenshot(page, "login-expired");
    assertNoPageErrors(page);
    await page.context().close();
  });
});
