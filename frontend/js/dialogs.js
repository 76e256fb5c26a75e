// Modal dialogs on the native <dialog> element (focus is kept inside, Escape closes, focus
// returns to the control that opened it).

import { h } from "/js/dom.js";

/**
 * Opens a modal with `title` and `content` (nodes). Resolves when it closes with its
 * `returnValue`. `build(dialog)` may wire buttons; a button with `value` in a
 * `<form method="dialog">` closes it with that value.
 */
export function openDialog({ title, content, className = "", labelledBy }) {
  const titleId = labelledBy || `dialog-title-${Math.random().toString(36).slice(2)}`;
  const dialog = h("dialog", { class: ["dialog", className], "aria-labelledby": titleId },
    h("h2", { id: titleId, class: "dialog-title" }, title),
    content,
  );
  const opener = document.activeElement;
  document.body.append(dialog);
  const closed = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue);
      dialog.remove();
      if (opener && opener.isConnected) {
        opener.focus();
      }
    });
  });
  dialog.showModal();
  dialog.closed = closed;
  return dialog;
}

/**
 * Asks a yes/no question. Resolves to `{confirmed, reason}`; with `askReason`, a text field
 * (labelled `reasonLabel`) is offered.
 */
export async function confirmAction({ title, message, confirmLabel, cancelLabel = "Keep it", danger = false, askReason = false, reasonLabel = "Reason (optional)" }) {
  const reasonId = `reason-${Math.random().toString(36).slice(2)}`;
  const reason = askReason ? h("input", { id: reasonId, name: "reason", type: "text", autocomplete: "off" }) : null;
  const form = h("form", { method: "dialog", class: "dialog-form" },
    h("p", {}, message),
    askReason ? h("div", { class: "field" }, h("label", { for: reasonId }, reasonLabel), reason) : null,
    h("div", { class: "actions" },
      h("button", { type: "submit", value: "confirm", class: danger ? "danger" : "" }, confirmLabel),
      // For a destructive step the safe answer has the focus, so Enter does no harm.
      h("button", { type: "submit", value: "cancel", class: "secondary", formnovalidate: true, autofocus: danger && !askReason }, cancelLabel),
    ),
  );
  const dialog = openDialog({ title, content: form });
  const value = await dialog.closed;
  return { confirmed: value === "confirm", reason: reason ? reason.value.trim() : "" };
}
