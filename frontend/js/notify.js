// Announcements: a short message in the page's status region (read by screen readers,
// shown briefly on screen).

let timer = null;

/** Shows and announces `message` (kind: "ok" or "error"). */
export function announce(message, kind = "ok") {
  const region = document.getElementById("announcer");
  if (!region) {
    return;
  }
  region.textContent = message;
  region.dataset.kind = kind;
  region.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => {
    region.hidden = true;
    region.textContent = "";
  }, 6000);
}
