"""Pipelining through readwritesplit (crates/dpm/tests/it/rwsplit.rs): four COM_QUERYs
sent back to back — a slow read (a replica), a read hinted to the primary, a session
command (every backend), a read of the variable it set (a replica) — must be answered
whole, in order, each with its own sequence ids, however the session moves between
servers. Prints one line per answer: its first column and @@server_id.
"""

from common import parse_args
import raw_protocol as rp


def values(row_hex):
    """The column values of a text-protocol row (bytes as hex)."""
    row = bytes.fromhex(row_hex)
    out, i = [], 0
    while i < len(row):
        if row[i] == 0xFB:
            out.append(None)
            i += 1
            continue
        n, i = rp.lenenc_int(row, i)
        out.append(row[i:i + n].decode())
        i += n
    return out


def main():
    args = parse_args()
    c = rp.Conn(args, True)
    statements = (
        "SELECT SLEEP(0.3), @@server_id",
        "SELECT 'hinted', @@server_id -- dpm: route to primary",
        "SET @p = 7",
        "SELECT @p, @@server_id",
    )
    for sql in statements:
        c.seq = 0
        c.write_packet(bytes([rp.COM_QUERY]) + sql.encode())
    for n in range(len(statements)):
        c.seq = 1  # each response starts at sequence id 1
        shape, more = c.read_result()
        assert not more
        last = [s for s in shape if s.startswith("last_row=")]
        if last:
            first, server = values(last[0][len("last_row="):])
            print(f"{n + 1}: {first} on {server}")
        else:
            print(f"{n + 1}: {' '.join(shape)}")


main()
