// Drives the official `socket.io-client` against the Socket.IO testbed
// (`examples/sio_testbed.rs`; its doc comment lists the events it handles).
//
// Usage: node socketio_interop.mjs <mode> <url> [args...]
//
//   auth                          connect with an auth payload, typed socket data, user room
//   refused                       middleware refusal: connect_error with message and data
//   namespaces                    /, /admin and /game-7 over one Manager (one Engine.IO connection)
//   events                        events both ways, in order
//   acks                          acks both ways, server-side and client-side ack timeouts
//   binary                        binary nested in objects and arrays, both ways
//   typed_args                    typed handlers: an ack of mismatched arguments gets {error}, Args takes all
//   relay                         a relay under another name to a room, binary included
//   rooms                         rooms, multi-room broadcasts, except, except-sender
//   user                          one user on three sockets reached through `user:{name}`
//   kick                          server disconnect: `io server disconnect` / `server namespace disconnect`
//   client_disconnect             client disconnect: `client namespace disconnect` on the server
//   transport_close               the client closes its Engine.IO socket: `transport close` on the server
//   vanish                        connect, print the socket id, exit the process without closing anything
//   await_log <id> <reason>       wait for the server's disconnect log entry of socket <id>, check its reason
//   reconnect <polling|upgraded>  the server drops the transport; the client reconnects with a new id
//   drop_during_upgrade [rounds]  the server drops the transport during the upgrade probe; the client reconnects
//   transport <polling|websocket> a client restricted to one transport, through the basic exchanges
//   fanout <n>                    n clients at once, one broadcast, each receives it exactly once
//   node_semantics                /open: socket.to leaves the sender out, ack() has no arguments,
//                                 auth is {} when none was sent, onAny sees every event,
//                                 disconnecting has the rooms and disconnect has left them
//
// On success prints one JSON summary line (`{"ok":true,...}`) to stdout and exits 0. On any
// failure (including the overall timeout) prints the reason to stderr and exits 1.
// Set DEBUG=socket.io-client*,engine.io-client* for the client's own trace.

import { io, Manager } from "socket.io-client";
import { diff, show } from "./compare.mjs";

const [mode, url, ...rest] = process.argv.slice(2);
const started = Date.now();
const OVERALL_TIMEOUT_MS = mode === "fanout" ? 100_000 : 30_000;
// How long one awaited step (an event, an ack, a connect) may take.
const STEP_TIMEOUT_MS = 10_000;
let progress = "starting";
let finished = false;

function fail(reason) {
  if (finished) return;
  finished = true;
  process.stderr.write(
    `socketio_interop ${mode} FAILED after ${Date.now() - started} ms while ${progress}:\n${reason}\n`,
  );
  process.exit(1);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`${e?.stack ?? e}`));
setTimeout(() => fail(`overall timeout (${OVERALL_TIMEOUT_MS} ms)`), OVERALL_TIMEOUT_MS).unref();

if (!url || !/^https?:\/\//.test(url)) fail("usage: node socketio_interop.mjs <mode> <url> [args...]");

function done(summary) {
  if (finished) return;
  finished = true;
  for (const s of created) s.disconnect();
  process.stdout.write(JSON.stringify({ ok: true, mode, ms: Date.now() - started, ...summary }) + "\n");
  // The server is about to be killed anyway; do not wait for every close to drain.
  setTimeout(() => process.exit(0), 50);
}

// ---------------------------------------------------------------------------
// Comparing values, binary included (compare.mjs)

function expectEq(what, got, want) {
  const d = diff(want, got);
  if (d) throw new Error(`${what}: ${d}\n  want ${show(want)}\n  got  ${show(got)}`);
}

function expect(what, cond, detail = "") {
  if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ""}`);
}

// ---------------------------------------------------------------------------
// Sockets with an inbox of every event they receive

const created = [];
const AUTH = (user) => ({ token: "secret", user });

/** A socket on its own Manager (`forceNew`), no reconnection unless asked. */
function client(name, opts = {}) {
  const { nsp = "", ...options } = opts;
  return track(name, io(url + nsp, { forceNew: true, reconnection: false, ...options }));
}

/**
 * Records every event `s` receives in `s.inbox`, as `[event, args]`, except those given a
 * handler of their own with `handle`.
 */
function track(name, s) {
  s.label = name;
  s.inbox = [];
  s.waiters = [];
  s.handled = new Set();
  s.onAny((event, ...args) => {
    if (s.handled.has(event)) return;
    s.inbox.push([event, args]);
    for (const w of [...s.waiters]) w();
  });
  created.push(s);
  return s;
}

/** Handles `event` on `s` with `f` instead of recording it in the inbox. */
function handle(s, event, f) {
  s.handled.add(event);
  s.on(event, f);
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === "function" ? what() : what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves when `s` connects; rejects with the connect_error. */
function connected(s) {
  progress = `connecting ${s.label}`;
  if (s.connected) return Promise.resolve(s);
  return withTimeout(
    new Promise((resolve, reject) => {
      s.once("connect", () => resolve(s));
      s.once("connect_error", (e) =>
        reject(new Error(`${s.label}: connect_error ${show(e?.message)} data ${show(e?.data)}`)),
      );
    }),
    `${s.label} to connect`,
  );
}

/** Connects `s` (auth user `user`) and checks the server's `welcome` event. */
async function welcomed(s, user) {
  await connected(s);
  expectEq(`welcome of ${s.label}`, await next(s, "welcome"), [{ id: s.id, user, rooms: roomsOf(s, user) }]);
  return s;
}

/** The next connect_error of `s`. */
function connectError(s) {
  progress = `waiting for the connect_error of ${s.label}`;
  return withTimeout(
    new Promise((resolve, reject) => {
      s.once("connect", () => reject(new Error(`${s.label} connected, a connect_error was expected`)));
      s.once("connect_error", resolve);
    }),
    `the connect_error of ${s.label}`,
  );
}

/** Takes the first inbox entry of `event` out of the inbox (waiting for it); its args. */
function next(s, event, ms = STEP_TIMEOUT_MS) {
  progress = `${s.label} waiting for ${event}`;
  return withTimeout(
    new Promise((resolve) => {
      const check = () => {
        const i = s.inbox.findIndex(([e]) => e === event);
        if (i < 0) return false;
        s.waiters = s.waiters.filter((w) => w !== check);
        resolve(s.inbox.splice(i, 1)[0][1]);
        return true;
      };
      if (!check()) s.waiters.push(check);
    }),
    () => `${s.label} to receive ${show(event)} (inbox: ${show(s.inbox)})`,
    ms,
  );
}

/** The next `disconnect` of `s`: its reason. */
function disconnected(s) {
  progress = `waiting for ${s.label} to disconnect`;
  return withTimeout(new Promise((resolve) => s.once("disconnect", (reason) => resolve(reason))), `${s.label} to disconnect`);
}

/** Emits with an acknowledgement; resolves with the ack's arguments (all of them). */
function call(s, event, ...args) {
  progress = `${s.label} calling ${event}`;
  return new Promise((resolve, reject) => {
    s.timeout(STEP_TIMEOUT_MS).emit(event, ...args, (err, ...res) =>
      err ? reject(new Error(`${s.label}: no ack for ${show(event)} ${show(args)}: ${err.message}`)) : resolve(res),
    );
  });
}

/** The first argument of the ack. */
const ask1 = async (s, event, ...args) => (await call(s, event, ...args))[0];

let barrierSeq = 0;
/**
 * Makes sure every packet the server queued for these sockets before now has arrived: each
 * socket gets an echo of a fresh token, which the server queues behind anything earlier.
 * Then returns and clears each socket's inbox (the echoes taken out).
 */
async function barrier(sockets) {
  const token = `barrier-${++barrierSeq}`;
  await Promise.all(
    sockets.map(async (s) => {
      s.emit("echo", token);
      for (;;) {
        const [arg] = await next(s, "echo");
        if (arg === token) break;
        throw new Error(`${s.label}: unexpected echo ${show(arg)} before the barrier`);
      }
    }),
  );
  return sockets.map((s) => s.inbox.splice(0));
}

/** Waits until the server's disconnect log has an entry for socket `id`; the entry. */
async function logEntry(observer, id) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const log = await ask1(observer, "get_log");
    const entries = log.filter((e) => e.id === id);
    if (entries.length > 1) throw new Error(`${entries.length} log entries for ${id}: ${show(entries)}`);
    if (entries.length === 1) return entries[0];
    if (Date.now() > deadline) throw new Error(`no disconnect log entry for ${id}; log: ${show(log)}`);
    progress = `waiting for the server to log the disconnect of ${id}`;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the Engine.IO socket under `s` has upgraded to WebSocket. */
async function upgradedToWebSocket(s) {
  progress = `waiting for ${s.label} to upgrade`;
  if (s.io.engine.transport.name === "websocket") return;
  await withTimeout(new Promise((r) => s.io.engine.once("upgrade", r)), `${s.label} to upgrade to websocket`);
  expectEq("transport after the upgrade", s.io.engine.transport.name, "websocket");
}

/** `[id, "user:<user>", ...extra]`, sorted, as the server lists rooms. */
const roomsOf = (s, user, ...extra) => [s.id, `user:${user}`, ...extra].sort();

const bytes = (...b) => Buffer.from(b);
const ramp = (n, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 255));

// ---------------------------------------------------------------------------
// Modes

const modes = {
  async auth() {
    const s = client("alice", { auth: AUTH("alice") });
    await connected(s);
    expect("socket id is 20 characters", typeof s.id === "string" && s.id.length === 20, show(s.id));
    expect("socket id differs from the Engine.IO id", s.id !== s.io.engine.id, show(s.id));
    const [welcome] = await next(s, "welcome");
    expectEq("welcome", welcome, { id: s.id, user: "alice", rooms: roomsOf(s, "alice") });
    const me = await ask1(s, "whoami");
    expect("whoami.address is a 127.0.0.1 address", /^127\.0\.0\.1:\d+$/.test(me.address), show(me));
    expectEq("whoami", me, { id: s.id, nsp: "/", user: "alice", rooms: roomsOf(s, "alice"), address: me.address });
    // The auth payload is per socket: another user on another connection.
    const b = client("bob", { auth: { user: "bob", token: "secret", extra: [1, { x: true }] } });
    await connected(b);
    const bobMe = await ask1(b, "whoami");
    expectEq("bob's whoami", bobMe, { id: b.id, nsp: "/", user: "bob", rooms: roomsOf(b, "bob"), address: bobMe.address });
    return { id: s.id, engineId: s.io.engine.id, user: me.user, rooms: me.rooms };
  },

  async refused() {
    const cases = [
      ["wrong token", { auth: { token: "nope", user: "eve" } }],
      ["no auth", {}],
      ["auth without a token", { auth: { user: "eve" } }],
    ];
    const seen = [];
    for (const [name, opts] of cases) {
      const s = client(name, opts);
      const err = await connectError(s);
      expect(`${name}: connect_error is an Error`, err instanceof Error, show(err));
      expectEq(`${name}: connect_error message`, err.message, "not authorized");
      expectEq(`${name}: connect_error data`, err.data, { code: "E_AUTH" });
      expect(`${name}: not connected`, !s.connected && s.id === undefined, show(s.id));
      // A middleware refusal is final: the client does not retry on its own.
      expect(`${name}: the socket is no longer active`, !s.active);
      seen.push({ case: name, message: err.message, data: err.data });
    }
    // The same server accepts the right token.
    const ok = client("good", { auth: AUTH("ok") });
    await connected(ok);
    return { refusals: seen };
  },

  async namespaces() {
    const manager = new Manager(url, { reconnection: false });
    const root = track("root", manager.socket("/", { auth: AUTH("nina") }));
    const admin = track("admin", manager.socket("/admin", { auth: AUTH("nina") }));
    const game = track("game-7", manager.socket("/game-7", { auth: AUTH("nina") }));
    await Promise.all([root, admin, game].map(connected));
    for (const s of [root, admin, game]) {
      expectEq(`welcome on ${s.nsp}`, await next(s, "welcome"), [{ id: s.id, user: "nina", rooms: roomsOf(s, "nina") }]);
    }
    const engineIds = [root, admin, game].map((s) => s.io.engine.id);
    expect("one Manager", root.io === admin.io && admin.io === game.io);
    expect("one Engine.IO connection for the three namespaces", new Set(engineIds).size === 1, show(engineIds));
    const ids = [root.id, admin.id, game.id];
    expect("three distinct socket ids", new Set(ids).size === 3, show(ids));
    const who = await Promise.all([root, admin, game].map((s) => ask1(s, "whoami")));
    for (const [s, w, nsp] of [[root, who[0], "/"], [admin, who[1], "/admin"], [game, who[2], "/game-7"]]) {
      expectEq(`whoami on ${nsp}`, w, { id: s.id, nsp, user: "nina", rooms: roomsOf(s, "nina"), address: who[0].address });
    }
    // Rooms are per namespace: "shared" in / and "shared" in /admin are different rooms.
    expectEq("root joins", await ask1(root, "join", "shared"), roomsOf(root, "nina", "shared"));
    expectEq("admin joins", await ask1(admin, "join", "shared"), roomsOf(admin, "nina", "shared"));
    expectEq("to_rooms ack", await ask1(root, "to_rooms", { rooms: ["shared"], event: "news", data: "for /" }), true);
    let [r, a, g] = await barrier([root, admin, game]);
    expectEq("root got its namespace's broadcast", r, [["news", ["for /"]]]);
    expectEq("admin got nothing from /", a, []);
    expectEq("game got nothing from /", g, []);
    expectEq("broadcast_all in /admin reaches 1 socket", await ask1(admin, "broadcast_all", { event: "all", data: 2 }), 1);
    [r, a, g] = await barrier([root, admin, game]);
    expectEq("admin got /admin's broadcast", a, [["all", [2]]]);
    expectEq("root got nothing from /admin", r, []);
    expectEq("game got nothing from /admin", g, []);

    // Unknown namespaces are refused on the same connection, which stays up.
    const refusals = {};
    for (const nsp of ["/nope", "/game-x"]) {
      const s = track(nsp, manager.socket(nsp, { auth: AUTH("nina") }));
      const err = await connectError(s);
      expectEq(`connect_error for ${nsp}`, [err.message, err.data], ["Invalid namespace", undefined]);
      refusals[nsp] = err.message;
    }
    // The middleware runs for dynamic namespaces too.
    const bad = track("/game-8 bad auth", manager.socket("/game-8", { auth: { token: "x", user: "nina" } }));
    const err = await connectError(bad);
    expectEq("connect_error for /game-8 with a bad token", [err.message, err.data], ["not authorized", { code: "E_AUTH" }]);

    // Leaving one namespace keeps the others and the connection.
    admin.disconnect();
    expectEq("admin left /admin", await logEntry(root, ids[1]), {
      nsp: "/admin", id: ids[1], user: "nina", reason: "client namespace disconnect",
    });
    [r, g] = await barrier([root, game]);
    expectEq("root inbox", r, []);
    expectEq("game inbox", g, []);
    expect("same Engine.IO connection after leaving /admin", root.io.engine.id === engineIds[0]);
    return { engineId: engineIds[0], sockets: { "/": ids[0], "/admin": ids[1], "/game-7": ids[2] }, refusals };
  },

  async events() {
    const s = client("s", { auth: AUTH("evan") });
    await connected(s);
    // Server to client, unprompted: the welcome event of on_connect.
    const [welcome] = await next(s, "welcome");
    expectEq("welcome", welcome, { id: s.id, user: "evan", rooms: roomsOf(s, "evan") });
    // Client to server and back, every JSON type, several arguments, none.
    const argLists = [
      ["hello"],
      [],
      [1, 2.5, -3, 0, 1e21, true, false, null],
      ["ünïcødé 🌍 \"quotes\" \\ \n \u0000", "", "4", "42[\"x\"]"],
      [{ a: { b: [1, 2, { c: "d" }], e: null }, f: [] }, [], {}],
      [[[[["deep"]]]], { "key with spaces": { "": 0 } }],
      ["x".repeat(100_000)],
    ];
    for (const args of argLists) {
      s.emit("echo", ...args);
      expectEq(`echo of ${show(args)}`, await next(s, "echo"), args);
    }
    // A burst keeps its order.
    for (let i = 0; i < 50; i++) s.emit("echo", i, `n${i}`);
    for (let i = 0; i < 50; i++) expectEq(`burst echo #${i}`, await next(s, "echo"), [i, `n${i}`]);
    // A server event to this socket through its user room.
    expectEq("to_user ack", await ask1(s, "to_user", { user: "evan", data: { hi: 1 } }), true);
    expectEq("private", await next(s, "private"), [{ hi: 1 }]);
    const [rest] = await barrier([s]);
    expectEq("nothing else arrived", rest, []);
    return { id: s.id, echoed: argLists.length + 50 };
  },

  async acks() {
    const s = await welcomed(client("s", { auth: AUTH("ada") }), "ada");
    // Client -> server acks: the server answers with the same arguments.
    expectEq("echo_ack", await call(s, "echo_ack", "a", 1, { x: [true, null] }), ["a", 1, { x: [true, null] }]);
    expectEq("echo_ack with no arguments", await call(s, "echo_ack"), []);
    // Many at once: each answer reaches its own callback.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => call(s, "echo_ack", i, { i })));
    many.forEach((got, i) => expectEq(`concurrent echo_ack #${i}`, got, [i, { i }]));

    // Server -> client acks: the server asks, the client answers.
    const questions = [];
    let answer = null;
    handle(s, "question", (q, cb) => {
      questions.push(q);
      if (answer) answer(cb);
    });
    answer = (cb) => cb(4, "four", { exact: true });
    s.emit("ask", { timeout_ms: 5000, question: { q: "2+2?" } });
    expectEq("answer_result", await next(s, "answer_result"), [4, "four", { exact: true }]);
    expectEq("the question as received", questions.shift(), { q: "2+2?" });

    // Server-side ack timeout: the client never answers.
    answer = null;
    let t0 = Date.now();
    s.emit("ask", { timeout_ms: 300, question: "silent" });
    expectEq("answer_result after the server's ack timeout", await next(s, "answer_result"), ["timeout"]);
    const waitedMs = Date.now() - t0;
    expect("the server waited about its 300 ms timeout", waitedMs >= 250, `${waitedMs} ms`);
    expectEq("the unanswered question", questions.shift(), "silent");

    // An answer after the timeout is ignored: no second answer_result.
    let late = null;
    answer = (cb) => (late = cb);
    s.emit("ask", { timeout_ms: 200, question: "late" });
    expectEq("answer_result of the late one", await next(s, "answer_result"), ["timeout"]);
    late("too late");
    const [afterLate] = await barrier([s]);
    expectEq("nothing after a late answer", afterLate, []);

    // Client-side ack timeout: `echo` never acks.
    t0 = Date.now();
    const clientTimeout = await new Promise((resolve) =>
      s.timeout(300).emit("echo", "no ack here", (err, ...args) => resolve({ err, args })),
    );
    expect("client-side ack timeout is an error", clientTimeout.err instanceof Error, show(clientTimeout));
    expectEq("client-side ack timeout message", clientTimeout.err.message, "operation has timed out");
    expectEq("echo of the unacked emit", await next(s, "echo"), ["no ack here"]);
    const [rest] = await barrier([s]);
    expectEq("nothing else arrived", rest, []);
    return { id: s.id, serverTimeoutMs: waitedMs };
  },

  async binary() {
    const s = await welcomed(client("s", { auth: AUTH("bin") }), "bin");
    const big = Buffer.alloc(100 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 255;
    const args = [
      ramp(256),
      { blob: bytes(1, 2, 3), list: [bytes(4), { deep: new Uint8Array([5, 6]) }, "text"], n: 7 },
      [bytes(), "s", 3, [bytes(0, 255)]],
      "plain",
      { big },
    ];
    // The raw relay: attachments go back untouched.
    s.emit("echo", ...args);
    expectEq("binary echo (relay)", await next(s, "echo"), args);
    // The typed path: the server deserializes the placeholders into bytes and serializes
    // them again as attachments.
    expectEq("binary echo_ack", await call(s, "echo_ack", ...args), args);
    // Typed ByteBuf fields, and bytes the server made itself.
    const up = { name: "a.bin", chunks: [bytes(1, 2, 3), bytes(), bytes(4, 5)], meta: { thumb: bytes(9, 9, 9) } };
    expectEq("upload", await call(s, "upload", up), [
      { name: "a.bin", sizes: [3, 0, 2], joined: bytes(1, 2, 3, 4, 5), meta: { thumb: bytes(9, 9, 9) } },
    ]);
    // Binary in a client's ack to the server, sent on by the server.
    handle(s, "question", (_q, cb) => cb({ img: ramp(10, 100), parts: [bytes(1), { p: bytes(2) }] }, bytes(3)));
    s.emit("ask", { timeout_ms: 5000, question: "bytes please" });
    expectEq("binary answer_result", await next(s, "answer_result"), [
      { img: ramp(10, 100), parts: [bytes(1), { p: bytes(2) }] },
      bytes(3),
    ]);
    const [rest] = await barrier([s]);
    expectEq("nothing else arrived", rest, []);
    return { id: s.id, transport: s.io.engine.transport.name };
  },

  async typed_args() {
    const s = await welcomed(client("s", { auth: AUTH("typed") }), "typed");
    expectEq("double 21", await call(s, "double", 21), [42]);
    // Arguments that do not fit the handler's type: the ack is answered at once, with an
    // error object, where it used to wait for its timeout.
    const wrong = await call(s, "double", "x");
    expectEq("double of a string", wrong, [{ error: 'invalid arguments: invalid type: string "x", expected u32' }]);
    const list = await s.timeout(STEP_TIMEOUT_MS).emitWithAck("double", [1, 2]);
    expect("double of a list: an error", typeof list?.error === "string" && list.error.startsWith("invalid arguments: "), show(list));
    // Args<String>: every argument, whatever the count; one list is one argument.
    expectEq("tags of three", await call(s, "tags", "a", "b", "c"), [["a", "b", "c"]]);
    expectEq("tags of one", await call(s, "tags", "a"), [["a"]]);
    expectEq("tags of none", await call(s, "tags"), [[]]);
    const [tagsOfList] = await call(s, "tags", ["a", "b"]);
    expect("tags of a list: an error", typeof tagsOfList?.error === "string", show(tagsOfList));
    // Without an ack there is nobody to answer: nothing arrives, the socket stays.
    s.emit("double", "no ack");
    const [rest] = await barrier([s]);
    expectEq("nothing for an event without an ack", rest, []);
    expect("still connected", s.connected);
    return { id: s.id, wrong: wrong[0], list };
  },

  async relay() {
    const [A, B, C] = ["la", "lb", "lc"].map((u) => client(u, { auth: AUTH(u) }));
    await Promise.all([A, B, C].map((s) => welcomed(s, s.auth.user)));
    await ask1(A, "join", "relay");
    await ask1(B, "join", "relay");
    const args = [ramp(300), { pen: bytes(1, 2), points: [[1, 2], [3, 4]] }, "blue", [bytes(), bytes(255)], 7];
    A.emit("relay", ...args);
    expectEq("B got the arguments under the new name", await next(B, "relayed"), args);
    // Without binary, and with none at all.
    A.emit("relay", "plain", { n: 1 });
    expectEq("B got the plain relay", await next(B, "relayed"), ["plain", { n: 1 }]);
    A.emit("relay");
    expectEq("B got the empty relay", await next(B, "relayed"), []);
    const [a, b, c] = await barrier([A, B, C]);
    expectEq("the sender got nothing", a, []);
    expectEq("B got nothing else", b, []);
    expectEq("C, not in the room, got nothing", c, []);
    return { relayed: 3 };
  },

  async rooms() {
    const [A, B, C, D] = ["ra", "rb", "rc", "rd"].map((u) => client(u, { auth: AUTH(u) }));
    const E = client("re (/admin)", { nsp: "/admin", auth: AUTH("re") });
    const all = [A, B, C, D, E];
    await Promise.all(all.map((s) => welcomed(s, s.auth.user)));
    expectEq("A joins r1", await ask1(A, "join", "r1"), roomsOf(A, "ra", "r1"));
    await ask1(B, "join", "r1");
    expectEq("B joins r1 and r2", await ask1(B, "join", "r2"), roomsOf(B, "rb", "r1", "r2"));
    expectEq("C joins r2", await ask1(C, "join", "r2"), roomsOf(C, "rc", "r2"));
    expectEq("D joins r3", await ask1(D, "join", "r3"), roomsOf(D, "rd", "r3"));
    expectEq("E joins r1 in /admin", await ask1(E, "join", "r1"), roomsOf(E, "re", "r1"));

    const steps = [];
    const step = async (name, sender, req, receivers) => {
      progress = `rooms step ${name}`;
      const data = { step: name };
      let ack;
      if (req === "all") ack = await ask1(sender, "broadcast_all", { event: "news", data });
      else ack = await ask1(sender, "to_rooms", { event: "news", data, ...req });
      const inboxes = await barrier(all);
      all.forEach((s, i) => {
        const want = receivers.includes(s) ? [["news", [data]]] : [];
        expectEq(`step ${name}: what ${s.label} received`, inboxes[i], want);
      });
      steps.push({ name, ack, receivers: receivers.map((s) => s.label) });
    };
    await step("r1+r2 from D", D, { rooms: ["r1", "r2"] }, [A, B, C]);
    await step("r1+r2 except r2", D, { rooms: ["r1", "r2"], except: ["r2"] }, [A]);
    await step("r1+r2 except sender B", B, { rooms: ["r1", "r2"], except_self: true }, [A, C]);
    await step("r1 except sender A", A, { rooms: ["r1"], except_self: true }, [B]);
    await step("r1+r2 from B, sender included", B, { rooms: ["r1", "r2"] }, [A, B, C]);
    await step("namespace except r1", D, { except: ["r1"] }, [C, D]);
    await step("r1+r3 except r2 and sender C", C, { rooms: ["r1", "r3"], except: ["r2"], except_self: true }, [A, D]);
    await step("namespace except r2 and r3, except sender A", A, { except: ["r2", "r3"], except_self: true }, []);
    await step("A's own id room", D, { rooms: [A.id] }, [A]);
    await step("a room nobody is in", A, { rooms: ["empty"] }, []);
    await step("broadcast_all in /", C, "all", [A, B, C, D]);
    expectEq("B leaves r1", await ask1(B, "leave", "r1"), roomsOf(B, "rb", "r2"));
    await step("r1 after B left", D, { rooms: ["r1"] }, [A]);
    await step("r1 except r1", D, { rooms: ["r1"], except: ["r1"] }, []);
    return { steps };
  },

  async user() {
    let ids;
    // One user on three sockets (three tabs: websocket, polling, upgraded), and another user.
    const tabs = [
      client("u1 websocket", { auth: AUTH("u1"), transports: ["websocket"] }),
      client("u1 polling", { auth: AUTH("u1"), transports: ["polling"] }),
      client("u1 upgrade", { auth: AUTH("u1") }),
    ];
    const other = client("u2", { auth: AUTH("u2") });
    const all = [...tabs, other];
    await Promise.all(all.map((s) => welcomed(s, s.auth.user)));
    for (const t of tabs) {
      expectEq(`whoami of ${t.label}`, await ask1(t, "whoami").then((w) => [w.user, w.rooms]), ["u1", roomsOf(t, "u1")]);
    }
    const check = async (what, receivers) => {
      const inboxes = await barrier(all);
      all.forEach((s, i) => {
        const want = receivers.includes(s) ? [["private", [what]]] : [];
        expectEq(`${show(what)}: what ${s.label} received`, inboxes[i], want);
      });
    };
    expectEq("to_user ack", await ask1(other, "to_user", { user: "u1", data: "to all of u1" }), true);
    await check("to all of u1", tabs);
    await ask1(tabs[0], "to_user", { user: "u2", data: "to u2" });
    await check("to u2", [other]);
    await ask1(tabs[2], "to_user", { user: "u1", data: "u1 to itself" });
    await check("u1 to itself", tabs);
    // A closed tab drops out of the user room; the others still get everything.
    ids = tabs.map((t) => t.id);
    const closedId = ids[1];
    tabs[1].disconnect();
    expectEq("the closed tab's log entry", await logEntry(other, closedId), {
      nsp: "/", id: closedId, user: "u1", reason: "client namespace disconnect",
    });
    all.splice(all.indexOf(tabs[1]), 1);
    await ask1(other, "to_user", { user: "u1", data: "after a tab closed" });
    await check("after a tab closed", [tabs[0], tabs[2]]);
    return { ids, transports: tabs.map((t) => t.io.engine?.transport?.name) };
  },

  async kick() {
    const s = client("s", { auth: AUTH("kim") });
    const observer = client("observer", { auth: AUTH("obs") });
    await Promise.all([connected(s), connected(observer)]);
    const id = s.id;
    const reason = disconnected(s);
    s.emit("kick");
    expectEq("client-side reason", await reason, "io server disconnect");
    expect("no automatic reconnection after a server disconnect", !s.active && !s.connected);
    expectEq("server log", await logEntry(observer, id), {
      nsp: "/", id, user: "kim", reason: "server namespace disconnect",
    });
    return { id, clientReason: "io server disconnect" };
  },

  async node_semantics() {
    const a = client("a", { nsp: "/open" });
    const b = client("b", { nsp: "/open" });
    await Promise.all([connected(a), connected(b)]);
    expectEq("handshake.auth of a client that sent none", await next(a, "hello"), [{ auth: {} }]);
    await next(b, "hello");
    // socket.to(room): the others in the room, not the sender.
    a.emit("say", "hi");
    expectEq("b hears a", await next(b, "said"), ["hi"]);
    // ack(): the callback gets no arguments. It comes after anything sent to `a` before it.
    expectEq("ack of ()", await call(a, "nothing"), []);
    expectEq("what a received", a.inbox, []);
    // onAny sees every event, handled or not, before its handler: `seen` counts itself.
    expectEq("unhandled event", await call(a, "nobody", 1), ["unhandled nobody"]);
    expectEq("events seen", await call(a, "seen"), [4]);
    // disconnecting: still in its rooms (its own and `room`); disconnect: out of them.
    const id = a.id;
    a.disconnect();
    expectEq("disconnecting", await next(b, "leaving"), [{ id, rooms: 2 }]);
    expectEq("disconnect", await next(b, "left"), [{ id, rooms: 0 }]);
    expectEq("what b received besides", b.inbox, []);
    return { id };
  },

  async client_disconnect() {
    const s = client("s", { auth: AUTH("cid") });
    const observer = client("observer", { auth: AUTH("obs") });
    await Promise.all([connected(s), connected(observer)]);
    const id = s.id;
    const reason = disconnected(s);
    s.disconnect();
    expectEq("client-side reason", await reason, "io client disconnect");
    expectEq("server log", await logEntry(observer, id), {
      nsp: "/", id, user: "cid", reason: "client namespace disconnect",
    });
    return { id };
  },

  async transport_close() {
    const observer = client("observer", { auth: AUTH("obs") });
    await connected(observer);
    const results = {};
    for (const transport of ["websocket", "polling"]) {
      const s = client(transport, { auth: AUTH("tc"), transports: [transport] });
      await connected(s);
      await ask1(s, "whoami");
      const id = s.id;
      // Close the Engine.IO socket under the Socket.IO socket, as a closing tab does.
      s.io.engine.close();
      expectEq(`server log (${transport})`, await logEntry(observer, id), {
        nsp: "/", id, user: "tc", reason: "transport close",
      });
      results[transport] = id;
    }
    return { ids: results };
  },

  async vanish() {
    const s = client("s", { auth: AUTH("ghost"), transports: ["websocket"] });
    await connected(s);
    // A round trip, so nothing the server sent is left unread (unread data would turn the
    // process's exit into a TCP reset).
    await next(s, "welcome");
    await ask1(s, "whoami");
    process.stdout.write(JSON.stringify({ ok: true, mode, id: s.id }) + "\n");
    finished = true;
    process.exit(0);
  },

  async await_log() {
    const [id, reason] = rest;
    const observer = client("observer", { auth: AUTH("obs") });
    await connected(observer);
    const entry = await logEntry(observer, id);
    expectEq("server log", entry, { nsp: "/", id, user: "ghost", reason });
    return { entry };
  },

  async reconnect() {
    const [which] = rest;
    if (which !== "polling" && which !== "upgraded") fail("reconnect takes polling or upgraded");
    const s = client("s", {
      auth: AUTH("rick"),
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
      randomizationFactor: 0,
      transports: which === "polling" ? ["polling"] : ["polling", "websocket"],
    });
    const observer = client("observer", { auth: AUTH("obs") });
    await Promise.all([connected(s), connected(observer)]);
    const [welcome1] = await next(s, "welcome");
    if (which === "upgraded") await upgradedToWebSocket(s);
    const oldTransport = s.io.engine.transport.name;
    const oldId = s.id;
    const oldEngine = s.io.engine.id;
    expectEq("first welcome", welcome1.id, oldId);
    let reconnects = 0;
    s.io.on("reconnect", () => reconnects++);
    const reason = disconnected(s);
    const reconnected = withTimeout(new Promise((r) => s.once("connect", r)), "the reconnection");
    s.emit("drop_transport");
    expectEq("client-side reason", await reason, "transport close");
    progress = "waiting for the reconnection";
    await reconnected;
    const newId = s.id;
    expect("a new socket id after reconnecting", typeof newId === "string" && newId !== oldId, `${oldId} -> ${newId}`);
    expect("a new Engine.IO session", s.io.engine.id !== oldEngine);
    expectEq("reconnect events", reconnects, 1);
    const [welcome2] = await next(s, "welcome");
    expectEq("welcome after reconnecting", welcome2, { id: newId, user: "rick", rooms: roomsOf(s, "rick") });
    s.emit("echo", "back again", bytes(1, 2));
    expectEq("echo after reconnecting", await next(s, "echo"), ["back again", bytes(1, 2)]);
    expectEq("ack after reconnecting", await call(s, "echo_ack", "ok"), ["ok"]);
    // The user room works for the new socket.
    await ask1(observer, "to_user", { user: "rick", data: "found you" });
    expectEq("private after reconnecting", await next(s, "private"), ["found you"]);
    const entry = await logEntry(observer, oldId);
    expectEq("server log of the dropped socket", entry, {
      nsp: "/", id: oldId, user: "rick", reason: "forced close",
    });
    const [restS] = await barrier([s]);
    expectEq("nothing else arrived", restS, []);
    return { oldId, newId, oldTransport, serverReason: entry.reason };
  },

  // The server drops the connection while the client is still probing the WebSocket
  // upgrade; the client must still notice and reconnect. Repeated `rounds` times, as the
  // window is narrow.
  async drop_during_upgrade() {
    const rounds = Number(rest[0] ?? 20);
    for (let i = 0; i < rounds; i++) {
      const s = client(`round ${i}`, {
        auth: AUTH("racer"),
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 200,
        randomizationFactor: 0,
      });
      await connected(s);
      const oldId = s.id;
      const reconnected = withTimeout(
        new Promise((r) => s.once("connect", r)),
        () => `round ${i}: the reconnection (transport ${s.io.engine?.transport?.name}, upgrading ${s.io.engine?.upgrading})`,
        5_000,
      );
      // Right after connecting, the upgrade probe is in flight.
      s.emit("drop_transport");
      await reconnected;
      expect(`round ${i}: a new id`, s.id !== oldId);
      s.disconnect();
    }
    return { rounds };
  },

  async transport() {
    const [name] = rest;
    if (name !== "polling" && name !== "websocket") fail("transport mode takes polling or websocket");
    const s = client(name, { auth: AUTH("tom"), transports: [name] });
    const observer = client("observer", { auth: AUTH("obs") });
    await Promise.all([connected(s), connected(observer)]);
    const onTransport = () => expectEq("transport", s.io.engine.transport.name, name);
    onTransport();
    expectEq("welcome", await next(s, "welcome"), [{ id: s.id, user: "tom", rooms: roomsOf(s, "tom") }]);
    const args = ["text ünï 🌍", 42, { nested: { blob: ramp(300), list: [bytes(7), "x"] } }, [bytes(8, 9)]];
    s.emit("echo", ...args);
    expectEq("echo", await next(s, "echo"), args);
    expectEq("echo_ack", await call(s, "echo_ack", ...args), args);
    handle(s, "question", (q, cb) => cb({ got: q, b: bytes(1) }));
    s.emit("ask", { timeout_ms: 5000, question: "q" });
    expectEq("answer_result", await next(s, "answer_result"), [{ got: "q", b: bytes(1) }]);
    for (let i = 0; i < 30; i++) s.emit("echo", i);
    for (let i = 0; i < 30; i++) expectEq(`burst #${i}`, await next(s, "echo"), [i]);
    await ask1(observer, "to_user", { user: "tom", data: "hi" });
    expectEq("private", await next(s, "private"), ["hi"]);
    onTransport();
    const id = s.id;
    s.disconnect();
    expectEq("server log", await logEntry(observer, id), { nsp: "/", id, user: "tom", reason: "client namespace disconnect" });
    return { id, transport: name };
  },

  async fanout() {
    const n = Number(rest[0]);
    if (!Number.isInteger(n) || n < 1) fail("fanout takes a client count");
    const sockets = [];
    const counts = new Array(n).fill(0);
    let received = 0;
    let allReceived;
    const everyoneReceived = new Promise((r) => (allReceived = r));
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const s = io(url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: AUTH(`f${i}`) });
      s.on("everyone", (data) => {
        if (data?.n !== n) fail(`socket #${i} got ${show(data)}`);
        counts[i] += 1;
        if (counts[i] === 1 && ++received === n) allReceived();
      });
      s.label = `#${i}`;
      sockets.push(s);
      created.push(s);
    }
    let connectedCount = 0;
    progress = `connecting ${n} sockets`;
    await withTimeout(
      Promise.all(
        sockets.map(
          (s) =>
            new Promise((resolve, reject) => {
              s.once("connect", () => {
                connectedCount++;
                progress = `connecting ${n} sockets (${connectedCount} connected)`;
                resolve();
              });
              s.once("connect_error", (e) => reject(new Error(`${s.label}: connect_error ${e.message}`)));
              s.once("disconnect", (reason) => reject(new Error(`${s.label}: disconnected (${reason})`)));
            }),
        ),
      ),
      `${n} sockets to connect (${connectedCount} did)`,
      60_000,
    );
    const connectMs = Date.now() - t0;
    const ids = new Set(sockets.map((s) => s.id));
    expectEq("distinct socket ids", ids.size, n);
    progress = "broadcasting";
    const t1 = Date.now();
    const count = await new Promise((resolve, reject) =>
      sockets[0].timeout(30_000).emit("broadcast_all", { event: "everyone", data: { n } }, (err, c) =>
        err ? reject(err) : resolve(c),
      ),
    );
    expectEq("the server counted every socket", count, n);
    await withTimeout(everyoneReceived, `every socket to receive the broadcast (${received} of ${n} did)`, 30_000);
    const deliverMs = Date.now() - t1;
    // Then a round trip on every socket: anything else queued before it has arrived.
    progress = "round trip on every socket";
    await withTimeout(
      Promise.all(
        sockets.map(
          (s) =>
            new Promise((r) => {
              s.once("echo", r);
              s.emit("echo", "after");
            }),
        ),
      ),
      "an echo on every socket",
      30_000,
    );
    const wrong = counts.map((c, i) => [i, c]).filter(([, c]) => c !== 1);
    expect("every socket received the broadcast exactly once", wrong.length === 0, show(wrong.slice(0, 20)));
    return { clients: n, connectMs, deliverMs };
  },
};

const run = modes[mode];
if (!run) fail(`unknown mode ${show(mode)}; modes: ${Object.keys(modes).join(", ")}`);
run()
  .then((summary) => {
    if (mode !== "vanish") done(summary ?? {});
  })
  .catch((e) => fail(e?.stack ?? String(e)));
