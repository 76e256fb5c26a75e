// The API as another client uses it (Node's fetch): to set up data and to make changes behind
// the browser's back.

import http from "node:http";
import { BASE_URL, ADMIN_PASSWORD } from "./browser.js";

export async function login(username, password) {
  const response = await fetch(`${BASE_URL}/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) {
    throw new Error(`login ${username}: ${response.status} ${await response.text()}`);
  }
  return (await response.json()).access_token;
}

/** A client for one user: `client.post("/api/patients", {...})` returns the parsed body. */
export async function client(username = "admin", password = ADMIN_PASSWORD) {
  const token = await login(username, password);
  async function call(method, path, body) {
    const response = await fetch(`${BASE_URL}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`${method} ${path}: ${response.status} ${text}`);
    }
    return text ? JSON.parse(text) : null;
  }
  return {
    token,
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    put: (path, body) => call("PUT", path, body),
    del: (path) => call("DELETE", path),
  };
}

/** A short unique suffix, so tests sharing one system never collide. */
export function unique() {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A word of letters only (names are searched by word prefix). */
export function uniqueWord() {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  let word = "";
  for (let i = 0; i < 8; i += 1) {
    word += letters[Math.floor(Math.random() * letters.length)];
  }
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Creates a staff member with a login; returns it with its password. */
export async function createStaff(admin, { role, name, specialization = null }) {
  const username = `${role}.${unique()}`;
  const password = `a long password ${unique()}`;
  const person = await admin.post("/api/staff", { name, role, specialization, username, password });
  return { ...person, password };
}

/**
 * `POST /auth/login` from another loopback address (`127.0.0.2`, ...). Failed logins count
 * against the client address too, and every other test signs in from 127.0.0.1: failures made
 * on purpose come from elsewhere so they never lock the other tests out. Resolves to
 * `{status, headers, body}`.
 */
export function loginFrom(localAddress, username, password) {
  const url = new URL(`${BASE_URL}/auth/login`);
  const body = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      localAddress,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
    }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => { text += chunk; });
      response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, body: text ? JSON.parse(text) : null }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** The status of `GET path` with `token` (to see whether the gateway still accepts a token). */
export async function statusWith(token, path = "/api/patients") {
  const response = await fetch(`${BASE_URL}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}
