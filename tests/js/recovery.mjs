// Connection state recovery with the official `socket.io-client` against the testbed's
// `/recovery` namespace (`examples/sio_testbed.rs`, started with `--recovery-ms`).
//
// Usage: node recovery.mjs <transport> <url> <window_ms>
//
//   transport: websocket | polling | upgrade (polling first, then the upgrade)
//
// The client reaches the server through a TCP proxy in this process, so the test can cut
// its connections at the TCP level (a reset, not a clean close) and keep it from coming back
// for a while. Three phases, on one client socket:
//   1. recover: ticks flow (`tick n` every 10 ms to the room `ticking`), the proxy resets
//      every connection, the client reconnects within the window: `socket.recovered` on
//      both sides, the same id, rooms and data, no middleware run, and every tick exactly
//      once and in order across the cut, then new ones.
//   2. clean:   `socket.disconnect()` then `connect()`: a new socket, not recovered.
//   3. expire:  the proxy resets every connection and refuses new ones for longer than the
//      window: the client comes back as a new socket.
//
// On success prints one JSON summary line to stdout and exits 0; on failure prints the
// reason to stderr and exits 1.

import { io } from "socket.io-client";
import { tcpProxy } from "./tcp_proxy.mjs";

const [transport, url, windowArg] = process.argv.slice(2);
const WINDOW_MS = Number(windowArg);
const started = Date.now();
const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;
// Longer than the server takes to see a dead connection (the test's ping interval and
// timeout), shorter than the window.
const RECONNECT_DELAY_MS = 1500;
let progress = "starting";
let finished = false;

function fail(reason) {
  if (finished) return;
  finished = true;
  process.stderr.write(`recovery ${transport} FAILED after ${Date.now() - started} ms while ${progress}:\n${reason}\n`);
  process.exit(1);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`${e?.stack ?? e}`));
setTimeout(() => fail(`overall timeout (${OVERALL_TIMEOUT_MS} ms)`), OVERALL_TIMEOUT_MS).unref();

function expect(what, cond, detail = "") {
  if (!cond) throw new Error(`${what}${detail === "" ? "" : `: ${JSON.stringify(detail)}`}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the first `event` from `emitter` (its arguments as an array). */
function next(emitter, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function until(what, cond) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${STEP_TIMEOUT_MS} ms`);
    await sleep(5);
  }
}

async function main() {
  const proxy = await tcpProxy(url);
  const proxied = `${proxy.url}/recovery`;
  const transports = { websocket: ["websocket"], polling: ["polling"], upgrade: ["polling", "websocket"] }[transport];
  expect("a known transport", transports !== undefined, transport);

  const ticks = [];
  const hellos = [];
  const socket = io(proxied, {
    transports,
    reconnectionDelay: RECONNECT_DELAY_MS,
    reconnectionDelayMax: RECONNECT_DELAY_MS,
    randomizationFactor: 0,
  });
  // The offset the server appends is the last argument; the tick number is the first.
  socket.on("tick", (n) => ticks.push(n));
  socket.on("hello", (hello) => hellos.push(hello));
  const whoami = () => socket.timeout(STEP_TIMEOUT_MS).emitWithAck("whoami");

  progress = "connecting";
  await next(socket, "connect");
  await until("the first hello", () => hellos.length === 1);
  const first = await whoami();
  expect("a new socket is not recovered", !socket.recovered && !first.recovered && !hellos[0].recovered, first);
  expect("the new socket is in its rooms", first.rooms.includes("ticking"), first);
  if (transport === "upgrade") {
    progress = "waiting for the upgrade";
    await until("the upgrade", () => socket.io.engine.transport.name === "websocket");
  }

  // 1. recover
  progress = "receiving ticks before the cut";
  await until("20 ticks", () => ticks.length >= 20);
  const beforeCut = ticks.length;
  const lastBeforeCut = ticks[ticks.length - 1];
  const cutAt = Date.now();
  progress = "cutting the connection (recover)";
  proxy.cut();
  await next(socket, "connect");
  const outageMs = Date.now() - cutAt;
  // The client delivers the events that came before the CONNECT answer (the missed ones)
  // just before its `connect`: what arrived since the cut is what the server replayed.
  const replayed = ticks.length - beforeCut;
  progress = "checking the recovered socket";
  await until("the second hello", () => hellos.length === 2);
  const back = await whoami();
  expect("the client sees the socket recovered", socket.recovered === true, { recovered: socket.recovered });
  expect("the server's connect handler saw it recovered", hellos[1].recovered === true, hellos[1]);
  expect("the same id", back.id === first.id && socket.id === first.id, { first, back, client: socket.id });
  expect("the same rooms", JSON.stringify(back.rooms) === JSON.stringify(first.rooms), { first, back });
  expect("the same data", back.visit === first.visit, { first, back });
  expect("no middleware ran again", back.middleware_runs === first.middleware_runs, { first, back });
  progress = "receiving ticks after the cut";
  const afterCount = ticks.length;
  await until("50 new ticks", () => ticks.length >= afterCount + 50);
  const phase1 = ticks.slice();
  for (let i = 1; i < phase1.length; i++) {
    expect("every tick once and in order", phase1[i] === phase1[i - 1] + 1, { at: i, around: phase1.slice(Math.max(0, i - 3), i + 3) });
  }
  // 100 ticks a second went on during the outage: they came back, not skipped.
  expect("the missed ticks were replayed", replayed >= outageMs / 10 / 2, { replayed, outageMs, lastBeforeCut });

  // 2. clean
  progress = "a clean disconnect";
  socket.disconnect();
  await sleep(100);
  socket.connect();
  await next(socket, "connect");
  await until("the third hello", () => hellos.length === 3);
  const clean = await whoami();
  expect("a clean disconnect is not recovered", socket.recovered === false && hellos[2].recovered === false, hellos[2]);
  expect("a new id after a clean disconnect", clean.id !== first.id, { first, clean });
  expect("the middleware ran for it", clean.middleware_runs === first.middleware_runs + 1, { first, clean });

  // 3. expire
  progress = "cutting the connection for longer than the window (expire)";
  proxy.refusing = true;
  proxy.cut();
  await sleep(WINDOW_MS + 1500);
  proxy.refusing = false;
  await next(socket, "connect");
  await until("the fourth hello", () => hellos.length === 4);
  const late = await whoami();
  expect("back after the window: not recovered", socket.recovered === false && hellos[3].recovered === false, hellos[3]);
  expect("back after the window: a new id", late.id !== clean.id, { clean, late });

  socket.disconnect();
  finished = true;
  process.stdout.write(
    JSON.stringify({
      ok: true,
      transport,
      id: first.id,
      recoveredId: back.id,
      outageMs,
      ticksBeforeCut: beforeCut,
      replayed,
      ticks: phase1.length,
      firstTick: phase1[0],
      lastTick: phase1[phase1.length - 1],
      cleanId: clean.id,
      lateId: late.id,
      ms: Date.now() - started,
    }) + "\n",
  );
  process.exit(0);
}

main().catch((e) => fail(e?.stack ?? e));
