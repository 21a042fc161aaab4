"""Shared pieces of the MongoDB tests: a scripted replica-set primary (mockupdb), a rheo
process, a small HTTP client and WebSocket helpers.

Every wait has a deadline; nothing sleeps for correctness (the only sleep is the mock
pacing empty getMore replies, as a real server waits maxAwaitTimeMS).
"""

import http.client
import json
import os
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from bson.son import SON
from mockupdb import MockupDB, OpMsg

TIMEOUT = 15  # seconds, for any single expected step


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hello_doc(port, sessions=True, wire_version=9):
    doc = {
        "ismaster": True,
        "isWritablePrimary": True,
        "secondary": False,
        "setName": "rs0",
        "hosts": ["127.0.0.1:%d" % port],
        "primary": "127.0.0.1:%d" % port,
        "me": "127.0.0.1:%d" % port,
        "minWireVersion": 0,
        "maxWireVersion": wire_version,
        "maxBsonObjectSize": 16777216,
        "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000,
        # As every replica set reports it: the driver then supports sessions (and so
        # transactions, which rheo's bulk POST uses).
        "logicalSessionTimeoutMinutes": 30,
        "ok": 1,
    }
    if not sessions:
        del doc["logicalSessionTimeoutMinutes"]
    return doc


# Commands the driver may send on its own (closing cursors and sessions): acknowledged
# by receive() wherever they arrive, recorded for assertions.
NOISE = ("killCursors", "endSessions")


class Primary:
    """A scripted replica-set primary on `port` (a free one when None); `sessions=False`
    makes it a deployment without sessions (no logicalSessionTimeoutMinutes);
    `wire_version` is its maxWireVersion (9: MongoDB 4.4; 13: 5.0, snapshot reads)."""

    def __init__(self, port=None, standalone=False, sessions=True, wire_version=9):
        self.port = port or free_port()
        doc = hello_doc(self.port, sessions, wire_version)
        if standalone:
            for k in ("setName", "hosts", "primary", "me"):
                doc.pop(k)
        self.server = MockupDB(port=self.port, auto_ismaster=doc, max_wire_version=wire_version,
                               request_timeout=TIMEOUT)
        self.server.autoresponds("hello", doc)
        self.noise = []
        # When set, getMore requests on this cursor met while waiting for another command
        # are answered with an empty batch (the stream is idle).
        self.idle_cursor = None
        # As idle_cursor, for several streams (a live one and a replay): a getMore on one of
        # them is answered empty unless it is the one waited for.
        self.idle_cursors = set()

        def ack(request):
            self.noise.append(request)
            if request.command_name == "killCursors":
                ids = request.doc.get("cursors", [])
                return request.replies(ok=1, cursorsKilled=ids, cursorsNotFound=[],
                                       cursorsAlive=[], cursorsUnknown=[])
            return request.replies(ok=1)

        self.ack = ack
        # The driver closes cursors on its own (after errors, when a stream is destroyed)
        # and waits for the answer: answered in the background.
        self.server.autoresponds(OpMsg(SON([("killCursors", "messages")])), ack)
        # A client pool being destroyed ends its sessions and waits for the answer (a rheo
        # that stops at startup, while the primary is still up).
        def end_sessions(request):
            return request.command_name == "endSessions" and ack(request)

        self.server.autoresponds(end_sessions)
        self._serve_properties_stream()
        self.server.run()

    def _serve_properties_stream(self):
        """rheo's change stream on _properties (its metadata cache), answered in the
        background: opened on a fresh cursor each time, idle getMores answered empty after a
        pause. Tests script it with `props_script` (what the next getMores answer: a list of
        change documents, or a dict of error fields) and `props_hold` (leave the next
        openings to receive())."""
        self.props_script = []
        self.props_hold = False
        self.props_opens = []  # the $changeStream stage of each opening answered
        self.props_getmores = 0
        self.props_cursor = 900
        lock = threading.Lock()

        def later(request, cursor):
            try:
                cursor_reply(request, [], "rheo._properties", cursor, first=False)
            except OSError:
                pass  # the mock stopped

        def respond(request):
            name = request.command_name
            if name == "aggregate" and request.doc.get("aggregate") == "_properties":
                if self.props_hold:
                    return False
                with lock:
                    self.props_cursor += 1
                    cursor = self.props_cursor
                    self.props_opens.append(request.doc["pipeline"][0]["$changeStream"])
                cursor_reply(request, [], "rheo._properties", cursor)
                return True
            if name == "getMore" and request.doc.get("collection") == "_properties":
                cursor = request.doc["getMore"]
                with lock:
                    action = self.props_script.pop(0) if self.props_script else None
                    self.props_getmores += 1
                if isinstance(action, dict):
                    request.replies(ok=0, **action)
                elif action:
                    cursor_reply(request, action, "rheo._properties", cursor, first=False)
                else:  # idle: as a server waits maxAwaitTimeMS (without holding the mock)
                    threading.Timer(0.2, later, (request, cursor)).start()
                return True
            return False

        self.server.autoresponds(respond)

    def props_served(self, getmores, timeout=TIMEOUT):
        """Waits until the _properties stream has sent `getmores` getMores in all (so the
        answers scripted before were delivered)."""
        deadline = time.time() + timeout
        while self.props_getmores < getmores:
            if time.time() > deadline:
                raise AssertionError("the _properties stream sent %d getMores, not %d"
                                     % (self.props_getmores, getmores))
            time.sleep(0.01)

    @property
    def uri(self):
        return ("mongodb://127.0.0.1:%d/?replicaSet=rs0&serverSelectionTimeoutMS=2000"
                "&heartbeatFrequencyMS=500&connectTimeoutMS=2000" % self.port)

    def receive(self, name, timeout=TIMEOUT, cursor=None):
        """The next request, which must be command `name` (a getMore: on `cursor`, when
        given)."""
        deadline = time.time() + timeout
        while True:
            request = self.server.receives(timeout=max(0.1, deadline - time.time()))
            if request is None:
                raise AssertionError("mock stopped while waiting for %s" % name)
            if request.command_name in NOISE and name not in NOISE:
                self.ack(request)
                continue
            if request.command_name == "getMore" and self.is_idle(request, name, cursor):
                self.idle_getmore(request)
                continue
            break
        if request.command_name != name:
            raise AssertionError("expected command %r, got %r" % (name, request.doc))
        if cursor is not None and request.doc["getMore"] != cursor:
            raise AssertionError("expected a getMore on cursor %d, got %r" % (cursor, request.doc))
        return request

    def is_idle(self, request, name, cursor):
        """Whether a getMore met while waiting for `name` (on `cursor`) is an idle one."""
        wanted = name == "getMore" and cursor in (None, request.doc["getMore"])
        if request.doc["getMore"] in self.idle_cursors:
            return not wanted
        return name != "getMore" and self.idle_cursor is not None

    def next_request(self, timeout):
        """The next request, or None when none comes within `timeout` seconds."""
        try:
            request = self.server.receives(timeout=timeout)
        except AssertionError as e:
            if "got nothing" in str(e):
                return None
            raise
        if request is None:
            raise AssertionError("mock stopped")
        return request

    def serve_idle_until(self, done, timeout=TIMEOUT):
        """Answers idle getMores and noise until done() holds; any other request fails."""
        deadline = time.time() + timeout
        while not done():
            if time.time() > deadline:
                raise AssertionError("timed out serving idle streams")
            request = self.next_request(0.1)
            if request is None:
                continue
            if request.command_name in NOISE:
                self.ack(request)
            elif request.command_name == "getMore" and self.is_idle(request, None, None):
                self.idle_getmore(request)
            else:
                raise AssertionError("unexpected request %r" % request.doc)

    def killed(self, cursor):
        """Whether the driver has closed cursor `cursor` (a change stream destroyed)."""
        return any(r.command_name == "killCursors" and cursor in r.doc.get("cursors", [])
                   for r in list(self.noise))

    def idle_getmore(self, request):
        """Answers a getMore with an empty batch after a short pause (as a server waits
        maxAwaitTimeMS; pacing only, not needed for correctness)."""
        cursor = request.doc["getMore"]
        assert cursor == self.idle_cursor or cursor in self.idle_cursors, request.doc
        time.sleep(0.05)
        cursor_reply(request, [], "rheo.messages", cursor, first=False)

    def stop(self):
        self.server.stop()


def cursor_reply(request, docs, ns, cursor_id=0, first=True, cursor_extra=(), **fields):
    """Answers `request` with a cursor batch; `cursor_extra` pairs go into the cursor
    document (postBatchResumeToken), `fields` beside it (operationTime)."""
    key = "firstBatch" if first else "nextBatch"
    cursor = SON([("id", cursor_id), ("ns", ns), (key, docs)] + list(cursor_extra))
    request.replies(SON([("cursor", cursor), ("ok", 1)] + list(fields.items())))


class Rheo:
    """A rheo process started with --mongo-uri; waits for its port line."""

    def __init__(self, binary, uri, extra=()):
        self.log = tempfile.TemporaryFile()
        args = [binary, "--mongo-uri", uri, "--port", "0", "--bind", "127.0.0.1",
                "--log-level", "debug"]
        usage = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
        if "--create-messages" in usage:
            args += ["--create-messages", "false"]  # no startup writes to script
        if "--acl" in usage and "--acl" not in extra:
            args += ["--acl", '[{"roles":["$unauthenticated","$authenticated"],'
                              '"predicate":"path-prefix(\'/\')"}]']  # everything allowed
        self.proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.port = None
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout],
                         daemon=True).start()
        deadline = time.time() + TIMEOUT
        while self.port is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise AssertionError("rheo did not start:\n" + self.stderr())
            if "listening on http://" in line:
                self.port = int(line.split("http://")[1].split(":")[1].split()[0])

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        data = json.dumps(body) if body is not None and not isinstance(body, str) else body
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        return r.status, dict(r.getheaders()), text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def in_background(fn, *args):
    """Runs fn(*args) on a thread; returns a callable that waits for its result."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # re-raised in the waiting thread
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def wait(timeout=TIMEOUT):
        t.join(timeout)
        if t.is_alive():
            raise AssertionError("background call did not finish in %ss" % timeout)
        if "error" in box:
            raise box["error"]
        return box.get("value")

    return wait


class WsClient:
    """A minimal blocking WebSocket client (text frames and close frames only)."""

    def __init__(self, port, path, rcvbuf=None):
        """`rcvbuf`: the socket's SO_RCVBUF, set before connecting (a small one emulates a
        client that reads slowly: rheo's writes soon block)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("connection closed during the WebSocket handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n")[0]
        if b" 101 " not in status:
            raise AssertionError("WebSocket upgrade refused: %r" % head)

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("timed out waiting for a WebSocket frame")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self, timeout=TIMEOUT):
        """(opcode, payload) of the next data or close frame (pings are answered)."""
        deadline = time.time() + timeout
        while True:
            b0, b1 = self._read(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            payload = self._read(n, deadline)
            op = b0 & 0x0F
            if op == 9:  # ping -> pong (masked, as a client must)
                self._send(0xA, payload)
                continue
            return op, payload

    def event(self, timeout=TIMEOUT):
        op, payload = self.frame(timeout)
        if op != 1:
            raise AssertionError("expected a text frame, got opcode %d %r" % (op, payload))
        return json.loads(payload.decode())

    def close_frame(self, timeout=TIMEOUT):
        """(code, reason) of the server's close frame (text frames before it are skipped)."""
        while True:
            op, payload = self.frame(timeout)
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:].decode()

    def _send(self, op, payload):
        mask = os.urandom(4)
        head = bytes([0x80 | op])
        n = len(payload)
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def close(self):
        try:
            self._send(8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


class SseClient:
    """A minimal Server-Sent Events client: a GET with Accept: text/event-stream, then the
    events of the response (comments skipped)."""

    def __init__(self, port, path, headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Accept: text/event-stream\r\n%s\r\n" % (path, port, extra)).encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n", time.time() + TIMEOUT)
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise AssertionError("SSE refused: %r" % head)

    def _until(self, sep, deadline):
        while sep not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("timed out waiting for SSE data")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf.split(sep, 1)
        return out

    def event(self, timeout=TIMEOUT):
        """The next event's fields ({"id", "event", "data"}; data parsed as JSON)."""
        deadline = time.time() + timeout
        while True:
            block = self._until(b"\n\n", deadline).decode()
            fields = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                key, _, val = line.partition(":")
                fields[key] = val[1:] if val.startswith(" ") else val
            if fields:
                if "data" in fields:
                    fields["data"] = json.loads(fields["data"])
                return fields

    def close(self):
        self.sock.close()


def token(n):
    """A resume token _data string, as MongoDB 4.2+ shapes them (hex)."""
    return "82%062X" % n


def change(n, op="insert", doc=None, key=None, update=None):
    """A change document as the server sends it."""
    ev = SON([("_id", SON([("_data", token(n))])), ("operationType", op)])
    if doc is not None:
        ev["fullDocument"] = doc
    ev["ns"] = SON([("db", "rheo"), ("coll", "messages")])
    if key is not None:
        ev["documentKey"] = SON([("_id", key)])
    if update is not None:
        ev["updateDescription"] = update
    return ev


def props_change(n, props, op="replace"):
    """A change document of the _properties stream: `props` (a _properties document, or
    its _id for a delete) replaced, inserted, updated or deleted."""
    key = props if isinstance(props, str) else props["_id"]
    ev = SON([("_id", SON([("_data", token(n))])), ("operationType", op)])
    if op != "delete":
        ev["fullDocument"] = props
    ev["ns"] = SON([("db", "rheo"), ("coll", "_properties")])
    ev["documentKey"] = SON([("_id", key)])
    return ev


def run_tests(tests):
    """Runs the test functions, printing one line each; exits 1 on any failure.

    RHEO_TEST_ONLY=<text> runs the tests whose name holds it; RHEO_TEST_SHARD=<i>/<n> runs
    every n-th test from the i-th (0-based), so that CTest can run n parts in parallel."""
    only = os.environ.get("RHEO_TEST_ONLY")
    shard = os.environ.get("RHEO_TEST_SHARD")
    if shard:
        index, count = (int(x) for x in shard.split("/"))
        tests = tests[index::count]
    failed = 0
    for fn in tests:
        if only and only not in fn.__name__:
            continue
        name = fn.__name__.replace("_", " ")
        start = time.time()
        try:
            fn()
            print("ok   %s (%.1fs)" % (name, time.time() - start), flush=True)
        except BaseException as e:
            failed += 1
            import traceback
            traceback.print_exc()
            print("FAIL %s: %s" % (name, e), flush=True)
    sys.exit(1 if failed else 0)
