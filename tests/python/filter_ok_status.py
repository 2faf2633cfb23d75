"""An OK a filter answers with carries the session's status flags: inside a
transaction the client still sees SERVER_STATUS_IN_TRANS (drivers track transactions
from these flags), outside it does not; affected rows and insert id are the filter's.
Runs against crates/dpm/tests/lua/service_diagnostics.lua (PRETEND answers OK 7/9).
"""

import struct

from common import parse_args
import raw_protocol as rp

SERVER_STATUS_IN_TRANS = 0x0001


def ok_fields(c, sql):
    c.command(bytes([rp.COM_QUERY]) + sql.encode())
    p = c.read_packet()
    assert p[0] == 0x00, f"{sql}: expected OK, got {p[:20]!r}"
    affected, i = rp.lenenc_int(p, 1)
    insert_id, i = rp.lenenc_int(p, i)
    status = struct.unpack_from("<H", p, i)[0]
    return affected, insert_id, bool(status & SERVER_STATUS_IN_TRANS)


def main():
    args = parse_args(lambda p: p.add_argument("--deprecate-eof", choices=["on", "off"], required=True))
    c = rp.Conn(args, args.deprecate_eof == "on")
    out = [f"outside: {ok_fields(c, 'PRETEND')}"]
    ok_fields(c, "BEGIN")
    out.append(f"inside: {ok_fields(c, 'PRETEND')}")
    ok_fields(c, "COMMIT")
    out.append(f"after: {ok_fields(c, 'PRETEND')}")
    c.quit()
    print("\n".join(out))


main()
