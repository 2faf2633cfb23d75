"""Pipelining through a service whose Lua filter answers some statements itself
(examples/lua-filter.lua): three COM_QUERYs are sent back to back — one the server
answers slowly, one the filter answers (SHOW FILTER STATS), one the server answers —
and the three responses must arrive whole and in order, each with its own sequence ids:
the filter's answer waits until the slow result before it is written.
"""

from common import parse_args
import raw_protocol as rp


def main():
    args = parse_args(lambda p: p.add_argument("--deprecate-eof", choices=["on", "off"], required=True))
    on = args.deprecate_eof == "on"
    c = rp.Conn(args, on)
    end = "OK(0xFE)" if on else "EOF"
    defs = (lambda n: f"{n} defs") if on else (lambda n: f"{n} defs EOF")
    for sql in ("SELECT SLEEP(0.3) AS slept, 'first' AS f", "SHOW FILTER STATS", "SELECT 'third' AS t"):
        c.seq = 0
        c.write_packet(bytes([rp.COM_QUERY]) + sql.encode())
    shapes = []
    for _ in range(3):
        c.seq = 1  # each response starts at sequence id 1
        shape, more = c.read_result()
        assert not more
        shapes.append(" ".join(s for s in shape if not s.startswith("last_row=")))
    expected = [
        f"cols=2 {defs(2)} rows=1 {end}",
        f"cols=4 {defs(4)} rows=1 {end}",
        f"cols=1 {defs(1)} rows=1 {end}",
    ]
    assert shapes == expected, f"\n got      {shapes}\n expected {expected}"
    assert c.query("SELECT 'after' AS a") == [f"cols=1 {defs(1)} rows=1 {end} last_row=056166746572"]
    c.quit()
    print("pipelined: " + " | ".join(shapes))


main()
