// The benchmark protocol (see examples/bench_server.rs in the repo root) served by the
// reference socket.io server, for benches/run.py: namespace "/", no auth, path
// "/socket.io/", Engine.IO defaults otherwise.
//
//   node server.mjs --port 3000
//
// PING_INTERVAL_MS and PING_TIMEOUT_MS in the environment set the heartbeat (default
// 25000 / 20000 ms), as for the other bench servers.
import { createServer } from "node:http";
import { Server } from "socket.io";

let port = 3000;
const args = process.argv.slice(2);
if (args.length === 2 && args[0] === "--port" && /^\d+$/.test(args[1])) {
  port = Number(args[1]);
} else if (args.length !== 0) {
  console.error("usage: node server.mjs [--port N]");
  process.exit(2);
}

// A millisecond count from the environment, or undefined (engine.io's default) when unset.
function envMs(name) {
  const value = process.env[name];
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    console.error(`${name}=${JSON.stringify(value)} is not a number of milliseconds`);
    process.exit(2);
  }
  return Number(value);
}
const heartbeat = {};
if (envMs("PING_INTERVAL_MS") !== undefined) heartbeat.pingInterval = envMs("PING_INTERVAL_MS");
if (envMs("PING_TIMEOUT_MS") !== undefined) heartbeat.pingTimeout = envMs("PING_TIMEOUT_MS");

const httpServer = createServer();
const io = new Server(httpServer, {
  // Room for the 64 KiB binary scenario with plenty to spare (the default, 1e6, would do too).
  maxHttpBufferSize: 1e7,
  // No compression, like the other servers: both already default to off except polling
  // responses, which engine.io would gzip above 1 KiB for a client sending Accept-Encoding.
  perMessageDeflate: false,
  httpCompression: false,
  ...heartbeat,
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("broadcast", (room, data) => {
    io.to(room).emit("bc", data);
  });
  // The data arrives as a Buffer and goes out as a binary attachment again.
  socket.on("broadcast_bin", (room, data) => {
    io.to(room).emit("bc_bin", data);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  // The harness reads this line to know the server is up.
  console.log(`listening on ${address}:${port}`);
});
