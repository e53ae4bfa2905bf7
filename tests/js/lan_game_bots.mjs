// Bots playing `examples/lan_game.rs` (its doc comment lists the events) with the official
// `socket.io-client`, checking what each player receives.
//
// Usage: node lan_game_bots.mjs <mode> <url>
//
//   play      4 bots join the lobby -> 2 matches; ticks at about 30 Hz with increasing tick
//             numbers; acked inputs and the states that follow them; a bot leaves mid-match
//             (`socket.disconnect()`) -> its opponent gets match_end at once and the match
//             room is gone; a bot leaving the lobby is not matched; the lobby still pairs the
//             bot left behind with a new one
//   time_up   (server started with --match-seconds 1) a match ends by itself after 30 ticks;
//             its players can queue again
//   resume    a bot's connection is cut mid-match at the TCP level and it reconnects within
//             the recovery window: `socket.recovered`, the same id, `match_resume`, states of
//             the same match again, its inputs accepted again, its opponent saw it away and
//             never got match_end; then a bot whose match ended while it was cut off comes
//             back to the replayed match_end, out of the ended match's room
//   expire    (server started with --recovery-seconds 2) a bot cut off for longer than the
//             window: its opponent gets match_end when the window is over, not before; the
//             bot comes back as a new socket
//
// Bots use the WebSocket transport only, as game clients do: states are volatile, and a
// long-polling client misses every state sent while it has no GET waiting at the server.
// A bot that must lose its connection reaches the server through a TCP proxy in this
// process (as in recovery.mjs), which can reset its connections and refuse new ones.
//
// On success prints one JSON summary line (`{"ok":true,...}`) to stdout and exits 0. On any
// failure (including the overall timeout) prints the reason to stderr and exits 1.

import { io } from "socket.io-client";
import { tcpProxy } from "./tcp_proxy.mjs";

const [mode, url] = process.argv.slice(2);
const started = Date.now();
const OVERALL_TIMEOUT_MS = 40_000;
// How long one awaited step (an event, an ack, a connect) may take: generous, for a busy
// 2-core machine running debug builds.
const STEP_TIMEOUT_MS = 10_000;
const TICK_HZ = 30;
// How long a cut-off bot waits before each reconnection attempt: longer than the server
// takes to see the reset connection, much shorter than the recovery window.
const RECONNECT_DELAY_MS = 500;
let progress = "starting";
let finished = false;
const created = [];

function fail(reason) {
  if (finished) return;
  finished = true;
  process.stderr.write(`lan_game_bots ${mode} FAILED after ${Date.now() - started} ms while ${progress}:\n${reason}\n`);
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
// Bots: every `state` goes to `bot.states` (with its arrival time), every other event to
// `bot.inbox` (and, never taken out, to `bot.log`). A bot given a proxy connects through
// it and reconnects after a drop; the others never reconnect.

function bot(name, px) {
  const s = px
    ? io(px.url, {
        forceNew: true,
        transports: ["websocket"],
        reconnectionDelay: RECONNECT_DELAY_MS,
        reconnectionDelayMax: RECONNECT_DELAY_MS,
        randomizationFactor: 0,
      })
    : io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  s.label = name;
  s.inbox = [];
  s.log = [];
  s.states = [];
  s.waiters = [];
  s.on("state", (state) => {
    s.states.push({ at: performance.now(), ...state });
    for (const w of [...s.waiters]) w();
  });
  s.onAny((event, ...args) => {
    if (event === "state") return;
    s.inbox.push([event, args]);
    s.log.push([event, args]);
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
    () => `${s.label}: ${what} (inbox: ${show(s.inbox)}, ${s.states.length} states)`,
    ms,
  );
}

/** Takes the first `event` out of the inbox (waiting for it); its first argument. */
function next(s, event, ms) {
  return until(
    s,
    event,
    () => {
      const i = s.inbox.findIndex(([e]) => e === event);
      return i < 0 ? undefined : s.inbox.splice(i, 1)[0][1][0];
    },
    ms,
  );
}

async function connected(s) {
  progress = `connecting ${s.label}`;
  if (!s.connected) {
    await withTimeout(
      new Promise((resolve, reject) => {
        s.once("connect", resolve);
        s.once("connect_error", (e) => reject(new Error(`${s.label}: connect_error ${e?.message}`)));
      }),
      `${s.label} to connect`,
    );
  }
  return s;
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

/** Resolves with the arguments of the next `event` of `s` (a socket event such as `connect`). */
function once(s, event) {
  return withTimeout(new Promise((resolve) => s.once(event, (...args) => resolve(args))), `${s.label}: ${event}`);
}

/** Connects `name` (through `px` if given) and queues it in the lobby; returns the bot. */
async function joined(name, waiting, px) {
  const s = await connected(bot(name, px));
  const ack = await call(s, "join_lobby", { name });
  expectEq(`${name}: join_lobby ack`, ack, { ok: true, waiting });
  return s;
}

/** Waits for the match_start of `a` and `b` and checks they were paired with each other. */
async function paired(a, b, match) {
  const [sa, sb] = [await next(a, "match_start"), await next(b, "match_start")];
  for (const [s, start, other, slot] of [
    [a, sa, b, 0],
    [b, sb, a, 1],
  ]) {
    expectEq(`${s.label}: match`, start.match, match);
    expectEq(`${s.label}: slot`, start.slot, slot);
    expectEq(`${s.label}: tick_hz`, start.tick_hz, TICK_HZ);
    expectEq(`${s.label}: you`, [start.you.id, start.you.name], [s.id, s.label]);
    expectEq(`${s.label}: opponent`, [start.opponent.id, start.opponent.name], [other.id, other.label]);
    s.match = start.match;
    s.slot = slot;
    s.start = start;
  }
}

/** Every state `s` got is for its match, with both players, and tick numbers only go up. */
function checkStates(s, states = s.states) {
  let last = 0;
  for (const st of states) {
    expectEq(`${s.label}: state.match`, st.match, s.match);
    expectEq(`${s.label}: state players`, st.players.map((p) => p.id).sort(), [s.id, s.start.opponent.id].sort());
    expect(`${s.label}: tick numbers increase`, st.tick > last, `tick ${st.tick} after ${last}`);
    last = st.tick;
  }
}

/** What `s` saw of its match over `ms`: states received per second, ticks advanced per second. */
async function tickRate(s, ms) {
  const from = s.states.length;
  const t0 = performance.now();
  await sleep(ms);
  const window = s.states.slice(from).filter((st) => st.at - t0 <= ms);
  expect(`${s.label}: states arrive`, window.length >= 2, `${window.length} states in ${ms} ms`);
  const received = (window.length * 1000) / ms;
  const advanced = ((window.at(-1).tick - window[0].tick) * 1000) / (window.at(-1).at - window[0].at);
  return { received: Math.round(received * 10) / 10, advanced: Math.round(advanced * 10) / 10 };
}

const clamp = (v) => Math.max(0, Math.min(100, v));

/**
 * Sends an input moving `s` along y by `dy` per tick; checks the ack and that every state
 * before its tick shows `s` still at its start and every state from it on has moved it.
 */
async function steer(s, dy) {
  const seen = s.states.at(-1)?.tick ?? 0;
  const ack = await call(s, "input", { dx: 0, dy });
  expect(`${s.label}: input accepted`, ack.accepted === true && Number.isInteger(ack.tick), show(ack));
  expect(`${s.label}: the input applies to a later tick than the last state seen`, ack.tick > seen, `${ack.tick} <= ${seen}`);
  await until(s, `a state of tick ${ack.tick + 10}`, () => (s.states.at(-1)?.tick >= ack.tick + 10 ? true : undefined));
  const [x0, y0] = [s.start.you.x, s.start.you.y];
  let before = 0;
  let after = 0;
  for (const st of s.states) {
    const me = st.players.find((p) => p.id === s.id);
    const want = st.tick < ack.tick ? y0 : clamp(y0 + dy * (st.tick - ack.tick + 1));
    expectEq(`${s.label}: position at tick ${st.tick} (input acked for tick ${ack.tick})`, [me.x, me.y], [x0, want]);
    if (st.tick < ack.tick) before++;
    else after++;
  }
  return { tick: ack.tick, before, after };
}

// ---------------------------------------------------------------------------

const modes = {
  async play() {
    // A player outside any match cannot steer.
    const early = await connected(bot("early"));
    expectEq("input outside a match", await call(early, "input", { dx: 1, dy: 0 }), { accepted: false, reason: "not in a match" });
    early.disconnect();

    // Four bots, one after the other: first come, first paired.
    const ann = await joined("ann", 1);
    const bob = await joined("bob", 2);
    const cat = await joined("cat", 1);
    const dan = await joined("dan", 2);
    await paired(ann, bob, "match:1");
    await paired(cat, dan, "match:2");
    expectEq("joining twice", await call(ann, "join_lobby", { name: "ann" }), { ok: false, error: "already in a match" });
    expectEq("status with two matches", await call(cat, "status"), {
      waiting: [],
      matches: ["match:1", "match:2"],
      rooms: ["match:1", "match:2"],
    });

    // Ticks: measured by every bot at once over the same two seconds.
    const rates = await Promise.all([ann, bob, cat, dan].map((s) => tickRate(s, 2000)));
    for (const [i, r] of rates.entries()) {
      const who = [ann, bob, cat, dan][i].label;
      expect(`${who}: states per second near ${TICK_HZ}`, r.received >= 15 && r.received <= 45, show(r));
      expect(`${who}: ticks per second near ${TICK_HZ}`, r.advanced >= 15 && r.advanced <= 45, show(r));
    }

    // Inputs: bad ones are refused, good ones acked with the tick that first shows them.
    expectEq("out-of-range input", await call(ann, "input", { dx: 2, dy: 0 }), {
      accepted: false,
      reason: "dx and dy must be -1, 0 or 1",
    });
    expectEq("malformed input", await call(ann, "input", "up"), { accepted: false, reason: "dx and dy must be -1, 0 or 1" });
    const steered = await Promise.all([steer(ann, 1), steer(bob, -1), steer(cat, -1), steer(dan, 1)]);
    for (const s of [ann, bob, cat, dan]) checkStates(s);

    // ann leaves mid-match (deliberately: a dropped connection would have the recovery
    // window to come back, see `resume`): bob is told at once, match:1 is gone, match:2
    // goes on.
    progress = "ann leaves";
    ann.disconnect();
    const end = await next(bob, "match_end");
    expectEq("bob's match_end", { ...end, tick: 0 }, {
      match: "match:1",
      tick: 0,
      reason: "opponent_left",
      detail: "client namespace disconnect",
    });
    const bobStates = bob.states.length;
    const catStates = cat.states.length;
    await sleep(500);
    expectEq("states bob got after match_end", bob.states.slice(bobStates), []);
    expect("match:2 still ticks", cat.states.length >= catStates + 5, `${cat.states.length - catStates} states in 500 ms`);
    expectEq("status after the drop", await call(cat, "status"), { waiting: [], matches: ["match:2"], rooms: ["match:2"] });
    expectEq("bob's input after the match", await call(bob, "input", { dx: 1, dy: 0 }), {
      accepted: false,
      reason: "not in a match",
    });

    // A bot that leaves the lobby is not matched with anyone.
    const fay = await joined("fay", 1);
    fay.disconnect();
    const gus = await joined("gus", 1);
    expectEq("status after fay left the lobby", await call(gus, "status"), { waiting: ["gus"], matches: ["match:2"], rooms: ["match:2"] });

    // The lobby still works: bob queues again and is paired with gus.
    expectEq("bob joins again", await call(bob, "join_lobby", { name: "bob" }), { ok: true, waiting: 2 });
    bob.states = [];
    await paired(gus, bob, "match:3");
    await until(gus, "5 states of match:3", () => (gus.states.length >= 5 ? true : undefined));
    await until(bob, "5 states of match:3", () => (bob.states.length >= 5 ? true : undefined));
    checkStates(gus);
    checkStates(bob);
    expectEq("final status", await call(cat, "status"), { waiting: [], matches: ["match:2", "match:3"], rooms: ["match:2", "match:3"] });
    for (const s of [fay, early]) expectEq(`${s.label} got no match`, s.inbox.filter(([e]) => e === "match_start"), []);

    return { rates, steered, dropped: end };
  },

  async resume() {
    const px = await tcpProxy(url);
    const ann = await joined("ann", 1, px);
    const bob = await joined("bob", 2);
    await paired(ann, bob, "match:1");
    // With recovery on, every event but the volatile state carries its offset last.
    const [, startArgs] = ann.log.find(([e]) => e === "match_start");
    expect("match_start ends with the recovery offset", startArgs.length === 2 && typeof startArgs[1] === "string", show(startArgs));
    const before = await steer(ann, 1);
    checkStates(ann);

    // Cut ann's connection; it reconnects by itself after RECONNECT_DELAY_MS.
    progress = "cutting ann's connection";
    const id = ann.id;
    const lastTick = ann.states.at(-1).tick;
    const annStates = ann.states.length;
    const bobStates = bob.states.length;
    const dropped = once(ann, "disconnect");
    const back = once(ann, "connect");
    const cutAt = Date.now();
    px.cut();
    const [why] = await dropped;
    await back;
    const outageMs = Date.now() - cutAt;
    expect("ann is recovered", ann.recovered === true, { recovered: ann.recovered });
    expectEq("ann's id after the cut", ann.id, id);
    const resume = await next(ann, "match_resume");
    expectEq("match_resume", [resume.match, resume.slot, resume.you.id, resume.you.away, resume.opponent.id], ["match:1", 0, id, false, bob.id]);
    expect("match_resume is after the last state ann saw", resume.tick > lastTick, `${resume.tick} <= ${lastTick}`);
    const [, resumeArgs] = ann.log.find(([e]) => e === "match_resume");
    expect("match_resume ends with the recovery offset", resumeArgs.length === 2 && typeof resumeArgs[1] === "string", show(resumeArgs));

    // bob played on and saw ann away, stopped where it was.
    await until(bob, "a state showing ann back", () =>
      bob.states.slice(bobStates).some((st) => st.tick > resume.tick && st.players.some((p) => p.id === id && !p.away)) ? true : undefined,
    );
    const annAway = bob.states
      .slice(bobStates)
      .map((st) => ({ tick: st.tick, me: st.players.find((p) => p.id === id) }))
      .filter(({ me }) => me.away);
    expect("bob saw ann away", annAway.length > 0, `${bob.states.length - bobStates} states since the cut`);
    for (const { tick, me } of annAway) expectEq(`ann's position while away (tick ${tick})`, [me.x, me.y], [resume.you.x, resume.you.y]);
    checkStates(bob);

    // ann gets its match's states again, and steers again.
    const ack = await call(ann, "input", { dx: 0, dy: -1 });
    expect("ann's input after the resume is accepted", ack.accepted === true && ack.tick > resume.tick, show(ack));
    await until(ann, `a state of tick ${ack.tick + 10}`, () => (ann.states.at(-1)?.tick >= ack.tick + 10 ? true : undefined));
    checkStates(ann);
    const after = ann.states.slice(annStates);
    expect("ann's states after the cut are new ones", after.length > 0 && after[0].tick > resume.tick, show(after[0]));
    for (const st of after) {
      const me = st.players.find((p) => p.id === id);
      const want = st.tick < ack.tick ? resume.you.y : clamp(resume.you.y - (st.tick - ack.tick + 1));
      expectEq(`ann's position at tick ${st.tick} (input acked for tick ${ack.tick})`, [me.x, me.y], [resume.you.x, want]);
    }
    expectEq("bob's match_end", bob.log.filter(([e]) => e === "match_end"), []);
    expectEq("status after the resume", await call(bob, "status"), { waiting: [], matches: ["match:1"], rooms: ["match:1"] });

    // A match that ends while its player is cut off: cat comes back to the replayed
    // match_end (its missed event), out of the ended match's room, free to queue again.
    const px2 = await tcpProxy(url);
    const cat = await joined("cat", 1, px2);
    const dan = await joined("dan", 2);
    await paired(cat, dan, "match:2");
    progress = "cutting cat's connection and keeping it out";
    // Taken now: the client forgets its id while disconnected.
    const catId = cat.id;
    px2.refusing = true;
    const catDropped = once(cat, "disconnect");
    px2.cut();
    await catDropped;
    const danStates = dan.states.length;
    await until(dan, "a state showing cat away", () =>
      dan.states.slice(danStates).some((st) => st.players.some((p) => p.id === catId && p.away)) ? true : undefined,
    );
    dan.disconnect();
    progress = "waiting for match:2 to end";
    for (let i = 0; ; i++) {
      const st = await call(bob, "status");
      if (canon(st.matches) === canon(["match:1"])) break;
      expect("match:2 ends after dan left", i < 100, show(st));
      await sleep(50);
    }
    const catBack = once(cat, "connect");
    px2.refusing = false;
    await catBack;
    expect("cat is recovered", cat.recovered === true && cat.id === catId, { recovered: cat.recovered, id: cat.id, catId });
    const catEnd = await next(cat, "match_end");
    expectEq("cat's replayed match_end", { ...catEnd, tick: 0 }, {
      match: "match:2",
      tick: 0,
      reason: "opponent_left",
      detail: "client namespace disconnect",
    });
    expectEq("status after cat is back", await call(cat, "status"), { waiting: [], matches: ["match:1"], rooms: ["match:1"] });
    expectEq("cat joins again", await call(cat, "join_lobby", { name: "cat" }), { ok: true, waiting: 1 });
    expectEq("cat got no match_resume", cat.log.filter(([e]) => e === "match_resume"), []);

    return { id, outageMs, clientReason: why, lastTick, resume: resume.tick, acked: ack.tick, steeredFor: before.after, away: annAway.length };
  },

  async expire() {
    const WINDOW_MS = 2000;
    const px = await tcpProxy(url);
    const ann = await joined("ann", 1, px);
    const bob = await joined("bob", 2);
    await paired(ann, bob, "match:1");
    await until(bob, "5 states", () => (bob.states.length >= 5 ? true : undefined));

    // Cut ann off for longer than the window: bob gets match_end when it is over.
    progress = "cutting ann off";
    const id = ann.id;
    px.refusing = true;
    const cutAt = Date.now();
    px.cut();
    const end = await next(bob, "match_end", WINDOW_MS + STEP_TIMEOUT_MS);
    const endMs = Date.now() - cutAt;
    expectEq("bob's match_end", [end.match, end.reason], ["match:1", "opponent_left"]);
    expect("the detail is why ann's connection dropped", ["transport close", "transport error"].includes(end.detail), show(end));
    // Not before the window is over (less a little for the clocks' granularity).
    expect("match_end comes when the window is over", endMs >= WINDOW_MS - 100, `${endMs} ms after the cut`);
    const annAway = bob.states.filter((st) => st.players.some((p) => p.id === id && p.away));
    expect("bob saw ann away meanwhile", annAway.length > 0, `${bob.states.length} states`);
    checkStates(bob);
    expectEq("status after the window", await call(bob, "status"), { waiting: [], matches: [], rooms: [] });

    // Past the window (and the server's once-a-second sweep of kept sessions) ann comes
    // back as a new socket, free to queue again.
    await sleep(Math.max(0, WINDOW_MS + 1500 - (Date.now() - cutAt)));
    const back = once(ann, "connect");
    px.refusing = false;
    await back;
    expect("ann is not recovered", ann.recovered === false && ann.id !== id, { recovered: ann.recovered, id: ann.id, was: id });
    expectEq("ann joins again", await call(ann, "join_lobby", { name: "ann" }), { ok: true, waiting: 1 });
    return { end, endMs };
  },

  async time_up() {
    const a = await joined("a", 1);
    const b = await joined("b", 2);
    await paired(a, b, "match:1");
    expectEq("match length", a.start.ticks, TICK_HZ);
    const ends = [await next(a, "match_end"), await next(b, "match_end")];
    for (const end of ends) expectEq("match_end", end, { match: "match:1", tick: TICK_HZ, reason: "time_up", detail: "" });
    for (const s of [a, b]) {
      checkStates(s);
      expect(`${s.label}: no state after the last tick`, s.states.every((st) => st.tick <= TICK_HZ), show(s.states.at(-1)));
    }
    expectEq("status after time is up", await call(a, "status"), { waiting: [], matches: [], rooms: [] });
    expectEq("a joins again", await call(a, "join_lobby", { name: "a" }), { ok: true, waiting: 1 });
    expectEq("b joins again", await call(b, "join_lobby", { name: "b" }), { ok: true, waiting: 2 });
    a.states = [];
    b.states = [];
    await paired(a, b, "match:2");
    return { end: ends[0] };
  },
};

if (!url || !/^https?:\/\//.test(url) || !modes[mode]) {
  fail(`usage: node lan_game_bots.mjs <${Object.keys(modes).join("|")}> <url>`);
} else {
  modes[mode]().then(done, (e) => fail(e?.stack ?? e));
}
