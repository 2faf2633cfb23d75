"""Pipelining through a service whose query log wants only some statements (its `match`):
four COM_QUERYs in one write — wanted, not wanted, wanted, not wanted — must come back
whole and in order, and the log must pair each logged line with its own statement's reply
(crates/dpm/tests/it/builtin_filters.rs reads the log).
"""

from common import parse_args
import raw_protocol as rp


def main():
    args = parse_args(lambda p: p.add_argument("--deprecate-eof", choices=["on", "off"], required=True))
    on = args.deprecate_eof == "on"
    c = rp.Conn(args, on)
    end = "OK(0xFE)" if on else "EOF"
    defs = (lambda n: f"{n} defs") if on else (lambda n: f"{n} defs EOF")
    statements = [
        "SELECT 'logged-1' AS l",
        "SELECT 1 AS n UNION SELECT 2 UNION SELECT 3",
        "SELECT 'logged-2' AS l UNION SELECT 'x'",
        "DO 1",
    ]
    # One write: the proxy reads them together and must not mix their replies up.
    out = b""
    for sql in statements:
        payload = bytes([rp.COM_QUERY]) + sql.encode()
        out += len(payload).to_bytes(3, "little") + b"\x00" + payload
    c.sock.sendall(out)
    shapes = []
    for _ in statements:
        c.seq = 1
        shape, more = c.read_result()
        assert not more
        shapes.append(" ".join(s for s in shape if not s.startswith("last_row=")))
    expected = [
        f"cols=1 {defs(1)} rows=1 {end}",
        f"cols=1 {defs(1)} rows=3 {end}",
        f"cols=1 {defs(1)} rows=2 {end}",
        "OK",
    ]
    assert shapes[:3] == expected[:3] and shapes[3].startswith("OK"), f"\n got      {shapes}\n expected {expected}"
    c.quit()
    print("pipelined: " + " | ".join(shapes))


main()
