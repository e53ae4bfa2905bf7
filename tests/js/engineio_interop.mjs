// Drives the official `engine.io-client` against an Engine.IO echo server
// (`examples/engineio_echo.rs`).
//
// Usage:
//   node engineio_interop.mjs polling   <url>
//   node engineio_interop.mjs websocket <url>
//   node engineio_interop.mjs upgrade   <url>
//   node engineio_interop.mjs heartbeat <url> <ms> <polling|websocket>
//
// On success prints one JSON summary line to stdout and exits 0. On any failure
// (including the overall timeout) prints the reason to stderr and exits 1.
// Set DEBUG=engine* to see the client's own trace.

import { randomBytes } from "node:crypto";
import { Socket } from "engine.io-client";

const OVERALL_TIMEOUT_MS = 10_000;
// After `socket.close()`, every connection the client opened (pending poll,
// close POST, WebSocket close handshake) must finish within this time, i.e.
// the server must answer them and let them end.
const DRAIN_TIMEOUT_MS = 3_000;

const [mode, url, ...rest] = process.argv.slice(2);
const started = Date.now();
let finished = false;

function fail(reason) {
  if (finished) return;
  finished = true;
  process.stderr.write(
    `engineio_interop ${mode} FAILED after ${Date.now() - started} ms: ${reason}\n`,
  );
  process.exit(1);
}

function usage() {
  fail(
    "usage: node engineio_interop.mjs <polling|websocket|upgrade> <url>\n" +
      "       node engineio_interop.mjs heartbeat <url> <ms> <polling|websocket>",
  );
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));

if (!url || !/^https?:\/\//.test(url)) usage();

let transports;
let heartbeatMs = 0;
switch (mode) {
  case "polling":
    transports = ["polling"];
    break;
  case "websocket":
    transports = ["websocket"];
    break;
  case "upgrade":
    transports = ["polling", "websocket"];
    break;
  case "heartbeat": {
    heartbeatMs = Number(rest[0]);
    if (!Number.isInteger(heartbeatMs) || heartbeatMs <= 0) usage();
    if (rest[1] !== "polling" && rest[1] !== "websocket") usage();
    transports = [rest[1]];
    break;
  }
  default:
    usage();
}

const overallTimer = setTimeout(
  () => fail(`overall timeout (${OVERALL_TIMEOUT_MS + heartbeatMs} ms); progress: ${progress}`),
  OVERALL_TIMEOUT_MS + heartbeatMs,
);
let progress = "connecting";

// ---------------------------------------------------------------------------
// Helpers

const isBinary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);

/** Normalizes whatever binary the client hands out (Buffer, ArrayBuffer, view) to a Uint8Array. */
function toBytes(v) {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new Error(`not binary: ${describe(v)}`);
}

function describe(v) {
  if (v === undefined) return "undefined";
  if (typeof v === "string") {
    const shown = v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}...` : JSON.stringify(v);
    return `string(${v.length} chars) ${shown}`;
  }
  if (isBinary(v)) {
    const b = toBytes(v);
    const head = Buffer.from(b.subarray(0, 16)).toString("hex");
    return `${v.constructor?.name ?? "binary"}(${b.byteLength} bytes) ${head}${b.byteLength > 16 ? "..." : ""}`;
  }
  return `${typeof v} ${String(v)}`;
}

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** Returns null if `got` is an exact echo of `sent`, else a description of the mismatch. */
function compareEcho(sent, got) {
  if (typeof sent === "string") {
    // engine.io-parser decodes the one-character packet "4" (a message with
    // empty text) as a message whose data is `undefined`; on the wire that is
    // exactly the echo of an empty string, so accept it for that case only.
    if (sent === "" && got === undefined) return null;
    if (typeof got !== "string") return `sent text ${describe(sent)}, got ${describe(got)}`;
    if (got !== sent) {
      const i = firstDifference(sent, got);
      return (
        `text differs at char ${i}: sent ${describe(sent)}, got ${describe(got)}; ` +
        `around there sent ${JSON.stringify(sent.slice(i, i + 20))}, got ${JSON.stringify(got.slice(i, i + 20))}`
      );
    }
    return null;
  }
  if (!isBinary(got)) return `sent binary ${describe(sent)}, got ${describe(got)}`;
  const a = toBytes(sent);
  const b = toBytes(got);
  if (a.byteLength !== b.byteLength) {
    return `binary length differs: sent ${describe(sent)}, got ${describe(got)}`;
  }
  const i = firstDifference(a, b);
  if (i !== a.byteLength) {
    return `binary differs at byte ${i}: sent 0x${a[i].toString(16)}, got 0x${b[i].toString(16)} (${describe(got)})`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// The socket and a queue of received messages

const socket = new Socket(url, {
  transports,
  upgrade: mode === "upgrade",
  path: "/engine.io/",
});

let handshake = null;
let openTransport = null;
let upgraded = false;
let closingOnPurpose = false;
let pings = 0;
const pingTimes = [];

const inbox = [];
let waiter = null;

socket.on("handshake", (data) => {
  handshake = data;
});
socket.on("message", (data) => {
  inbox.push(data);
  if (waiter) {
    const w = waiter;
    waiter = null;
    w();
  }
});
socket.on("ping", () => {
  pings += 1;
  pingTimes.push(Date.now());
});
socket.on("error", (err) => {
  if (!closingOnPurpose) {
    fail(
      `socket error while ${progress}: ${err?.message ?? err}` +
        (err?.code !== undefined ? ` (code ${JSON.stringify(err.code)})` : "") +
        (err?.description !== undefined ? ` (description ${describe(err.description?.message ?? err.description)})` : "") +
        (err?.context?.responseText !== undefined ? ` (response ${describe(err.context.responseText)})` : ""),
    );
  }
});
socket.on("upgradeError", (err) => fail(`upgrade error: ${err?.stack ?? err}`));
socket.on("close", (reason, description) => {
  if (!closingOnPurpose) {
    fail(
      `socket closed unexpectedly (reason ${JSON.stringify(reason)}, description ${describe(
        description?.message ?? description?.description ?? description,
      )}) while ${progress}`,
    );
  }
});

function nextMessage(what) {
  if (inbox.length) return Promise.resolve(inbox.shift());
  progress = `waiting for ${what}`;
  return new Promise((resolve) => {
    waiter = () => resolve(inbox.shift());
  });
}

function once(event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function checkHandshake(expectedTransport) {
  if (!handshake) throw new Error("no handshake event before open");
  if (typeof socket.id !== "string" || socket.id.length === 0) {
    throw new Error(`socket.id is not a non-empty string: ${describe(socket.id)}`);
  }
  if (handshake.sid !== socket.id) {
    throw new Error(`handshake sid ${describe(handshake.sid)} != socket.id ${describe(socket.id)}`);
  }
  for (const k of ["pingInterval", "pingTimeout", "maxPayload"]) {
    if (!Number.isInteger(handshake[k]) || handshake[k] <= 0) {
      throw new Error(`handshake ${k} is not a positive integer: ${JSON.stringify(handshake)}`);
    }
  }
  if (!Array.isArray(handshake.upgrades)) {
    throw new Error(`handshake upgrades is not an array: ${JSON.stringify(handshake)}`);
  }
  if (expectedTransport === "polling") {
    if (!handshake.upgrades.includes("websocket")) {
      throw new Error(
        `a polling handshake must offer the websocket upgrade: ${JSON.stringify(handshake)}`,
      );
    }
  } else if (handshake.upgrades.length !== 0) {
    throw new Error(
      `a websocket handshake has nothing to upgrade to, upgrades must be []: ${JSON.stringify(handshake)}`,
    );
  }
}

// ---------------------------------------------------------------------------
// Test data

const bytes0to255 = Buffer.alloc(256);
for (let i = 0; i < 256; i++) bytes0to255[i] = i;
const u8_0to255 = new Uint8Array(256);
for (let i = 0; i < 256; i++) u8_0to255[i] = 255 - i;

// 100 KiB of text: ASCII with a position marker every 100 chars so a shifted
// or truncated echo is easy to spot.
let big = "";
for (let i = 0; big.length < 100 * 1024; i++) {
  big += `[${String(i).padStart(6, "0")}]` + "abcdefghijklmnopqrstuvwxyz0123456789".repeat(3).slice(0, 92);
}
big = big.slice(0, 100 * 1024);

// ~30 KB of multi-byte text (2, 3 and 4 byte UTF-8 sequences).
const bigUnicode = "héllo 🌍 日本語 ".repeat(1500);

const MESSAGES = [
  ["ascii", "hello"],
  ["unicode", "héllo 🌍"],
  ["empty text", ""],
  ["text that looks like a packet type", "2probe"],
  ["text that looks like base64 binary", "bAAECAw=="],
  ["single char b", "b"],
  ["json-ish text", '{"sid":"x","a":[1,2,3]}'],
  ["control chars", "line1\nline2\r\n\t\"quoted\" \\ back\u0000nul"],
  ["100 KiB text", big],
  ["multi-byte text", bigUnicode],
  ["Buffer 0..255", bytes0to255],
  ["Uint8Array 255..0", u8_0to255],
  ["empty binary", new Uint8Array(0)],
  ["64 KiB random binary", randomBytes(64 * 1024)],
  ["binary made of '4' bytes", Buffer.from("4hello", "utf8")],
];

async function exchangeOneByOne() {
  let bytes = 0;
  for (const [name, msg] of MESSAGES) {
    progress = `echo of ${name}`;
    socket.send(msg);
    const got = await nextMessage(name);
    const err = compareEcho(msg, got);
    if (err) throw new Error(`${name}: ${err}`);
    bytes += typeof msg === "string" ? Buffer.byteLength(msg) : msg.byteLength;
  }
  return bytes;
}

async function exchangeBurst(label, list) {
  progress = `burst ${label}`;
  for (const m of list) socket.send(m);
  for (let i = 0; i < list.length; i++) {
    const got = await nextMessage(`${label} #${i}`);
    const err = compareEcho(list[i], got);
    if (err) throw new Error(`${label}: message #${i} of ${list.length} (order or content): ${err}`);
  }
}

async function checkStillOnTransport(name) {
  if (socket.transport.name !== name) {
    throw new Error(`expected transport ${name}, now on ${socket.transport.name}`);
  }
}

// Closes the socket and waits until every connection the client made is over.
async function closeCleanly() {
  progress = "closing";
  const tr = socket.transport;
  const rawWs = tr.name === "websocket" ? tr.ws : null;
  let wsClose = rawWs ? undefined : null;
  if (rawWs) rawWs.on("close", (code, reason) => (wsClose = { code, reason: String(reason) }));
  closingOnPurpose = true;
  const closed = once("close");
  socket.close();
  // socket.close() detached its own listeners from the transport; watch the
  // requests that are still in flight (the close POST, the pending GET).
  tr.on("error", (e) =>
    fail(`transport error after close(): ${e?.message ?? e} ${describe(e?.description)} ${e?.context?.responseText ?? ""}`),
  );
  const [reason] = await closed;
  if (reason !== "forced close") throw new Error(`close reason ${JSON.stringify(reason)}`);
  clearTimeout(overallTimer);
  // The process may now only exit once its event loop is empty: every request
  // answered, every socket closed. An unref'ed timer does not keep it alive.
  setTimeout(() => {
    const handles = process
      ._getActiveHandles()
      .map((h) => h?.constructor?.name + (h?.remotePort ? `:${h.remotePort}` : ""));
    fail(
      `connections still open ${DRAIN_TIMEOUT_MS} ms after close(): ${handles.join(", ")}` +
        (rawWs ? `; websocket readyState ${rawWs.readyState} (2 = CLOSING: no close frame back?)` : ""),
    );
  }, DRAIN_TIMEOUT_MS).unref();
  return () => wsClose;
}

function finish(summary, wsCloseInfo) {
  process.once("beforeExit", () => {
    if (finished) return;
    const ws = wsCloseInfo();
    if (ws === undefined) fail("the websocket never reported its close");
    finished = true;
    if (ws) summary.wsClose = ws;
    summary.ms = Date.now() - started;
    process.stdout.write(JSON.stringify(summary) + "\n");
    process.exit(0);
  });
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  await once("open");
  openTransport = socket.transport.name;
  progress = `open on ${openTransport}`;
  const expectedStart = mode === "heartbeat" ? transports[0] : mode === "upgrade" ? "polling" : transports[0];
  if (openTransport !== expectedStart) {
    throw new Error(`opened on ${openTransport}, expected ${expectedStart}`);
  }
  checkHandshake(openTransport);

  const summary = {
    ok: true,
    mode,
    sid: socket.id,
    openTransport,
    handshake,
  };

  if (mode === "heartbeat") {
    progress = `staying connected ${heartbeatMs} ms`;
    await sleep(heartbeatMs);
    await checkStillOnTransport(transports[0]);
    const expected = heartbeatMs / handshake.pingInterval;
    // The server pings pingInterval after the previous pong (or at a fixed
    // rate); allow for the first interval and scheduling slack, but not for
    // missing heartbeats or a ping flood.
    const min = Math.max(1, Math.floor(expected) - 2);
    const max = Math.floor(expected) + 2;
    if (pings < min || pings > max) {
      throw new Error(
        `${pings} pings in ${heartbeatMs} ms with pingInterval ${handshake.pingInterval}; expected ${min}..${max}` +
          ` (at ${pingTimes.map((t) => t - started).join(", ")} ms)`,
      );
    }
    const err = await echoAfterHeartbeat();
    if (err) throw new Error(err);
    summary.pings = pings;
    summary.pingAtMs = pingTimes.map((t) => t - started);
    summary.transport = socket.transport.name;
    const wsInfo = await closeCleanly();
    finish(summary, wsInfo);
    return;
  }

  if (mode === "upgrade") {
    // Like a Socket.IO client sending its CONNECT packet, send one message
    // right away on polling, while the upgrade is being probed.
    const early = "sent on polling before the upgrade";
    socket.send(early);
    progress = "waiting for the upgrade";
    if (!upgraded) await once("upgrade");
    if (socket.transport.name !== "websocket") {
      throw new Error(`upgrade event fired but transport is ${socket.transport.name}`);
    }
    for (const [name, sent] of [
      ["pre-upgrade message", early],
      ["message sent while upgrading", WHILE_UPGRADING],
    ]) {
      const err = compareEcho(sent, await nextMessage(name));
      if (err) throw new Error(`${name}: ${err}`);
    }
  }

  const finalTransport = mode === "polling" ? "polling" : "websocket";
  await checkStillOnTransport(finalTransport);
  const bytes = await exchangeOneByOne();

  const small = Array.from({ length: 50 }, (_, i) => `msg ${i} ${"x".repeat(i)}`);
  await exchangeBurst("50 small texts", small);
  await exchangeBurst(
    "everything at once",
    MESSAGES.map(([, m]) => m),
  );
  await exchangeBurst(
    "interleaved text and binary",
    Array.from({ length: 40 }, (_, i) => (i % 2 ? Buffer.from([i, i + 1, i + 2]) : `t${i}`)),
  );
  await checkStillOnTransport(finalTransport);
  if (inbox.length) throw new Error(`${inbox.length} unexpected extra messages: ${describe(inbox[0])}`);

  summary.transport = socket.transport.name;
  summary.upgraded = upgraded;
  summary.messages = MESSAGES.length * 2 + 50 + 40 + (mode === "upgrade" ? 2 : 0);
  summary.bytesOneByOne = bytes;
  const wsInfo = await closeCleanly();
  finish(summary, wsInfo);
}

async function echoAfterHeartbeat() {
  progress = "echo after heartbeat";
  for (const m of ["still here", Buffer.from([0, 1, 2, 253, 254, 255])]) {
    socket.send(m);
    const err = compareEcho(m, await nextMessage("echo after heartbeat"));
    if (err) return `echo after the heartbeat period: ${err}`;
  }
  if (inbox.length) return `${inbox.length} unexpected extra messages: ${describe(inbox[0])}`;
  return null;
}

// A message sent between the probe's pong and the switch is buffered by the
// client and written right behind the "5" (upgrade) packet. To make that
// deterministic, the probe WebSocket's TCP socket is corked from the
// "upgrading" event until just after the switch, so "5" and this message leave
// in ONE write (the bytes are unchanged; only their TCP segmentation is
// fixed). A server has to take frames after "5" as packets of the upgraded
// session, however they are segmented.
const WHILE_UPGRADING = "sent while upgrading";
let corked = null;
socket.on("upgrading", (probe) => {
  corked = probe?.ws?._socket ?? null;
  if (!corked || typeof corked.cork !== "function") {
    fail("cannot reach the probe WebSocket's TCP socket (ws internals changed?)");
    return;
  }
  corked.cork();
  socket.send(WHILE_UPGRADING);
});
socket.on("upgrade", () => {
  upgraded = true;
  if (mode !== "upgrade") fail(`unexpected upgrade in mode ${mode}`);
  if (corked) {
    const c = corked;
    corked = null;
    setImmediate(() => c.uncork());
  }
});

main().catch((e) => fail(e?.stack ?? String(e)));
