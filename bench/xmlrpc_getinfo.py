#!/usr/bin/python3
# xmlrpc_getinfo.py - supervisord XML-RPC client for procbusd-bench: wait for RUNNING, time getProcessInfo.
"""Talks to supervisord over its unix socket with the stdlib xmlrpc.client.

Uses supervisor's own transport (supervisor.xmlrpc.SupervisorTransport, the one
supervisorctl uses: one persistent HTTP/1.1 connection) when the Debian package
is importable, else an equivalent minimal transport. Prints one JSON object on
stdout; exit 0 on success, 1 on failure (reason on stderr).

  xmlrpc_getinfo.py wait SOCKET COUNT TIMEOUT_S
      poll getAllProcessInfo() until COUNT processes are RUNNING
  xmlrpc_getinfo.py bench SOCKET NAME WARMUP N
      WARMUP untimed, then N timed getProcessInfo(NAME) round trips in this
      already-started (warm) interpreter; each result is checked
"""
import http.client
import json
import socket
import sys
import time
import xmlrpc.client

try:
    from supervisor.xmlrpc import SupervisorTransport
except ImportError:  # not Debian's python3, or the package is missing
    SupervisorTransport = None


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class _UnixTransport(xmlrpc.client.Transport):
    """Fallback: keep-alive HTTP over a unix socket, like SupervisorTransport."""

    def __init__(self, path):
        super().__init__()
        self.sock_path = path

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._connection = host, _UnixHTTPConnection(self.sock_path)
        return self._connection[1]


def proxy(sock_path):
    if SupervisorTransport is not None:
        t = SupervisorTransport(None, None, "unix://" + sock_path)
        kind = "supervisor.xmlrpc.SupervisorTransport"
    else:
        t = _UnixTransport(sock_path)
        kind = "stdlib Transport over AF_UNIX"
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=t), kind


def cmd_wait(sock_path, count, timeout_s):
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            srv, _ = proxy(sock_path)
            infos = srv.supervisor.getAllProcessInfo()
            running = sum(1 for i in infos if i["statename"] == "RUNNING")
            last = "%d of %d RUNNING" % (running, len(infos))
            if running >= count:
                print(json.dumps({"running": running, "total": len(infos)}))
                return 0
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as e:
            last = "%s: %s" % (type(e).__name__, e)
        time.sleep(0.05)
    sys.stderr.write("xmlrpc_getinfo: timed out waiting for %d RUNNING (%s)\n" % (count, last))
    return 1


def cmd_bench(sock_path, name, warmup, n):
    srv, kind = proxy(sock_path)
    get = srv.supervisor.getProcessInfo
    for _ in range(warmup):
        info = get(name)
    samples = [0] * n
    clock = time.perf_counter_ns
    bad = 0
    t_all = clock()
    for k in range(n):
        t0 = clock()
        info = get(name)
        samples[k] = clock() - t0
        if info["statename"] != "RUNNING" or info["pid"] <= 0:
            bad += 1
    t_all = clock() - t_all
    if bad:
        sys.stderr.write("xmlrpc_getinfo: %d answers were not a RUNNING process\n" % bad)
        return 1
    samples.sort()
    print(json.dumps({
        "transport": kind,
        "name": info["group"] + ":" + info["name"],
        "n": n,
        "mean_ns": t_all / n,
        "p50_ns": samples[n // 2],
        "p99_ns": samples[min(n - 1, (99 * n + 99) // 100 - 1)],
        "min_ns": samples[0],
        "max_ns": samples[-1],
    }))
    return 0


def main(argv):
    try:
        if len(argv) == 5 and argv[1] == "wait":
            return cmd_wait(argv[2], int(argv[3]), float(argv[4]))
        if len(argv) == 6 and argv[1] == "bench":
            return cmd_bench(argv[2], argv[3], int(argv[4]), int(argv[5]))
    except (OSError, xmlrpc.client.Error, http.client.HTTPException, ValueError) as e:
        sys.stderr.write("xmlrpc_getinfo: %s: %s\n" % (type(e).__name__, e))
        return 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
