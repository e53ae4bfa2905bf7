// Smoke test of a bench server with the official client: every event of the benchmark
// protocol over the default transports (polling, then the upgrade to WebSocket), then an
// echo over polling only. Exits 0 when all pass, 1 otherwise.
//
//   node smoke.mjs --port 3000
import { isDeepStrictEqual } from "node:util";
import { io } from "socket.io-client";

const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : NaN;
if (!Number.isInteger(port)) {
  console.error("usage: node smoke.mjs --port N");
  process.exit(2);
}
const url = `http://127.0.0.1:${port}`;
const TIMEOUT = 5000;

// Resolves with the first `event` on `socket`, rejects after TIMEOUT.
function next(socket, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${TIMEOUT} ms`)), TIMEOUT);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok   ${what}`);
}

async function main() {
  const s = io(url, { reconnection: false, timeout: TIMEOUT });
  try {
    await next(s, "connect");
    check(true, "connect");
    // The harness measures WebSocket traffic, so the upgrade must happen.
    if (s.io.engine.transport.name !== "websocket") await next(s.io.engine, "upgrade");
    check(s.io.engine.transport.name === "websocket", "upgraded to websocket");

    check((await s.timeout(TIMEOUT).emitWithAck("join", "room1")) === "ok", "join acked \"ok\"");

    const data = { n: 42, s: "héllo", a: [1, null, true], o: { x: 1.5 } };
    const echoed = await s.timeout(TIMEOUT).emitWithAck("echo", data);
    // Deep equality, not JSON text: a server may reorder object keys (serde_json sorts them).
    check(isDeepStrictEqual(echoed, data), "echo acked with the same data");

    const bc = next(s, "bc");
    s.emit("broadcast", "room1", { hello: "room" });
    const [got] = await bc;
    check(isDeepStrictEqual(got, { hello: "room" }), "broadcast reached the room");

    const bytes = Buffer.alloc(64 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
    const bcBin = next(s, "bc_bin");
    s.emit("broadcast_bin", "room1", bytes);
    const [bin] = await bcBin;
    check(Buffer.isBuffer(bin) && bin.equals(bytes), "broadcast_bin delivered 64 KiB as binary");
  } finally {
    s.close();
  }

  const p = io(url, { reconnection: false, timeout: TIMEOUT, transports: ["polling"] });
  try {
    await next(p, "connect");
    const echoed = await p.timeout(TIMEOUT).emitWithAck("echo", "over polling");
    check(echoed === "over polling" && p.io.engine.transport.name === "polling", "echo over polling");
  } finally {
    p.close();
  }
}

main().then(
  () => { console.log("PASS"); process.exit(0); },
  (e) => { console.log(`FAIL ${e.message}`); process.exit(1); },
);
