// Launching Debian's Chromium with playwright-core, one page per test, and collecting what the
// page complains about (console errors, CSP violations, failed scripts) so tests can assert none.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BASE_URL = (process.env.E2E_BASE_URL || "http://127.0.0.1:5077").replace(/\/$/, "");
export const ADMIN_PASSWORD = process.env.E2E_ADMIN_PASSWORD || "change-me-at-first-login";
/** The browser's time zone: not UTC, so that local/UTC mistakes show. */
export const TIME_ZONE = process.env.E2E_TIME_ZONE || "Europe/Paris";

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOT_DIR = process.env.E2E_SCREENSHOT_DIR || join(here, "..", "screenshots");

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
}

/**
 * A fresh context (own sessionStorage) and page at laptop size, in TIME_ZONE. `page.problems`
 * collects console errors and uncaught exceptions.
 */
export async function openPage(browser, { width = 1366, height = 900 } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    timezoneId: TIME_ZONE,
    locale: "en-GB",
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (message) => {
    if (message.type() === "error") {
      page.problems.push(`console: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => page.problems.push(`exception: ${error.message}`));
  return page;
}

/** Saves a full-page screenshot as `<name>.png` in the screenshot folder; returns its path. */
export async function screenshot(page, name, { fullPage = true } = {}) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}
