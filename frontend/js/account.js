// The account area of the dashboard: signing out (the gateway revokes the token before this tab
// forgets it) and changing one's own password (the new token replaces the old one in place).

import { api } from "/api.js";
import { h } from "/js/dom.js";
import { openDialog } from "/js/dialogs.js";
import { busy, clearErrors, field, formAlert, showError } from "/js/forms.js";
import { announce } from "/js/notify.js";
import { endSession, saveSession, sessionToken, SIGNED_OUT_MESSAGE } from "/js/session.js";

/** How long sign-out waits for the gateway before leaving anyway. */
const LOGOUT_PATIENCE_MS = 5000;

/**
 * Revokes the token (`POST /auth/logout`), then ends the session. The session ends even when
 * the call fails: a person who signs out must never stay signed in on this screen.
 */
export async function signOut() {
  const token = sessionToken();
  if (token) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), LOGOUT_PATIENCE_MS);
    try {
      await fetch("/auth/logout", {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
        cache: "no-store",
        signal: controller.signal,
      });
    } catch {
      // Unreachable or too slow: the token still expires on its own.
    } finally {
      clearTimeout(timer);
    }
  }
  endSession(SIGNED_OUT_MESSAGE);
}

/**
 * The "Change password" dialog. On success the fresh token is kept (the gateway revoked every
 * other token of this person, this tab's old one included) and `onChanged()` runs, so what
 * holds the old token (the live feed) can reconnect with the new one.
 */
export function openChangePassword({ onChanged } = {}) {
  const save = h("button", { type: "submit" }, "Change password");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Change password" },
    formAlert(),
    field({ name: "current_password", label: "Current password", type: "password", required: true, attrs: { autocomplete: "current-password" } }),
    field({ name: "new_password", label: "New password", type: "password", required: true, hint: "At least 12 characters. A few unrelated words are easy to remember and hard to guess.", attrs: { autocomplete: "new-password" } }),
    field({ name: "confirm_password", label: "Confirm new password", type: "password", required: true, attrs: { autocomplete: "new-password" } }),
    h("div", { class: "actions" }, save, cancel),
  );
  const dialog = openDialog({ title: "Change password", content: form });
  cancel.addEventListener("click", () => dialog.close("cancel"));
  form.elements.namedItem("current_password").focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const value = (name) => form.elements.namedItem(name).value;
    // What can be told without asking the server; the strength rules are the server's.
    const missing = [];
    if (!value("current_password")) {
      missing.push({ field: "current_password", message: "is required" });
    }
    if (!value("new_password")) {
      missing.push({ field: "new_password", message: "is required" });
    } else if (value("confirm_password") !== value("new_password")) {
      missing.push({ field: "confirm_password", message: "must be the same as the new password" });
    }
    if (missing.length) {
      await showError(form, { status: 422, errors: missing });
      return;
    }
    await busy(form, save, async () => {
      try {
        const issued = await api.post("/auth/password", {
          current_password: value("current_password"),
          new_password: value("new_password"),
        });
        saveSession(issued);
        onChanged?.();
        dialog.close("changed");
        announce("Your password has been changed. Any other sessions of yours were signed out.");
      } catch (error) {
        await showError(form, error);
      }
    });
  });
  return dialog;
}
