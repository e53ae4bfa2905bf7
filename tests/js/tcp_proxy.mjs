// A TCP proxy for the interop tests: every connection to it is piped to the server at
// `url`. `cut()` resets every connection through it (both sides, so the server sees the
// connection fail, not a clean close: what a dropped Wi-Fi link or a killed process does),
// and while `refusing` is set new connections are reset at once.

import net from "node:net";

/** Starts a proxy to the server at `url` (`http://host:port`); its own URL is `px.url`. */
export async function tcpProxy(url) {
  const target = new URL(url);
  const pairs = new Set();
  const px = {
    refusing: false,
    cut() {
      for (const { client, server } of pairs) {
        client.resetAndDestroy();
        server.resetAndDestroy();
      }
      pairs.clear();
    },
  };
  const listener = net.createServer((client) => {
    if (px.refusing) {
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(Number(target.port), target.hostname);
    const pair = { client, server };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on("error", drop).on("close", drop);
    server.on("error", drop).on("close", drop);
    client.pipe(server);
    server.pipe(client);
  });
  await new Promise((resolve) => listener.listen(0, "127.0.0.1", resolve));
  listener.unref();
  px.url = `http://127.0.0.1:${listener.address().port}`;
  return px;
}
