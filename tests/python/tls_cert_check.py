"""Checks a server certificate against a CA with Python's ssl module (OpenSSL, the
library MariaDB uses): serves --cert/--key on a loopback port for one handshake and
connects to it trusting only --ca, checking the host name --host.

Prints "verified <TLS version>" or "rejected: <OpenSSL's reason>" (exit 0 both ways).
"""

import argparse
import socket
import ssl
import threading

p = argparse.ArgumentParser()
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--ca", required=True)
p.add_argument("--host", required=True)
args = p.parse_args()

server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(args.cert, args.key)
listener = socket.create_server(("127.0.0.1", 0))
listener.settimeout(10)


def serve():
    try:
        conn, _ = listener.accept()
        conn.settimeout(10)
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)
    except (ssl.SSLError, OSError):
        pass  # the client gave up on the certificate


server = threading.Thread(target=serve, daemon=True)
server.start()

client_ctx = ssl.create_default_context(cafile=args.ca)
try:
    with socket.create_connection(listener.getsockname(), timeout=10) as raw:
        with client_ctx.wrap_socket(raw, server_hostname=args.host) as tls:
            print(f"verified {tls.version()}")
            tls.sendall(b"x")
except ssl.SSLCertVerificationError as e:
    print(f"rejected: {e.verify_message}")
server.join(10)
