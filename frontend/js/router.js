// The dashboard's hash router: `#/patients/<id>?tab=…` → a view. Each view renders into the main
// region and may return a cleanup function, run when the route changes.

import { liveFeed } from "/js/live.js";
import { debounce } from "/js/dom.js";

/** A route: a pattern such as `/patients/:id`, a title, the nav section it belongs to, a view. */
export function route(pattern, section, view) {
  const names = [];
  const regex = new RegExp(
    `^${pattern.replace(/:([a-z]+)/g, (_, name) => {
      names.push(name);
      return "([^/]+)";
    })}$`,
  );
  return { regex, names, section, view };
}

/** The current location: `{path, query}` from the hash. */
export function currentPlace() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(search)) };
}

/** Goes to a route (`/patients/123`), with an optional query object. */
export function navigate(path, query = {}, { replace = false } = {}) {
  const search = new URLSearchParams(
    Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  ).toString();
  const target = `#${path}${search ? `?${search}` : ""}`;
  if (replace) {
    history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = target;
  }
}

/**
 * Starts routing. `outlet` is the element views render into; `onRoute(section)` marks the nav.
 * `fallback` is where `#/` and unknown routes go.
 */
export function startRouter({ routes, outlet, onRoute, fallback }) {
  let cleanups = [];

  async function render() {
    for (const cleanup of cleanups) {
      cleanup();
    }
    cleanups = [];
    const { path, query } = currentPlace();
    if (path === "/" || path === "") {
      navigate(fallback(), {}, { replace: true });
      return;
    }
    let match = null;
    for (const candidate of routes) {
      const found = candidate.regex.exec(path);
      if (found) {
        const params = {};
        candidate.names.forEach((name, i) => {
          params[name] = decodeURIComponent(found[i + 1]);
        });
        match = { ...candidate, params };
        break;
      }
    }
    outlet.replaceChildren();
    outlet.setAttribute("aria-busy", "true");
    window.scrollTo(0, 0);
    const context = {
      params: match?.params || {},
      query,
      outlet,
      /** Calls `refresh` (debounced) when a live event matches `test(event)`, or on a resync. */
      onLive(test, refresh, ms = 200) {
        const later = debounce(refresh, ms);
        const off = liveFeed.subscribe((event) => {
          if (event.type === "resync" || test(event)) {
            later();
          }
        });
        cleanups.push(() => {
          off();
          later.cancel();
        });
      },
      /** Runs `fn` when the route changes. */
      onLeave(fn) {
        cleanups.push(fn);
      },
    };
    onRoute(match?.section || "");
    try {
      const view = match ? match.view : notFound;
      const cleanup = await view(context);
      if (typeof cleanup === "function") {
        cleanups.push(cleanup);
      }
    } finally {
      outlet.removeAttribute("aria-busy");
    }
    const heading = outlet.querySelector("h1");
    if (heading) {
      document.title = `${heading.textContent} · Smart Healthcare System`;
      heading.setAttribute("tabindex", "-1");
      if (!outlet.contains(document.activeElement) || document.activeElement === document.body) {
        heading.focus({ preventScroll: true });
      }
    }
  }

  window.addEventListener("hashchange", render);
  render();
}

function notFound({ outlet }) {
  const h1 = document.createElement("h1");
  h1.textContent = "Page not found";
  const p = document.createElement("p");
  p.textContent = "There is nothing at this address. Use the navigation above.";
  outlet.append(h1, p);
}
