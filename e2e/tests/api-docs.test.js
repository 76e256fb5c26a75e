// The API reference page (/api/docs): Swagger UI from the gateway's own files renders the
// gateway's OpenAPI document under the page Content-Security-Policy, with nothing from
// elsewhere, and "Try it out" calls the API with a token given through "Authorize".

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, BASE_URL, launch, openPage, screenshot } from "../lib/browser.js";
import { login } from "../lib/api.js";
import { assertNoPageErrors } from "../lib/ui.js";

// Swagger UI's stylesheet draws a few small icons as data: URIs, which the page CSP refuses
// (img-src falls back to 'self'); the page works without them.
const DATA_ICONS = /Loading the image 'data:image\/svg\+xml/;

describe("API reference page", () => {
  let browser;

  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });

  test("renders every tag of the document from the gateway's own files, under the CSP", async () => {
    const page = await openPage(browser);
    const elsewhere = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(BASE_URL) && !request.url().startsWith("data:")) {
        elsewhere.push(request.url());
      }
    });
    const response = await page.goto(`${BASE_URL}/api/docs`);
    const csp = response.headers()["content-security-policy"];
    assert.ok(csp, "the page has a Content-Security-Policy");
    assert.doesNotMatch(csp, /unsafe/);
    await page.getByRole("heading", { name: /Smart Healthcare System API/ }).waitFor();
    const document = await (await fetch(`${BASE_URL}/api/openapi.json`)).json();
    for (const tag of document.tags) {
      await page.locator(`#operations-tag-${tag.name}`).waitFor();
    }
    await page.locator("#operations-patients-create_patient").waitFor();
    assert.deepEqual(elsewhere, []);
    await screenshot(page, "api-docs");
    assertNoPageErrors(page, [DATA_ICONS]);
  });

  test("Try it out lists patients with the token given to Authorize", async () => {
    const page = await openPage(browser);
    const token = await login("admin", ADMIN_PASSWORD);
    await page.goto(`${BASE_URL}/api/docs`);
    await page.getByRole("button", { name: /Authorize/ }).first().click();
    const dialog = page.locator(".dialog-ux");
    await dialog.locator("input").first().fill(token);
    await dialog.locator("button.authorize").click();
    await dialog.locator("button.btn-done").click();
    const operation = page.locator("#operations-patients-list_patients");
    await operation.locator(".opblock-summary").click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    const answered = page.waitForResponse((r) => r.url().startsWith(`${BASE_URL}/api/patients`));
    await operation.getByRole("button", { name: "Execute" }).click();
    const reply = await answered;
    assert.equal(reply.status(), 200);
    assert.equal(reply.request().headers().authorization, `Bearer ${token}`);
    await operation.locator(".responses-table .response-col_status").first().waitFor();
    assertNoPageErrors(page, [DATA_ICONS]);
  });
});
