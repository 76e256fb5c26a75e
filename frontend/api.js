// What both pages share: the session token and reading the gateway's problem+json errors.

const TOKEN_KEY = "access_token";
const EXPIRES_KEY = "access_token_expires_at";

/** Keeps the token for this browser tab only (sessionStorage ends with the tab). */
export function saveSession(issued) {
  sessionStorage.setItem(TOKEN_KEY, issued.access_token);
  sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + issued.expires_in * 1000));
}

/** The token, or null when there is none or it has expired. */
export function sessionToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
  if (!token || Date.now() >= expiresAt) {
    return null;
  }
  return token;
}

export function endSession() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
}

/** The claims of a JWT (name, role, ...), for display only: the gateway checks the signature. */
export function tokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(payload), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    return JSON.parse(json);
  } catch {
    return {};
  }
}

/** A sentence for the user from an error response: the problem's detail and field errors. */
export async function problemMessage(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    // Not JSON: fall through to the status line.
  }
  if (problem && typeof problem.detail === "string") {
    const fields = Array.isArray(problem.errors)
      ? problem.errors.map((e) => `${e.field} ${e.message}`)
      : [];
    const parts = [problem.detail, ...fields];
    if (problem.request_id && response.status >= 500) {
      parts.push(`(reference ${problem.request_id})`);
    }
    return parts.join(" — ");
  }
  return `The request failed (HTTP ${response.status}).`;
}
