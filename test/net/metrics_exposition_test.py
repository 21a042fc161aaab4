#!/usr/bin/python3
"""GET /_metrics parsed whole by a real Prometheus exposition parser (Debian's
python3-prometheus-client) on a cluster whose node names hold a quote, a backslash and a
line feed: the core labels its samples with its name and its links with the edge's, the
edge with its own name and the core's address. Every label value must come back as given.

Usage: metrics_exposition_test.py path/to/rheo
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

RHEO = sys.argv[1] if len(sys.argv) > 1 else "build/rheo"
ALLOW_ALL = '[{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix(\'/\')"}]'
ENV = dict(os.environ, MONGOC_DISABLE_SHM="1")
CORE_NAME = 'core "one" \\ main'
EDGE_NAME = 'edge\nwith "quotes" \\ and a line feed'


def start(folder, name, *args):
    out = open(os.path.join(folder, name + ".out"), "w+")
    err = open(os.path.join(folder, name + ".err"), "w")
    proc = subprocess.Popen(
        [RHEO, "--port", "0", "--data-dir", os.path.join(folder, name + "-db"), "--acl",
         ALLOW_ALL, "--durability", "normal", *args], stdout=out, stderr=err, env=ENV)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", out.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit("rheo %s did not start: %s" % (name, open(os.path.join(folder, name + ".err")).read()))


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/_metrics" % port, timeout=10) as r:
        return r.read().decode()


def labels(text, metric):
    """The label sets of `metric`'s samples, from the whole text parsed."""
    found = []
    for family in text_string_to_metric_families(text):  # raises on any malformed line
        for sample in family.samples:
            if sample.name == metric:
                found.append(sample.labels)
    return found


def main():
    with tempfile.TemporaryDirectory() as folder:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            cport = s.getsockname()[1]
        secret = ["--cluster-secret", "exposition-test-secret"]
        core, core_port = start(folder, "core", "--node-name", CORE_NAME, "--cluster-listen",
                                "127.0.0.1:%d" % cport, *secret)
        edge, edge_port = start(folder, "edge", "--node-name", EDGE_NAME, "--cluster-join",
                                "127.0.0.1:%d" % cport, *secret)
        try:
            # Wait for the link: the core lists the edge as a peer.
            deadline = time.monotonic() + 30
            while True:
                core_text = metrics(core_port)
                peers = [l.get("peer") for l in labels(core_text, "rheo_cluster_link_up")]
                if EDGE_NAME in peers or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert EDGE_NAME in peers, "the core's peers: %r" % peers
            for l in labels(core_text, "rheo_events_received_total"):
                assert l.get("node") == CORE_NAME, l
            edge_text = metrics(edge_port)
            received = labels(edge_text, "rheo_events_received_total")
            assert received and all(l.get("node") == EDGE_NAME for l in received), received
            ups = labels(edge_text, "rheo_cluster_link_up")
            assert ups and ups[0].get("node") == EDGE_NAME, ups
            print("ok: both nodes' /_metrics parse, names as given")
        finally:
            for p in (edge, core):
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
