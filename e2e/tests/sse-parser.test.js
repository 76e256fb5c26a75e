// The browser's SSE parser (frontend/js/sse.js) on the shapes the gateway sends and the ways a
// network splits them. Pure JavaScript: runs in Node without a browser.

import { test } from "node:test";
import assert from "node:assert/strict";
import { sseParser } from "../../frontend/js/sse.js";

function collect(chunks) {
  const messages = [];
  const retries = [];
  const push = sseParser((message) => messages.push(message), (ms) => retries.push(ms));
  for (const chunk of chunks) {
    push(chunk);
  }
  return { messages, retries };
}

const envelope = JSON.stringify({ type: "patient.created", aggregate: "patient", data: { name: "Grace Hopper" } });
const stream = `event: ready\ndata: {"last_sequence":1}\n\n: keep-alive\n\nid: 2\nevent: patient.created\ndata: ${envelope}\n\n`;

test("ready, a keep-alive comment and an event", () => {
  const { messages } = collect([stream]);
  assert.deepEqual(messages, [
    { id: null, event: "ready", data: '{"last_sequence":1}' },
    { id: "2", event: "patient.created", data: envelope },
  ]);
});

test("the same stream split at every possible byte gives the same messages", () => {
  const whole = collect([stream]).messages;
  for (const text of [stream, stream.replace(/\n/g, "\r\n"), stream.replace(/\n/g, "\r")]) {
    for (let cut = 1; cut < text.length; cut += 1) {
      assert.deepEqual(collect([text.slice(0, cut), text.slice(cut)]).messages, whole, `split at ${cut}`);
    }
  }
});

test("CRLF and CR line endings, also split between CR and LF", () => {
  const crlf = "id: 7\r\nevent: staff.updated\r\ndata: {}\r\n\r\n";
  assert.deepEqual(collect([crlf]).messages, [{ id: "7", event: "staff.updated", data: "{}" }]);
  assert.deepEqual(collect(["id: 7\r", "", "\nevent: staff.updated\r\ndata: {}\r", "\n\r", "\n"]).messages,
    [{ id: "7", event: "staff.updated", data: "{}" }]);
  assert.deepEqual(collect(["data: a\rdata: b\r\r"]).messages, [{ id: null, event: "message", data: "a\nb" }]);
});

test("several data lines are joined, retry is reported, unknown fields are ignored", () => {
  const { messages, retries } = collect(["retry: 3000\nfoo: bar\ndata: one\ndata:two\n\n"]);
  assert.deepEqual(messages, [{ id: null, event: "message", data: "one\ntwo" }]);
  assert.deepEqual(retries, [3000]);
});

test("the last id carries over to later messages without one; a message without data is not sent", () => {
  const { messages } = collect(["id: 5\nevent: x\n\nevent: y\ndata: 1\n\n"]);
  assert.deepEqual(messages, [{ id: "5", event: "y", data: "1" }]);
});
