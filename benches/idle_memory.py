"""Memory per idle Socket.IO client, in the server process and in the kernel.

    cargo build --release --example bench_server
    python3 benches/idle_memory.py [CLIENTS] [SERVER_BINARY]

Starts the bench server (default target/release/examples/bench_server) on a free loopback
port, opens CLIENTS (default 5000) raw WebSocket connections from 127.0.0.1-16, each joining
the namespace `/`, and prints the growth of the server's RSS and of the kernel's slab caches
(SReclaimable + SUnreclaim in /proc/meminfo) per connection. The kernel's figure covers both
ends of each loopback connection (the clients are in this process), so about half of it is
the server's. The machine should be otherwise quiet: the slab counters are machine-wide.
README.md's deployment notes quote its output. Linux only; standard library only.
"""

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
BINARY = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "target/release/examples/bench_server")

UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)
# The Socket.IO CONNECT to `/`: a masked text frame "40" (mask 0).
CONNECT = bytes([0x81, 0x82, 0, 0, 0, 0]) + b"40"


def slab_kib():
    values = {}
    for line in open("/proc/meminfo"):
        key, value = line.split(":")
        values[key] = int(value.split()[0])
    return values["SReclaimable"] + values["SUnreclaim"]


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def drain(sockets):
    for s in sockets:
        s.setblocking(False)
        try:
            while s.recv(65536):
                pass
        except BlockingIOError:
            pass


def main():
    server = subprocess.Popen([BINARY, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        host, port = server.stdout.readline().split()[-1].rsplit(":", 1)
        time.sleep(0.3)
        rss0, slab0 = rss_kib(server.pid), slab_kib()
        clients = []
        for i in range(CLIENTS):
            s = socket.socket()
            s.bind((f"127.0.0.{1 + i % 16}", 0))
            s.connect((host, int(port)))
            s.sendall(UPGRADE + CONNECT)
            clients.append(s)
            if i % 500 == 499:
                time.sleep(0.05)
        time.sleep(1.0)
        drain(clients)
        time.sleep(1.0)
        rss1, slab1 = rss_kib(server.pid), slab_kib()
        print(
            f"{CLIENTS} clients: server RSS {rss0} -> {rss1} KiB, "
            f"{(rss1 - rss0) / CLIENTS:.2f} KiB per client; kernel slab {slab0} -> {slab1} KiB, "
            f"{(slab1 - slab0) / CLIENTS:.2f} KiB per connection pair "
            f"(~{(slab1 - slab0) / CLIENTS / 2:.2f} KiB for the server's end)"
        )
        for s in clients:
            s.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
