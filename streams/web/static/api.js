// Talking to the worker: the token (kept in sessionStorage, so it dies with the tab), JSON calls with
// `Authorization: Bearer`, and the live stream read with fetch() + ReadableStream (EventSource cannot
// send an Authorization header).

const TOKEN_KEY = "groundswell.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function getJson(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined));
  const url = query.toString() ? `${path}?${query}` : path;
  return readJson(await fetch(url, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" }));
}

export async function postJson(path, body = null) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== null) headers["Content-Type"] = "application/json";
  return readJson(await fetch(path, { method: "POST", headers, body: body === null ? null : JSON.stringify(body) }));
}

// The body of a response as JSON, or an ApiError with the server's message.
export async function readJson(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

// Parses a text/event-stream body into {event, data} objects (https://html.spec.whatwg.org/multipage/server-sent-events.html).
export function parseEvents(buffer) {
  const events = [];
  let rest = buffer;
  let cut;
  while ((cut = rest.indexOf("\n\n")) >= 0) {
    const block = rest.slice(0, cut);
    rest = rest.slice(cut + 2);
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length) events.push({ event, data: JSON.parse(data.join("\n")) });
  }
  return { events, rest };
}

// Keeps the stream open, reconnecting after a pause; `onEvent(name, data)` gets every event,
// `onState(state)` gets "open", "lost" or "refused".
export function openStream(onEvent, onState) {
  let stopped = false;
  let controller = null;

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch("/api/v1/stream", {
          headers: { Authorization: `Bearer ${token()}` },
          signal: controller.signal,
          cache: "no-store",
        });
        if (response.status === 401 || response.status === 403) {
          onState("refused");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
        onState("open");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseEvents(buffer + value.replaceAll("\r\n", "\n"));
          buffer = parsed.rest;
          for (const { event, data } of parsed.events) {
            if (event === "expired") {
              onState("refused");
              return;
            }
            onEvent(event, data);
          }
        }
      } catch (error) {
        if (stopped) return;
      }
      onState("lost");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
