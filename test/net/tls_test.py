#!/usr/bin/python3
"""TLS on the HTTP port (--tls-cert/--tls-key), against a real rheo process and
certificates made by the test with the openssl command: HTTPS with keep-alive and
pipelining, wss:// fan-out, SSE, clients that send plain HTTP, garbage or an old
protocol version (closed without disturbing the others), bad files at startup, and the
certificate read again on SIGHUP while WebSockets stay open.

Usage: tls_test.py path/to/rheo
"""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import websocket  # python3-websocket

RHEO = sys.argv[1] if len(sys.argv) > 1 else "build/rheo"
# The MongoDB driver's counters live in /dev/shm/mongoc-<pid>; a stale file left by a killed
# process makes it warn on stderr, which the one-line checks below would see.
ENV = dict(os.environ, MONGOC_DISABLE_SHM="1")
ALLOW_ALL = '[{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix(\'/\')"}]'


def eventually(condition, deadline=10.0):
    until = time.monotonic() + deadline
    while True:
        result = condition()
        if result or time.monotonic() > until:
            return result
        time.sleep(0.01)


def make_cert(folder, name):
    """A self-signed certificate for 127.0.0.1 with common name `name`: (cert, key)."""
    cert, key = os.path.join(folder, name + ".crt"), os.path.join(folder, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name,
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


class Server:
    """rheo with TLS on a free port, its stderr in a file."""

    def __init__(self, folder, cert, key, extra=()):
        self.log_path = os.path.join(folder, "rheo.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [RHEO, "--port", "0", "--bind", "127.0.0.1", "--data-dir",
             os.path.join(folder, "data"), "--durability", "normal", "--acl", ALLOW_ALL,
             "--tls-cert", cert, "--tls-key", key, "--ws-ping-interval-ms", "60000", *extra],
            stdout=subprocess.PIPE, stderr=self.log_file, env=ENV)
        line = self.proc.stdout.readline().decode()
        self.proc.stdout.close()
        m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("rheo did not start with TLS: %r, log: %s" % (line, self.log()))
        self.port = int(m.group(1))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            self.log_file.close()


def client_context(cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_socket(port, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def open_stream(port, ctx):
    """A wss:// client of /notes/_streams/all."""
    return websocket.create_connection("wss://127.0.0.1:%d/notes/_streams/all" % port,
                                       sslopt={"context": ctx}, timeout=10)


def event_of(ws, doc_id):
    """The next event of `ws` about the document `doc_id` (earlier ones are skipped)."""
    while True:
        ev = json.loads(ws.recv())
        if ev.get("documentKey", {}).get("_id") == doc_id:
            return ev


def read_until_closed(sock):
    out = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return out
        out += chunk


def read_responses(sock, count):
    """Reads `count` HTTP responses (with Content-Length) from `sock`: [(status, body)]."""
    buf, out = b"", []
    while len(out) < count:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode()
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
            if len(buf) >= head_end + 4 + length:
                out.append((int(head.split()[1]), buf[head_end + 4:head_end + 4 + length]))
                buf = buf[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed after %d responses" % len(out))
        buf += chunk
    return out


def metric(server, ctx, name):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    conn.request("GET", "/_metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    m = re.search(r"(?m)^" + name + r"(\{[^}]*\})? (\d+)", text)
    return int(m.group(2)) if m else None


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.cert, cls.key = make_cert(cls.dir.name, "first")
        # The server reads these paths again on reload: copies it owns.
        cls.live_cert = os.path.join(cls.dir.name, "live.crt")
        cls.live_key = os.path.join(cls.dir.name, "live.key")
        for src, dst in ((cls.cert, cls.live_cert), (cls.key, cls.live_key)):
            with open(src, "rb") as s, open(dst, "wb") as d:
                d.write(s.read())
        cls.server = Server(cls.dir.name, cls.live_cert, cls.live_key)
        cls.ctx = client_context(cls.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", cls.server.port, context=cls.ctx)
        conn.request("PUT", "/notes", body='{"streams":[{"uri":"all","stages":[]}]}',
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().status in (200, 201)
        conn.close()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.dir.cleanup()
        assert code == 0, "rheo exited with %s" % code

    def post(self, conn, doc):
        conn.request("POST", "/notes", body=json.dumps(doc),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 201)

    def test_https_requests_share_one_kept_alive_connection(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx,
                                           timeout=10)
        conn.connect()
        first = conn.sock
        self.assertIn(first.version(), ("TLSv1.2", "TLSv1.3"))
        for i in range(5):
            self.post(conn, {"_id": "keep-%d" % i})
        conn.request("GET", '/notes?filter={"_id":{"$regex":"^keep-"}}')
        r = conn.getresponse()
        docs = json.loads(r.read())
        self.assertEqual(r.status, 200)
        self.assertEqual(sorted(d["_id"] for d in docs), ["keep-%d" % i for i in range(5)])
        self.assertIs(conn.sock, first, "the connection was not kept alive")
        conn.close()

    def test_pipelined_requests_are_answered_in_order(self):
        s = tls_socket(self.server.port, self.ctx)
        bodies = [json.dumps({"_id": "pipe-%d" % i, "n": i}).encode() for i in range(3)]
        reqs = b"".join(
            b"POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies)
        reqs += b"GET /notes/pipe-1 HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(reqs)
        answers = read_responses(s, 4)
        self.assertEqual([a[0] for a in answers[:3]], [201, 201, 201])
        self.assertEqual(answers[3][0], 200)
        self.assertEqual(json.loads(answers[3][1])["n"], 1)
        s.close()

    def test_wss_clients_each_get_every_event_in_order(self):
        clients = [open_stream(self.server.port, self.ctx) for _ in range(10)]
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx)
        for i in range(50):
            self.post(conn, {"fan": i})
        for ws in clients:
            got = []
            while len(got) < 50:
                ev = json.loads(ws.recv())
                if "fan" in ev.get("fullDocument", {}):
                    got.append(ev["fullDocument"]["fan"])
            self.assertEqual(got, list(range(50)))
        # One event far larger than a TLS record (16 KiB) and than one write (64 KiB).
        big = "".join(chr(0x61 + i % 26) for i in range(300000))
        self.post(conn, {"_id": "big", "text": big})
        for ws in clients:
            self.assertEqual(event_of(ws, "big")["fullDocument"]["text"], big)
            ws.close()
        conn.close()

    def test_sse_over_tls(self):
        s = tls_socket(self.server.port, self.ctx)
        s.sendall(b"GET /notes/_streams/all HTTP/1.1\r\nHost: x\r\n"
                  b"Accept: text/event-stream\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        self.assertTrue(buf.startswith(b"HTTP/1.1 200"), buf)
        self.assertIn(b"text/event-stream", buf)
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx)
        self.post(conn, {"_id": "sse-1"})
        while b'"sse-1"' not in buf:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "the SSE response ended")
            buf += chunk
        self.assertIn(b"event: change", buf)
        s.close()
        conn.close()

    def test_every_end_of_a_connection_is_a_close_notify(self):
        # Strict: an EOF without close_notify raises (Python ignores it by default).
        ctx = client_context(self.cert)
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)

        def strict_socket():
            raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            return ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)

        def request(method, path, body=b""):
            s = strict_socket()
            s.sendall(b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (method, path, len(body), body))
            answer = read_until_closed(s)  # raises ssl.SSLEOFError/SSLError without it
            s.close()
            return answer

        def define(stages):
            answer = request(b"PUT", b"/ends", json.dumps(
                {"streams": [{"uri": "all", "stages": stages}]}).encode())
            self.assertRegex(answer, rb"^HTTP/1.1 20[01]")

        def websocket_handshake():
            s = strict_socket()
            s.sendall(b"GET /ends/_streams/all HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            return s

        define([])  # an HTTP response with Connection: close, read to its end
        # A WebSocket the client closes: the server's close frame, then close_notify.
        ws = websocket_handshake()
        ws.sendall(bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]))  # masked close 1000
        self.assertTrue(read_until_closed(ws).startswith(b"\x88"))
        ws.close()
        # A WebSocket and an SSE stream the server closes (the stream is redefined).
        ws = websocket_handshake()
        sse = strict_socket()
        sse.sendall(b"GET /ends/_streams/all HTTP/1.1\r\nHost: x\r\n"
                    b"Accept: text/event-stream\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sse.recv(4096)
        define([{"_$match": {"x": 1}}])
        got = b""
        while b"stream definition changed" not in got:
            got += ws.recv(4096)
        ws.sendall(bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]))  # the client's answer
        read_until_closed(ws)
        self.assertIn(b"stream definition changed", read_until_closed(sse))
        ws.close()
        sse.close()

    def test_bad_clients_are_closed_and_others_are_not_disturbed(self):
        ws = open_stream(self.server.port, self.ctx)
        before = metric(self.server, self.ctx, "rheo_tls_handshake_failures_total")
        self.assertIsNotNone(before)

        # Plain HTTP to the TLS port: a plain-text 400 that says why, then the end.
        plain = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        plain.sendall(b"GET /notes HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_until_closed(plain)
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer)
        self.assertIn(b"speaks TLS", answer)
        plain.close()

        # Garbage that starts like a TLS record: at most an alert, then the end.
        junk = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        junk.sendall(b"\x16\x03\x01\x00\x05hello" + os.urandom(300))
        answer = read_until_closed(junk)
        self.assertTrue(answer == b"" or answer.startswith(b"\x15\x03"), answer)  # alert
        junk.close()

        # TLS 1.1 (if this OpenSSL can still offer it) and TLS 1.0: refused in the handshake.
        warnings.simplefilter("ignore", DeprecationWarning)  # what the test is about
        for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.check_hostname = False
            old.verify_mode = ssl.CERT_NONE
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = version
            old.set_ciphers("DEFAULT@SECLEVEL=0")
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                tls_socket(self.server.port, old).close()

        # Every one of them was refused by the server, not just by the client's side.
        self.assertTrue(eventually(
            lambda: metric(self.server, self.ctx, "rheo_tls_handshake_failures_total")
            >= before + 4))
        # The WebSocket opened before is still served.
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx)
        self.post(conn, {"_id": "after-bad-clients"})
        event_of(ws, "after-bad-clients")
        ws.close()
        conn.close()

    def test_zz_sighup_reads_the_certificate_again_and_keeps_websockets(self):
        ws = open_stream(self.server.port, self.ctx)
        cert2, key2 = make_cert(self.dir.name, "second")

        def reloads():
            return self.server.log().count("TLS certificate and key read again")

        def common_name():
            s = tls_socket(self.server.port, client_context(cert2))
            name = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            s.close()
            return name

        # A key that is not a key: the certificate in use stays.
        with open(self.live_key, "wb") as f:
            f.write(b"not a key\n")
        os.kill(self.server.proc.pid, signal.SIGHUP)
        self.assertTrue(eventually(
            lambda: "the TLS certificate in use stays in force" in self.server.log()))
        s = tls_socket(self.server.port, self.ctx)  # still the first certificate
        s.close()

        # The second certificate: new connections get it; the WebSocket stays open.
        for src, dst in ((cert2, self.live_cert), (key2, self.live_key)):
            with open(src, "rb") as s_, open(dst, "wb") as d:
                d.write(s_.read())
        before = reloads()
        os.kill(self.server.proc.pid, signal.SIGHUP)
        self.assertTrue(eventually(lambda: reloads() > before))
        self.assertEqual(common_name(), "second")
        with self.assertRaises(ssl.SSLError):  # the first one's trust no longer fits
            tls_socket(self.server.port, self.ctx)
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port,
                                           context=client_context(cert2))
        self.post(conn, {"_id": "after-cert-reload"})
        event_of(ws, "after-cert-reload")
        ws.close()
        conn.close()
        type(self).ctx = client_context(cert2)


class TlsStartupTest(unittest.TestCase):
    def run_rheo(self, *args):
        with tempfile.TemporaryDirectory() as d:
            return subprocess.run([RHEO, "--port", "0", "--data-dir", os.path.join(d, "data"),
                                   *args], capture_output=True, timeout=30, env=ENV)

    def test_bad_tls_files_stop_startup_with_one_line(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = make_cert(d, "x")
            _, other_key = make_cert(d, "y")
            cases = [
                (["--tls-cert", cert], "needs both tls_cert and tls_key"),
                (["--tls-cert", os.path.join(d, "missing.crt"), "--tls-key", key],
                 "missing.crt"),
                (["--tls-cert", cert, "--tls-key", os.path.join(d, "missing.key")],
                 "missing.key"),
                (["--tls-cert", cert, "--tls-key", other_key], "mismatch"),
            ]
            for args, needle in cases:
                r = self.run_rheo(*args)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 2, (args, err))
                self.assertIn(needle, err, args)
                self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
