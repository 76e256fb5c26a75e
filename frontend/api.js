// The API client: every call to the gateway goes through here. It adds the token, sends and reads
// JSON, turns problem+json answers into ApiError (with the field errors), follows paging links,
// and ends the session on a 401.

import { endSession, REJECTED_MESSAGE, sessionToken, EXPIRED_MESSAGE } from "/js/session.js";
import { formatWait } from "/js/format.js";

/** An answer that was not 2xx, read from the gateway's problem document. */
export class ApiError extends Error {
  constructor(status, problem = {}, { retryAfter = null } = {}) {
    super(problem.detail || problem.title || `The request failed (HTTP ${status}).`);
    this.name = "ApiError";
    this.status = status;
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    /** `[{field, message}]`, field names as the API spells them (`vitals.pulse_bpm`). */
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.requestId = problem.request_id || "";
    /** Seconds to wait, from `Retry-After` (429, 503), or null. */
    this.retryAfter = retryAfter;
  }

  /** A sentence for people (the request id is added for server faults, to quote to support). */
  get userMessage() {
    if (this.status === 0) {
      return "The server could not be reached. Check the connection and try again.";
    }
    if (this.status === 412) {
      return "Someone else changed this in the meantime. Reload to see their change, then try again.";
    }
    if (this.status === 403) {
      // The gateway says which rule refused it ("a nurse may not delete patients").
      return this.detail
        ? `Your role does not allow this: ${this.detail}.`
        : "Your role does not allow this.";
    }
    if (this.status === 429) {
      return this.retryAfter
        ? `Too many attempts. Try again in ${formatWait(this.retryAfter)}.`
        : "Too many attempts. Wait a few minutes, then try again.";
    }
    const text = this.detail || this.title || `The request failed (HTTP ${this.status}).`;
    const sentence = text.charAt(0).toUpperCase() + text.slice(1);
    return this.status >= 500 && this.requestId
      ? `${sentence} (reference ${this.requestId})`
      : sentence;
  }
}

/** Thrown instead of returning when the session ended (the page is leaving for the login). */
export class SessionEnded extends Error {
  constructor() {
    super("The session has ended.");
    this.name = "SessionEnded";
  }
}

/** The seconds of a `Retry-After: <seconds>` header, or null. */
export function retryAfterSeconds(response) {
  const seconds = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : null;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function queryString(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** The URL of `Link: <...>; rel="next"`, if any. */
export function nextLink(response) {
  const link = response.headers.get("Link") || "";
  for (const part of link.split(",")) {
    const match = part.match(/<([^>]+)>\s*;\s*rel="?next"?/);
    if (match) {
      return match[1];
    }
  }
  return null;
}

/** The authorization headers for a call with the current token (ends the session without one). */
export function authHeaders() {
  const token = sessionToken();
  if (!token) {
    endSession(EXPIRED_MESSAGE, { keepPlace: true });
    throw new SessionEnded();
  }
  return { Authorization: `Bearer ${token}` };
}

/**
 * One call. Resolves to `{data, etag, next, status}`; rejects with ApiError (or SessionEnded).
 * `ifMatch` is the version the change is based on (sent as `If-Match: "<version>"`).
 */
export async function request(method, path, { body, ifMatch, signal } = {}) {
  const headers = { ...authHeaders(), Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (ifMatch !== undefined && ifMatch !== null) {
    headers["If-Match"] = `"${ifMatch}"`;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") {
      throw error;
    }
    throw new ApiError(0, {});
  }
  if (response.status === 401) {
    endSession(REJECTED_MESSAGE, { keepPlace: true });
    throw new SessionEnded();
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // Not a problem document: the status says enough.
    }
    throw new ApiError(response.status, problem, { retryAfter: retryAfterSeconds(response) });
  }
  const text = response.status === 204 ? "" : await response.text();
  return {
    data: text ? JSON.parse(text) : null,
    etag: response.headers.get("ETag"),
    next: nextLink(response),
    status: response.status,
  };
}

export const api = {
  get: (path, options) => request("GET", path, options).then((r) => r.data),
  post: (path, body, options) => request("POST", path, { ...options, body }).then((r) => r.data),
  put: (path, body, options) => request("PUT", path, { ...options, body }).then((r) => r.data),
  del: (path, options) => request("DELETE", path, options).then((r) => r.data),

  /** One page of a list: `{items, next}` (`next` is the URL of the following page or null). */
  async page(path, options) {
    const reply = await request("GET", path, options);
    return { items: reply.data || [], next: reply.next };
  },

  /** Every item of a list, following the pages (at most `maxPages`). */
  async all(path, { maxPages = 20, ...options } = {}) {
    const items = [];
    let url = path;
    for (let page = 0; url && page < maxPages; page += 1) {
      const reply = await this.page(url, options);
      items.push(...reply.items);
      url = reply.next;
    }
    return items;
  },
};

/** True when `error` only means the page is going away (no message to show). */
export function isQuiet(error) {
  return error instanceof SessionEnded || error?.name === "AbortError";
}
