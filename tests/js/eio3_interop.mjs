// Drives `socket.io-client@2` (Engine.IO 3, Socket.IO protocol 4; installed as the npm alias
// `socket.io-client-v2`) against the Socket.IO testbed started with `--allow-eio3`
// (`examples/sio_testbed.rs`; its doc comment lists the events it handles).
//
// Usage: node eio3_interop.mjs <mode> <url> [args...]
//
//   exchange <polling|polling-b64|websocket|default>
//                 two clients on one transport (`polling-b64`: with `forceBase64`, so binary
//                 goes as `b4` + base64; `default`: polling, then the upgrade, which is
//                 checked): `/` joined without a CONNECT, ids as Node gives them (the
//                 Engine.IO id on `/`, `/admin#<id>` elsewhere), events both ways, acks
//                 both ways, binary both ways (events, acks, a relay to a room), rooms and
//                 broadcasts, a namespace with its auth in the CONNECT's query, and a
//                 refused namespace whose error is the middleware's data
//   heartbeat     the client pings (the server has short intervals): still connected and
//                 answering after several ping intervals, over polling and over WebSocket
//
// On success prints one JSON summary line (`{"ok":true,...}`) to stdout and exits 0. On any
// failure (including the overall timeout) prints the reason to stderr and exits 1.
// Set DEBUG=socket.io-client*,engine.io-client* for the client's own trace.

import { createRequire } from "node:module";
import { diff, show } from "./compare.mjs";

const require = createRequire(import.meta.url);
const io = require("socket.io-client-v2");

const [mode, url, ...rest] = process.argv.slice(2);
const started = Date.now();
const OVERALL_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 10_000;
let progress = "starting";
let finished = false;
const created = [];

function fail(reason) {
  if (finished) return;
  finished = true;
  process.stderr.write(
    `eio3_interop ${mode} FAILED after ${Date.now() - started} ms while ${progress}:\n${reason}\n`,
  );
  process.exit(1);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`${e?.stack ?? e}`));
setTimeout(() => fail(`overall timeout (${OVERALL_TIMEOUT_MS} ms)`), OVERALL_TIMEOUT_MS).unref();

if (!url || !/^https?:\/\//.test(url)) fail("usage: node eio3_interop.mjs <mode> <url> [args...]");

function done(summary) {
  if (finished) return;
  finished = true;
  for (const s of created) s.close();
  process.stdout.write(JSON.stringify({ ok: true, mode, ms: Date.now() - started, ...summary }) + "\n");
  setTimeout(() => process.exit(0), 50);
}

// ---------------------------------------------------------------------------
// Comparing values, binary included

function expectEqual(what, want, got) {
  const d = diff(want, got);
  if (d) fail(`${what}: ${d}\nwant ${show(want)}\ngot  ${show(got)}`);
}

// ---------------------------------------------------------------------------
// Client helpers

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

function transportsOf(kind) {
  switch (kind) {
    case "polling":
    case "polling-b64":
      return ["polling"];
    case "websocket":
      return ["websocket"];
    case "default":
    case undefined:
      return ["polling", "websocket"];
    default:
      fail(`unknown transport ${kind}`);
  }
}

/** A v2 client on `nsp` (one Manager per client: `forceNew`). */
function client(nsp, query, kind) {
  const socket = io(`${url}${nsp}`, {
    forceNew: true,
    reconnection: false,
    transports: transportsOf(kind),
    // `b64=1`: binary as `b4` + base64 in text payloads instead of binary payloads.
    forceBase64: kind === "polling-b64",
    query,
  });
  created.push(socket);
  socket.on("error", (e) => socket.__errors?.push(e));
  return socket;
}

function connected(socket, what) {
  progress = `connecting ${what}`;
  return withTimeout(
    new Promise((resolve, reject) => {
      if (socket.connected) return resolve();
      socket.once("connect", resolve);
      socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e?.message ?? e}`)));
      socket.once("error", (e) => reject(new Error(`error: ${show(e)}`)));
    }),
    `${what} to connect`,
  );
}

function once(socket, event) {
  return withTimeout(new Promise((resolve) => socket.once(event, (...args) => resolve(args))), event);
}

function ack(socket, event, ...args) {
  return withTimeout(new Promise((resolve) => socket.emit(event, ...args, (...res) => resolve(res))), `ack of ${event}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Modes

async function exchange(kind) {
  const a = client("/", { token: "secret", user: "alice" }, kind);
  const b = client("/", { token: "secret", user: "bob" }, kind);
  const [welcome] = await Promise.all([once(a, "welcome"), connected(a, "alice"), connected(b, "bob")]);

  progress = "checking ids";
  const engineId = a.io.engine.id;
  expectEqual("alice's id is the Engine.IO id", engineId, a.id);
  const [me] = await ack(a, "whoami");
  expectEqual("whoami", { id: a.id, nsp: "/", user: "alice" }, { id: me.id, nsp: me.nsp, user: me.user });
  expectEqual("welcome", { id: a.id, user: "alice" }, { id: welcome[0].id, user: welcome[0].user });

  progress = "events both ways";
  const args = ["hi", 42, { nested: [1, "two", null] }, "é😀"];
  const echoed = once(a, "echo");
  a.emit("echo", ...args);
  expectEqual("echo", args, await echoed);

  progress = "acks both ways";
  expectEqual("echo_ack", args, await ack(a, "echo_ack", ...args));
  a.once("question", (q, cb) => cb(`answer to ${q}`, 7));
  const result = once(a, "answer_result");
  a.emit("ask", { timeout_ms: 5000, question: "q1" });
  expectEqual("the server's ack came back", ["answer to q1", 7], await result);

  progress = "binary both ways";
  const bin = [Buffer.from([1, 2, 3, 255, 0]), { inner: Buffer.alloc(3000, 7), list: [Buffer.from("xy")] }, "text"];
  const binEcho = once(a, "echo");
  a.emit("echo", ...bin);
  expectEqual("binary echo", bin, await binEcho);
  expectEqual("binary echo_ack", bin, await ack(a, "echo_ack", ...bin));
  a.once("question", (q, cb) => cb(Buffer.from([9, 8, 7]), { q }));
  const binResult = once(a, "answer_result");
  a.emit("ask", { timeout_ms: 5000, question: "bin" });
  expectEqual("binary ack from the client", [Buffer.from([9, 8, 7]), { q: "bin" }], await binResult);

  progress = "rooms and broadcasts";
  expectEqual("alice joins r1", [a.id, "r1", "user:alice"].sort(), (await ack(a, "join", "r1"))[0]);
  expectEqual("bob joins r1", [b.id, "r1", "user:bob"].sort(), (await ack(b, "join", "r1"))[0]);
  const bobNews = once(b, "news");
  const aliceNews = once(a, "news");
  expectEqual("to_rooms ack", [true], await ack(a, "to_rooms", { rooms: ["r1"], event: "news", data: { n: 1 } }));
  expectEqual("bob's news", [{ n: 1 }], await bobNews);
  expectEqual("alice's news", [{ n: 1 }], await aliceNews);
  // A broadcast that leaves the sender out, and a binary relay to a room.
  let aliceGotOwn = false;
  a.on("only_others", () => (aliceGotOwn = true));
  const onlyOthers = once(b, "only_others");
  await ack(a, "to_rooms", { rooms: ["r1"], except_self: true, event: "only_others", data: "x" });
  expectEqual("bob's only_others", ["x"], await onlyOthers);
  await ack(a, "join", "relay");
  await ack(b, "join", "relay");
  const relayed = once(b, "relayed");
  a.emit("relay", Buffer.from([5, 6]), { deep: Buffer.from([7]) });
  expectEqual("binary relay", [Buffer.from([5, 6]), { deep: Buffer.from([7]) }], await relayed);
  const toAll = once(b, "all");
  expectEqual("broadcast_all count", [2], await ack(a, "broadcast_all", { event: "all", data: 5 }));
  expectEqual("bob's broadcast", [5], await toAll);
  if (aliceGotOwn) fail("except_self reached the sender");

  progress = "a namespace with its auth in the CONNECT's query";
  const admin = a.io.socket("/admin", { query: { token: "secret", user: "carol" } });
  await connected(admin, "/admin");
  expectEqual("/admin id", `/admin#${engineId}`, admin.id);
  const [adminMe] = await ack(admin, "whoami");
  expectEqual("/admin whoami", { id: admin.id, nsp: "/admin", user: "carol" }, {
    id: adminMe.id,
    nsp: adminMe.nsp,
    user: adminMe.user,
  });

  progress = "a refused namespace";
  const refused = b.io.socket("/game-7", { query: { token: "wrong", user: "mallory" } });
  const [err] = await once(refused, "error");
  expectEqual("the refusal carries the middleware's data", { code: "E_AUTH" }, err);

  let upgraded = null;
  if (kind === "default") {
    progress = "waiting for the upgrade";
    for (let i = 0; i < 100 && a.io.engine.transport.name !== "websocket"; i++) await sleep(20);
    upgraded = a.io.engine.transport.name;
    expectEqual("upgraded", "websocket", upgraded);
    const after = once(a, "echo");
    a.emit("echo", Buffer.from([1]), "after upgrade");
    expectEqual("echo after the upgrade", [Buffer.from([1]), "after upgrade"], await after);
  }
  done({ id: a.id, engineId, adminId: admin.id, transport: a.io.engine.transport.name, upgraded });
}

async function heartbeat() {
  const results = {};
  for (const kind of ["polling", "websocket"]) {
    const s = client("/", { token: "secret", user: kind }, kind);
    await connected(s, kind);
    let pongs = 0;
    s.io.engine.on("pong", () => pongs++);
    let closed = null;
    s.on("disconnect", (reason) => (closed = reason));
    progress = `staying connected over ${kind}`;
    await sleep(2000);
    if (closed) fail(`${kind}: disconnected (${closed})`);
    if (pongs < 3) fail(`${kind}: only ${pongs} pongs in 2 s`);
    expectEqual(`${kind} still answers`, ["still"], await ack(s, "echo_ack", "still"));
    results[kind] = pongs;
    s.close();
  }
  done({ pongs: results });
}

switch (mode) {
  case "exchange":
    await exchange(rest[0]);
    break;
  case "heartbeat":
    await heartbeat();
    break;
  default:
    fail(`unknown mode ${mode}`);
}
