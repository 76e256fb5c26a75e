// The session: the access token for this tab (sessionStorage), its claims, its expiry, and the
// way back to the login page with a message when it ends.

const TOKEN_KEY = "hospital.access_token";
const EXPIRES_KEY = "hospital.expires_at";
const NOTICE_KEY = "hospital.login_notice";
const RETURN_KEY = "hospital.return_to";

/** Keeps a freshly issued token (`{access_token, expires_in}`) for this tab only. */
export function saveSession(issued) {
  sessionStorage.setItem(TOKEN_KEY, issued.access_token);
  const byLifetime = Date.now() + Number(issued.expires_in || 0) * 1000;
  const claims = decodeClaims(issued.access_token);
  const byClaim = claims.exp ? claims.exp * 1000 : byLifetime;
  sessionStorage.setItem(EXPIRES_KEY, String(Math.min(byLifetime, byClaim)));
  sessionStorage.removeItem(NOTICE_KEY);
}

/** The token, or null when there is none or it has expired. */
export function sessionToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token || Date.now() >= expiresAt()) {
    return null;
  }
  return token;
}

/** Whether this tab holds a token at all (valid or expired). */
export function hasStoredToken() {
  return sessionStorage.getItem(TOKEN_KEY) !== null;
}

/** When the token stops being valid (ms since the epoch); 0 without one. */
export function expiresAt() {
  return Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
}

/** Who is signed in: `{id, name, role}` from the token (for display and UI choices only;
 * the gateway checks the signature and decides what is allowed). */
export function currentUser() {
  const claims = decodeClaims(sessionStorage.getItem(TOKEN_KEY) || "");
  return { id: claims.sub || "", name: claims.name || "", role: claims.role || "" };
}

/** The payload of a JWT, or `{}` when it cannot be read. */
export function decodeClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

const endListeners = new Set();

/** Runs `listener` just before the session ends (to close the live feed, for example). */
export function onSessionEnd(listener) {
  endListeners.add(listener);
  return () => endListeners.delete(listener);
}

let ending = false;

/**
 * Forgets the token and returns to the login page, which shows `message`. Called on logout, on
 * expiry and on any 401. With `keepPlace`, the login page comes back here afterwards.
 */
export function endSession(message, { keepPlace = false } = {}) {
  if (ending) {
    return;
  }
  ending = true;
  for (const listener of endListeners) {
    try {
      listener();
    } catch {
      // Leaving anyway.
    }
  }
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
  if (message) {
    sessionStorage.setItem(NOTICE_KEY, message);
  }
  if (keepPlace && location.hash.length > 1) {
    sessionStorage.setItem(RETURN_KEY, location.hash);
  } else {
    sessionStorage.removeItem(RETURN_KEY);
  }
  location.replace("/");
}

export const EXPIRED_MESSAGE = "Your session has expired. Please sign in again.";
export const REJECTED_MESSAGE = "Your session is no longer valid. Please sign in again.";
export const SIGNED_OUT_MESSAGE = "You have signed out.";

/** Ends the session when the token expires (checked every few seconds, so a laptop that slept
 * past the expiry is caught too). */
export function watchExpiry() {
  const timer = setInterval(() => {
    if (!sessionToken()) {
      clearInterval(timer);
      endSession(EXPIRED_MESSAGE, { keepPlace: true });
    }
  }, 5000);
  const remaining = expiresAt() - Date.now();
  if (remaining > 0 && remaining < 2 ** 31) {
    setTimeout(() => {
      if (!sessionToken()) {
        endSession(EXPIRED_MESSAGE, { keepPlace: true });
      }
    }, remaining + 50);
  }
}

/** The message the login page shows once (why the last session ended), and forgets it. */
export function takeLoginNotice() {
  const message = sessionStorage.getItem(NOTICE_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  return message;
}

/** Where to go after logging in: the page the expired session was on, else the dashboard. */
export function takeReturnPlace() {
  const hash = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  return hash && hash.startsWith("#/") ? `/dashboard.html${hash}` : "/dashboard.html";
}
