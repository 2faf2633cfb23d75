#!/usr/bin/env python3
"""Scale checks for a MySQL proxy (or a server, for comparison), loopback only, bounded.

  idle N        open N authenticated sessions (PyMySQL), keep them idle, report the
                proxy's RSS (from /proc/PID/status) before and after, then close them
  concurrent N  N sessions running queries at the same time for S seconds; counts errors
  burst N       N TCP connects as fast as possible (all within ~1 s), then reads each
                server greeting; counts refusals and missing greetings
  slowread MB   streams an MB-sized result set while reading slowly; samples the
                proxy's peak RSS

Usage: scale.py --port P --user U --password PW [--pid PROXY_PID] MODE N [--seconds S]
Prints one `key=value` line per measurement.
"""
import argparse
import socket
import sys
import threading
import time

import pymysql


def rss_kb(pid):
    if not pid:
        return 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(a):
    return pymysql.connect(host="127.0.0.1", port=a.port, user=a.user, password=a.password,
                           connect_timeout=30, read_timeout=60, write_timeout=60)


def idle(a):
    before = rss_kb(a.pid)
    conns, errors = [], 0
    start = time.time()
    for _ in range(a.n):
        try:
            conns.append(connect(a))
        except Exception as e:  # noqa: BLE001 - count and report
            errors += 1
            if errors <= 3:
                print(f"connect error: {e}", file=sys.stderr)
    opened = time.time() - start
    time.sleep(2)
    after = rss_kb(a.pid)
    # Every session still answers.
    alive = 0
    for c in conns:
        try:
            c.ping(reconnect=False)
            alive += 1
        except Exception:  # noqa: BLE001
            pass
    for c in conns:
        c.close()
    per_conn = (after - before) / max(len(conns), 1)
    print(f"idle sessions={len(conns)} errors={errors} alive={alive} open_s={opened:.1f} "
          f"rss_before_mb={before / 1024:.1f} rss_after_mb={after / 1024:.1f} kb_per_session={per_conn:.2f}")


def concurrent(a):
    counts = [0] * a.n
    errors = [0] * a.n
    barrier = threading.Barrier(a.n)

    def worker(i):
        try:
            c = connect(a)
        except Exception:  # noqa: BLE001
            errors[i] += 1
            barrier.abort()
            return
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        stop = time.time() + a.seconds  # the clock starts once every session is open
        cur = c.cursor()
        while time.time() < stop:
            try:
                cur.execute("SELECT %s, CONNECTION_ID()", (i,))
                row = cur.fetchone()
                if row[0] != i:
                    errors[i] += 1
                counts[i] += 1
            except Exception:  # noqa: BLE001
                errors[i] += 1
                break
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.n)]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_kb(a.pid))
        time.sleep(0.2)
    print(f"concurrent sessions={a.n} queries={sum(counts)} errors={sum(errors)} "
          f"idle_sessions={sum(1 for c in counts if c == 0)} peak_rss_mb={peak / 1024:.1f}")


def burst(a):
    socks, refused = [], 0
    start = time.time()
    for _ in range(a.n):
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", a.port))
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    connect_s = time.time() - start
    greeted = 0
    for s in socks:
        try:
            head = s.recv(4)
            if len(head) == 4 and s.recv(1) == b"\x0a":
                greeted += 1
        except OSError:
            pass
    total_s = time.time() - start
    for s in socks:
        s.close()
    print(f"burst connects={a.n} connect_s={connect_s:.2f} refused={refused} greeted={greeted} total_s={total_s:.2f}")


def slowread(a):
    c = pymysql.connect(host="127.0.0.1", port=a.port, user=a.user, password=a.password,
                        database=a.database, cursorclass=pymysql.cursors.SSCursor, read_timeout=600)
    cur = c.cursor()
    rows = a.n  # one 1 MiB row per MB
    cur.execute(f"SELECT REPEAT('x', 1048576) FROM seq_1_to_{rows}")
    peak, got, start = 0, 0, time.time()
    for i, row in enumerate(cur):
        got += len(row[0])
        if i % 4 == 0:
            peak = max(peak, rss_kb(a.pid))
        time.sleep(0.01)  # a slow reader: at most ~100 rows (100 MB) per second
    c.close()
    print(f"slowread bytes={got} seconds={time.time() - start:.1f} peak_rss_mb={peak / 1024:.1f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="bench")
    p.add_argument("--password", default="benchpw")
    p.add_argument("--pid", type=int, default=0, help="proxy PID to sample RSS from")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--database", default="mysql", help="slowread: any database (SEQUENCE tables need one)")
    p.add_argument("mode", choices=["idle", "concurrent", "burst", "slowread"])
    p.add_argument("n", type=int)
    a = p.parse_args()
    {"idle": idle, "concurrent": concurrent, "burst": burst, "slowread": slowread}[a.mode](a)


if __name__ == "__main__":
    main()
