// Viewers and admins of `examples/dashboard.rs` (its doc comment lists the events), on the
// official `socket.io-client` with its default transports (long-polling, then the upgrade
// to WebSocket), checking what each receives.
//
// Usage: node dashboard_viewer.mjs <mode> <url> <rate-hz> <admin-token>
//
//   stream   viewers get readings with consecutive sequence numbers at about <rate-hz> and
//            nothing admin-only; an admin gets readings, sensor_raw and admin_stats
//   notice   an admin's notice reaches every viewer and admin; a viewer's is refused by ack
//            and reaches nobody; the viewer stays connected
//   auth     a wrong or missing admin token, an unknown role and a malformed auth payload
//            are refused with connect_error; viewers without auth and admins with the token
//            connect
//
// On success prints one JSON summary line (`{"ok":true,...}`) to stdout and exits 0. On any
// failure (including the overall timeout) prints the reason to stderr and exits 1.

import { io } from "socket.io-client";

const [mode, url, rateArg, token] = process.argv.slice(2);
const rate = Number(rateArg);
const started = Date.now();
const OVERALL_TIMEOUT_MS = 40_000;
// How long one awaited step may take: generous, for a busy 2-core machine.
const STEP_TIMEOUT_MS = 10_000;
let progress = "starting";
let finished = false;
const created = [];

function fail(reason) {
  if (finished) return;
  finished = true;
  process.stderr.write(`dashboard_viewer ${mode} FAILED after ${Date.now() - started} ms while ${progress}:\n${reason}\n`);
  process.exit(1);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`${e?.stack ?? e}`));
setTimeout(() => fail(`overall timeout (${OVERALL_TIMEOUT_MS} ms)`), OVERALL_TIMEOUT_MS).unref();

function done(summary) {
  if (finished) return;
  finished = true;
  for (const s of created) s.disconnect();
  process.stdout.write(JSON.stringify({ ok: true, mode, ms: Date.now() - started, ...summary }) + "\n");
  setTimeout(() => process.exit(0), 50);
}

const show = (v) => JSON.stringify(v);
/** JSON with object keys sorted, to compare values whatever order their keys came in. */
const canon = (v) =>
  JSON.stringify(v, (_k, x) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );
function expect(what, cond, detail = "") {
  if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ""}`);
}
function expectEq(what, got, want) {
  expect(what, canon(got) === canon(want), `want ${show(want)}, got ${show(got)}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === "function" ? what() : what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// Clients: `reading`s go to `s.readings` (with their arrival time), everything else to
// `s.inbox` as `[event, firstArg]`.

const ADMIN = (name) => ({ role: "admin", token, name });
const VIEWER = (name) => ({ role: "viewer", name });

function client(label, auth) {
  const s = io(url, { forceNew: true, reconnection: false, ...(auth === undefined ? {} : { auth }) });
  s.label = label;
  s.inbox = [];
  s.readings = [];
  s.waiters = [];
  s.onAny((event, arg) => {
    if (event === "reading") s.readings.push({ at: performance.now(), ...arg });
    else s.inbox.push([event, arg]);
    for (const w of [...s.waiters]) w();
  });
  created.push(s);
  return s;
}

/** Resolves when `check()` returns something other than undefined (re-checked on every event of `s`). */
function until(s, what, check, ms = STEP_TIMEOUT_MS) {
  progress = `${s.label} waiting for ${what}`;
  return withTimeout(
    new Promise((resolve) => {
      const w = () => {
        const v = check();
        if (v === undefined) return;
        s.waiters = s.waiters.filter((x) => x !== w);
        resolve(v);
      };
      s.waiters.push(w);
      w();
    }),
    () => `${s.label}: ${what} (inbox: ${show(s.inbox)}, ${s.readings.length} readings)`,
    ms,
  );
}

/** Takes the first `event` matching `pred` out of the inbox (waiting for it). */
function next(s, event, pred = () => true, ms) {
  return until(
    s,
    event,
    () => {
      const i = s.inbox.findIndex(([e, a]) => e === event && pred(a));
      return i < 0 ? undefined : s.inbox.splice(i, 1)[0][1];
    },
    ms,
  );
}

const events = (s, name) => s.inbox.filter(([e]) => e === name).map(([, a]) => a);

/** Connects `s` and checks its welcome. */
async function welcomed(s, role, name) {
  progress = `connecting ${s.label}`;
  await withTimeout(
    new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", (e) => reject(new Error(`${s.label}: connect_error ${e?.message}`)));
    }),
    `${s.label} to connect`,
  );
  expectEq(`${s.label}: welcome`, await next(s, "welcome"), { id: s.id, role, name });
  return s;
}

/** The connect_error of `s` (failing if it connects). */
function refused(s) {
  progress = `waiting for the connect_error of ${s.label}`;
  return withTimeout(
    new Promise((resolve, reject) => {
      s.once("connect", () => reject(new Error(`${s.label} connected, a connect_error was expected`)));
      s.once("connect_error", resolve);
    }),
    `the connect_error of ${s.label}`,
  );
}

/** Emits with an acknowledgement; the ack's first argument. */
function call(s, event, ...args) {
  progress = `${s.label} calling ${event}`;
  return new Promise((resolve, reject) => {
    s.timeout(STEP_TIMEOUT_MS).emit(event, ...args, (err, res) =>
      err ? reject(new Error(`${s.label}: no ack for ${event} ${show(args)}: ${err.message}`)) : resolve(res),
    );
  });
}

/** Sequence numbers go up by one, with no gap and no repeat (readings are not volatile). */
function checkConsecutive(what, seqs) {
  for (let i = 1; i < seqs.length; i++) {
    expect(`${what}: consecutive sequence numbers`, seqs[i] === seqs[i - 1] + 1, `${seqs[i]} after ${seqs[i - 1]}`);
  }
}

function checkReadings(s) {
  checkConsecutive(`${s.label}'s readings`, s.readings.map((r) => r.seq));
  for (const r of s.readings) {
    expectEq(`${s.label}: reading keys`, Object.keys(r).sort(), ["at", "at_ms", "sensors", "seq"]);
    expectEq(`${s.label}: sensors`, Object.keys(r.sensors).sort(), ["humidity_pct", "pressure_hpa", "temperature_c"]);
    expect(`${s.label}: sensor values are numbers`, Object.values(r.sensors).every(Number.isFinite), show(r));
  }
  for (let i = 1; i < s.readings.length; i++) {
    expect(`${s.label}: reading times do not go back`, s.readings[i].at_ms >= s.readings[i - 1].at_ms, show(s.readings.slice(i - 1, i + 1)));
  }
}

/** Waits until `s` has a reading later than `seq`: whatever the server sent `s` before that reading has arrived. */
const readingAfter = (s, seq) => until(s, `a reading after #${seq}`, () => (s.readings.at(-1)?.seq > seq ? true : undefined));

// ---------------------------------------------------------------------------

const modes = {
  async stream() {
    const vera = await welcomed(client("vera", VIEWER("vera")), "viewer", "vera");
    const anon = await welcomed(client("anon"), "viewer", "");
    const ada = await welcomed(client("ada", ADMIN("ada")), "admin", "ada");

    // The rate, from what one viewer receives over two seconds.
    await readingAfter(vera, 0);
    const from = vera.readings.length;
    const t0 = performance.now();
    await sleep(2000);
    const got = vera.readings.slice(from).filter((r) => r.at - t0 <= 2000).length;
    const perSecond = got / 2;
    expect(`readings per second near ${rate}`, perSecond >= rate * 0.5 && perSecond <= rate * 1.5, `${got} in 2 s`);

    // The admin also gets the admin-only stream: raw counts for the same readings, and stats.
    const stats = await next(ada, "admin_stats", (st) => st.viewers === 2 && st.admins === 1);
    expectEq("admin_stats keys", Object.keys(stats).sort(), ["admins", "notices", "seq", "viewers"]);
    const raws = events(ada, "sensor_raw");
    expect("ada got sensor_raw", raws.length >= 5, `${raws.length}`);
    checkConsecutive("ada's sensor_raw", raws.map((r) => r.seq));
    for (const r of raws) {
      expectEq("sensor_raw sensors", Object.keys(r.raw).sort(), ["humidity_pct", "pressure_hpa", "temperature_c"]);
      expect("raw values are 12-bit counts", Object.values(r.raw).every((c) => Number.isInteger(c) && c >= 0 && c < 4096), show(r));
    }
    const readingSeqs = new Set(ada.readings.map((r) => r.seq));
    const matched = raws.filter((r) => readingSeqs.has(r.seq)).length;
    expect("sensor_raw and reading share sequence numbers", matched >= raws.length - 1, `${matched} of ${raws.length}`);

    // Viewers get nothing admin-only: a reading later than the last admin-only event has
    // reached them, so anything admin-only sent to them would be in their inbox by now.
    const lastAdminSeq = Math.max(stats.seq, raws.at(-1).seq);
    for (const v of [vera, anon]) {
      await readingAfter(v, lastAdminSeq);
      expect(`${v.label} got only readings`, v.inbox.length === 0, `${v.inbox.length} other events: ${show(v.inbox.slice(0, 3))}...`);
    }
    for (const s of [vera, anon, ada]) checkReadings(s);
    return { perSecond, readings: vera.readings.length, raws: raws.length, stats };
  },

  async notice() {
    const v1 = await welcomed(client("v1", VIEWER("v1")), "viewer", "v1");
    const v2 = await welcomed(client("v2"), "viewer", "");
    const ada = await welcomed(client("ada", ADMIN("ada")), "admin", "ada");
    const everyone = [v1, v2, ada];

    expectEq("ada's notice", await call(ada, "notice", { text: "maintenance at noon" }), { ok: true, delivered: 3 });
    for (const s of everyone) expectEq(`${s.label}: notice`, await next(s, "notice"), { from: "ada", text: "maintenance at noon" });

    // A viewer may not broadcast: refused by ack, delivered to nobody, still connected.
    expectEq("v1's notice", await call(v1, "notice", { text: "hi all" }), { ok: false, error: "forbidden" });
    expectEq("ada's empty notice", await call(ada, "notice", { text: " " }), {
      ok: false,
      error: "a notice needs a text of 1 to 500 bytes",
    });
    expectEq("ada's second notice", await call(ada, "notice", { text: "second" }), { ok: true, delivered: 3 });
    // Events keep their order: had v1's notice gone out, it would come before this one.
    for (const s of everyone) expectEq(`${s.label}: next notice`, await next(s, "notice"), { from: "ada", text: "second" });
    expect("v1 is still connected", v1.connected);
    await readingAfter(v1, v1.readings.at(-1)?.seq ?? 0);
    for (const s of everyone) expectEq(`${s.label}: no other notice`, events(s, "notice"), []);
    return { notices: 2 };
  },

  async auth() {
    const cases = [
      ["wrong token", { role: "admin", token: `${token}x`, name: "eve" }, "invalid admin token", undefined],
      ["no token", { role: "admin", name: "eve" }, "invalid admin token", undefined],
      ["empty token", { role: "admin", token: "" }, "invalid admin token", undefined],
      ["unknown role", { role: "root" }, "unknown role", { role: "root" }],
      ["malformed auth", { role: 5 }, "bad auth", undefined],
    ];
    const refusals = {};
    for (const [label, auth, message, data] of cases) {
      const s = client(label, auth);
      const err = await refused(s);
      expectEq(`${label}: connect_error message`, err.message, message);
      expectEq(`${label}: connect_error data`, err.data, data);
      expect(`${label}: not connected`, !s.connected);
      refusals[label] = err.message;
    }
    await welcomed(client("anon"), "viewer", "");
    const ada = await welcomed(client("ada", ADMIN("ada")), "admin", "ada");
    await next(ada, "sensor_raw");
    return { refusals };
  },
};

if (!url || !/^https?:\/\//.test(url) || !modes[mode] || !(rate > 0) || !token) {
  fail(`usage: node dashboard_viewer.mjs <${Object.keys(modes).join("|")}> <url> <rate-hz> <admin-token>`);
} else {
  modes[mode]().then(done, (e) => fail(e?.stack ?? e));
}
