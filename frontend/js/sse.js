// A Server-Sent Events parser for a stream read with fetch() (the WHATWG event-stream format):
// `id:`, `event:`, `data:` (several lines joined), `retry:`, comments, any line ending.

/**
 * Returns `push(text)`: feed it decoded chunks as they arrive; it calls
 * `onMessage({id, event, data})` for each complete message and `onRetry(ms)` for `retry:`.
 */
export function sseParser(onMessage, onRetry = () => {}) {
  let buffer = "";
  let data = [];
  let event = "";
  let id = null;
  let sawField = false;

  function dispatch() {
    if (sawField && data.length > 0) {
      onMessage({ id, event: event || "message", data: data.join("\n") });
    }
    data = [];
    event = "";
    sawField = false;
    // `id` persists across messages, as the format says (the last event id).
  }

  function line(text) {
    if (text === "") {
      dispatch();
      return;
    }
    if (text.startsWith(":")) {
      return; // a comment (keep-alive)
    }
    const colon = text.indexOf(":");
    const name = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    sawField = true;
    switch (name) {
      case "data":
        data.push(value);
        break;
      case "event":
        event = value;
        break;
      case "id":
        if (!value.includes("\0")) {
          id = value;
        }
        break;
      case "retry":
        if (/^\d+$/.test(value)) {
          onRetry(Number(value));
        }
        break;
      default:
        break;
    }
  }

  let skipLineFeed = false; // the last line ended in a CR: a LF right after it belongs to it

  return function push(chunk) {
    buffer += chunk;
    if (buffer === "") {
      return;
    }
    if (skipLineFeed && buffer.startsWith("\n")) {
      buffer = buffer.slice(1);
    }
    skipLineFeed = false;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (!match) {
        break;
      }
      line(buffer.slice(0, match.index));
      buffer = buffer.slice(match.index + match[0].length);
      if (match[0] === "\r" && buffer === "") {
        skipLineFeed = true;
      }
    }
  };
}
