"""A minimal raw MySQL-protocol client that checks the shape of result sets
with CLIENT_DEPRECATE_EOF negotiated (--deprecate-eof on) or not (off).

Off: column definitions are followed by an EOF packet, and rows end with an
EOF packet (0xFE, 5 bytes). On: no EOF after column definitions, and rows
end with an OK packet that has the 0xFE header (>= 7 bytes). The same holds
for COM_STMT_PREPARE responses and binary result sets of COM_STMT_EXECUTE.
Packet sequence ids are checked on every packet.
"""

import hashlib
import re
import socket
import struct

from common import parse_args

CLIENT_LONG_PASSWORD = 1
CLIENT_CONNECT_WITH_DB = 8
CLIENT_PROTOCOL_41 = 512
CLIENT_TRANSACTIONS = 8192
CLIENT_SECURE_CONNECTION = 32768
CLIENT_MULTI_STATEMENTS = 1 << 16
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_PS_MULTI_RESULTS = 1 << 18
CLIENT_PLUGIN_AUTH = 1 << 19
CLIENT_DEPRECATE_EOF = 1 << 24
SERVER_MORE_RESULTS_EXISTS = 0x0008

COM_QUIT, COM_QUERY, COM_PING = 0x01, 0x03, 0x0E
COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE = 0x16, 0x17, 0x19
MYSQL_TYPE_LONGLONG = 8


def native_password(password, salt):
    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(salt + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def lenenc_int(buf, i):
    b = buf[i]
    if b < 0xFB:
        return b, i + 1
    if b == 0xFC:
        return struct.unpack_from("<H", buf, i + 1)[0], i + 3
    if b == 0xFD:
        return int.from_bytes(buf[i + 1 : i + 4], "little"), i + 4
    if b == 0xFE:
        return struct.unpack_from("<Q", buf, i + 1)[0], i + 9
    raise AssertionError(f"bad length-encoded integer 0x{b:02x}")


class ServerError(Exception):
    pass


class Conn:
    def __init__(self, args, deprecate_eof):
        self.sock = socket.create_connection((args.host, args.port), timeout=15)
        self.seq = 0
        g = self.read_packet()
        assert g[0] == 10, f"not a v10 greeting: {g[:20]!r}"
        nul = g.index(b"\0", 1)
        i = nul + 1 + 4
        salt = g[i : i + 8]
        i += 8 + 1
        caps = struct.unpack_from("<H", g, i)[0]
        i += 2 + 1 + 2
        caps |= struct.unpack_from("<H", g, i)[0] << 16
        i += 2
        auth_len = g[i]
        i += 1 + 10
        part2 = max(13, auth_len - 8)
        salt += g[i : i + part2 - 1]
        i += part2
        plugin = g[i : g.index(b"\0", i)].decode() if caps & CLIENT_PLUGIN_AUTH else ""
        self.server_caps = caps
        if deprecate_eof:
            assert caps & CLIENT_DEPRECATE_EOF, "server does not offer CLIENT_DEPRECATE_EOF"
        want = (
            CLIENT_LONG_PASSWORD | CLIENT_CONNECT_WITH_DB | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_MULTI_STATEMENTS
            | CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS | CLIENT_PLUGIN_AUTH
            | (CLIENT_DEPRECATE_EOF if deprecate_eof else 0)
        )
        self.caps = want & caps
        self.deprecate_eof = bool(self.caps & CLIENT_DEPRECATE_EOF)
        assert self.deprecate_eof == deprecate_eof
        auth = native_password(args.password, salt) if plugin in ("", "mysql_native_password") else b""
        resp = struct.pack("<IIB23s", self.caps, 1 << 24, 45, b"")
        resp += args.user.encode() + b"\0" + bytes([len(auth)]) + auth
        resp += args.db.encode() + b"\0" + b"mysql_native_password\0"
        self.write_packet(resp)
        while True:
            p = self.read_packet()
            if p[0] == 0x00:
                break
            if p[0] == 0xFF:
                raise ServerError(self.err(p))
            if p[0] == 0xFE:  # AuthSwitchRequest
                nul = p.index(b"\0", 1)
                name = p[1:nul].decode()
                assert name == "mysql_native_password", f"unexpected auth switch to {name}"
                self.write_packet(native_password(args.password, p[nul + 1 : nul + 21]))
                continue
            raise AssertionError(f"unexpected packet during auth: {p[:20]!r}")

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf

    def read_packet(self):
        payload = b""
        while True:
            hdr = self.recv_exact(4)
            n = int.from_bytes(hdr[:3], "little")
            assert hdr[3] == self.seq, f"sequence id {hdr[3]}, expected {self.seq}"
            self.seq = (self.seq + 1) & 0xFF
            payload += self.recv_exact(n)
            if n < 0xFFFFFF:
                return payload

    def write_packet(self, payload):
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF

    def command(self, payload):
        self.seq = 0
        self.write_packet(payload)

    @staticmethod
    def err(p):
        code = struct.unpack_from("<H", p, 1)[0]
        assert p[3:4] == b"#", f"error packet without SQL state: {p!r}"
        return f"ERR {code} ({p[4:9].decode()}) {p[9:].decode(errors='replace')}"

    def read_eof(self):
        p = self.read_packet()
        assert p[0] == 0xFE and len(p) == 5, f"expected an EOF packet, got {p[:20]!r}"
        return "EOF"

    def read_coldefs(self, n):
        for _ in range(n):
            p = self.read_packet()
            assert p[:4] == b"\x03def", f"expected a column definition, got {p[:20]!r}"
        if n and not self.deprecate_eof:
            return [f"{n} defs", self.read_eof()]
        return [f"{n} defs"] if n else []

    def read_result(self, binary=False):
        """One result of a query: returns (shape, more_results)."""
        p = self.read_packet()
        if p[0] == 0x00:
            _, i = lenenc_int(p, 1)
            _, i = lenenc_int(p, i)
            status = struct.unpack_from("<H", p, i)[0]
            return ["OK"], bool(status & SERVER_MORE_RESULTS_EXISTS)
        if p[0] == 0xFF:
            return [self.err(p)], False
        ncols, _ = lenenc_int(p, 0)
        shape = [f"cols={ncols}"] + self.read_coldefs(ncols)
        rows = 0
        while True:
            p = self.read_packet()
            if p[0] == 0xFE and len(p) < 0xFFFFFF:
                break
            if p[0] == 0xFF:
                return shape + [f"rows={rows}", self.err(p)], False
            if binary:
                assert p[0] == 0x00, f"binary row without 0x00 header: {p[:20]!r}"
            rows += 1
            last = p
        shape.append(f"rows={rows}")
        if self.deprecate_eof:
            assert len(p) >= 7, f"expected an OK packet (0xFE header) ending the rows, got {p!r}"
            _, i = lenenc_int(p, 1)
            _, i = lenenc_int(p, i)
            status = struct.unpack_from("<H", p, i)[0]
            shape.append("OK(0xFE)")
        else:
            assert len(p) == 5, f"expected an EOF packet ending the rows, got {p!r}"
            status = struct.unpack_from("<H", p, 3)[0]
            shape.append("EOF")
        if rows:
            shape.append(f"last_row={last.hex()}")
        return shape, bool(status & SERVER_MORE_RESULTS_EXISTS)

    def query(self, sql):
        self.command(bytes([COM_QUERY]) + sql.encode())
        results = []
        while True:
            shape, more = self.read_result()
            results.append(" ".join(shape) + (" +more" if more else ""))
            if not more:
                return results

    def prepare(self, sql):
        self.command(bytes([COM_STMT_PREPARE]) + sql.encode())
        p = self.read_packet()
        if p[0] == 0xFF:
            raise ServerError(self.err(p))
        assert p[0] == 0x00 and len(p) >= 12, f"bad prepare response {p!r}"
        stmt_id, ncols, nparams = struct.unpack_from("<IHH", p, 1)
        shape = [f"prepared cols={ncols} params={nparams}"]
        shape += ["params:"] + self.read_coldefs(nparams)
        shape += ["columns:"] + self.read_coldefs(ncols)
        return stmt_id, nparams, " ".join(shape)

    def execute(self, stmt_id, params):
        body = struct.pack("<BIBI", COM_STMT_EXECUTE, stmt_id, 0, 1)
        if params:
            body += bytes((len(params) + 7) // 8) + b"\x01"
            body += struct.pack("<BB", MYSQL_TYPE_LONGLONG, 0) * len(params)
            body += b"".join(struct.pack("<q", v) for v in params)
        self.command(body)
        results = []
        while True:
            shape, more = self.read_result(binary=True)
            results.append(" ".join(shape) + (" +more" if more else ""))
            if not more:
                return results

    def close_stmt(self, stmt_id):
        self.command(struct.pack("<BI", COM_STMT_CLOSE, stmt_id))  # no response

    def ping(self):
        self.command(bytes([COM_PING]))
        p = self.read_packet()
        assert p[0] == 0x00, f"COM_PING answered {p!r}"
        return "OK"

    def quit(self):
        self.command(bytes([COM_QUIT]))
        self.sock.close()


def main():
    args = parse_args(lambda p: p.add_argument("--deprecate-eof", choices=["on", "off"], required=True))
    on = args.deprecate_eof == "on"
    c = Conn(args, on)
    end = "OK(0xFE)" if on else "EOF"
    defs = lambda n: f"{n} defs" if on else f"{n} defs EOF"  # noqa: E731
    transcript = [f"deprecate_eof={on}"]

    def check(label, got, expected):
        # Statement ids are the server's business (a proxy may renumber them).
        norm = lambda v: re.sub(r"handler \(\d+\)", "handler (N)", repr(v))  # noqa: E731
        got, expected = norm(got), norm(expected)
        assert got == expected, f"{label}:\n got      {got}\n expected {expected}"
        transcript.append(f"{label}: {got}")

    check("rows", c.query("SELECT 1 AS a, 'xy' AS b UNION ALL SELECT 2, NULL"),
          [f"cols=2 {defs(2)} rows=2 {end} last_row=0132fb"])
    check("empty", c.query("SELECT 1 AS a FROM DUAL WHERE 1 = 0"), [f"cols=1 {defs(1)} rows=0 {end}"])
    check("ok", c.query("DO 1"), ["OK"])
    check("multi", c.query("SELECT 'm1'; SELECT 2 FROM DUAL WHERE 0; DO 3"),
          [f"cols=1 {defs(1)} rows=1 {end} last_row=026d31 +more",
           f"cols=1 {defs(1)} rows=0 {end} +more", "OK"])
    check("error", c.query("SELECT * FROM no_such_table"),
          ["ERR 1146 (42S02) Table 'dpmtest.no_such_table' doesn't exist"])

    sid, nparams, shape = c.prepare("SELECT ? AS v, 'k' AS w")
    check("prepare", shape, f"prepared cols=2 params=1 params: {defs(1)} columns: {defs(2)}")
    check("execute", c.execute(sid, [7]), [f"cols=2 {defs(2)} rows=1 {end} last_row=00000700000000000000016b"])
    check("execute again", c.execute(sid, [-8]), [f"cols=2 {defs(2)} rows=1 {end} last_row=0000f8ffffffffffffff016b"])
    c.close_stmt(sid)
    check("execute closed", c.execute(sid, [9]),
          [f"ERR 1243 (HY000) Unknown prepared statement handler ({sid}) given to mysqld_stmt_execute"])

    sid, _, shape = c.prepare("SELECT seq FROM seq_1_to_3 WHERE seq > ?")
    check("prepare 2", shape, f"prepared cols=1 params=1 params: {defs(1)} columns: {defs(1)}")
    check("execute empty", c.execute(sid, [5]), [f"cols=1 {defs(1)} rows=0 {end}"])
    check("execute rows", c.execute(sid, [1]), [f"cols=1 {defs(1)} rows=2 {end} last_row=00000300000000000000"])
    c.close_stmt(sid)

    check("ping", c.ping(), "OK")
    c.quit()
    print("\n".join(transcript))


if __name__ == "__main__":
    main()
