"""Integration tests of rheo's MongoDB backend against a real replica set.

Runs when RHEO_TEST_MONGO_URI is set (e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0);
otherwise prints that it was skipped and exits 0. Uses a fresh database
(rheo_it_<random>) mounted at /, dropped at the end.

usage: RHEO_TEST_MONGO_URI=... integration_test.py <path to rheo>
"""

import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Rheo, WsClient, run_tests  # noqa: E402

RHEO = sys.argv[1] if len(sys.argv) > 1 else "build/rheo"
URI = os.environ.get("RHEO_TEST_MONGO_URI", "")


def with_rheo(fn):
    db = "rheo_it_" + uuid.uuid4().hex[:12]
    rheo = Rheo(RHEO, URI, ["--mounts", "/=" + db])
    try:
        fn(rheo)
    except BaseException:
        print(rheo.stderr(), file=sys.stderr)
        raise
    finally:
        rheo.stop()
        try:
            import pymongo
            pymongo.MongoClient(URI, serverSelectionTimeoutMS=5000).drop_database(db)
        except Exception as e:  # cleanup only
            print("could not drop %s: %s" % (db, e), file=sys.stderr)


def create_messages(rheo, stages=None):
    status, headers, body = rheo.request(
        "PUT", "/messages", {"streams": [{"uri": "all", "stages": stages or []}]})
    assert status == 201, (status, body)
    return headers["ETag"]


def test_rest_contract_on_mongodb():
    def run(rheo):
        status, _, _ = rheo.request("GET", "/messages")
        assert status == 404, status
        etag = create_messages(rheo)
        status, _, body = rheo.request("GET", "/messages/_meta")
        assert status == 200 and json.loads(body)["_etag"] == {"$oid": etag}, body
        status, _, body = rheo.request("GET", "/")
        assert status == 200 and json.loads(body) == ["messages"], body

        for i in range(5):
            status, headers, _ = rheo.request("POST", "/messages",
                                              {"_id": i, "n": i, "from": "ab"[i % 2]})
            assert status == 201 and headers["Location"] == "/messages/%d?id_type=NUMBER" % i, \
                (status, headers)
        status, _, _ = rheo.request("POST", "/messages", {"_id": 1})
        assert status == 409, status

        status, _, body = rheo.request("GET", "/messages")
        assert [d["_id"] for d in json.loads(body)] == [4, 3, 2, 1, 0], body
        status, _, body = rheo.request(
            "GET", "/messages?filter={from:'a'}&sort={n:1}&pagesize=2&page=2&keys={n:1}")
        assert json.loads(body) == [{"_id": 4, "n": 4}], body
        status, _, body = rheo.request("GET", "/messages/_size?filter={from:'a'}")
        assert json.loads(body) == {"_size": 3}, body

        status, headers, _ = rheo.request("PUT", "/messages/x", {"v": 1})
        assert status == 404, status
        status, headers, _ = rheo.request("PUT", "/messages/x?wm=upsert", {"v": 1})
        assert status == 201, status
        doc_etag = headers["ETag"]
        status, headers, _ = rheo.request("PATCH", "/messages/x", {"$inc": {"v": 1}},
                                          {"If-Match": "0" * 24})
        assert status == 412 and headers.get("ETag") == doc_etag, (status, headers)
        status, headers, _ = rheo.request("PATCH", "/messages/x", {"$inc": {"v": 1}, "w": 2},
                                          {"If-Match": doc_etag})
        assert status == 200 and headers["ETag"] != doc_etag, status
        status, headers, body = rheo.request("GET", "/messages/x")
        doc = json.loads(body)
        assert doc["v"] == 2 and doc["w"] == 2 and doc["_etag"] == {"$oid": headers["ETag"]}, doc
        status, _, _ = rheo.request("DELETE", "/messages/x")
        assert status == 204, status
        status, _, _ = rheo.request("DELETE", "/messages/x")
        assert status == 404, status

        status, _, _ = rheo.request("DELETE", "/messages")
        assert status == 409, status
        status, headers, _ = rheo.request("DELETE", "/messages", None, {"If-Match": "0" * 24})
        assert status == 412 and headers.get("ETag") == etag, (status, headers)
        status, _, _ = rheo.request("DELETE", "/messages", None, {"If-Match": etag})
        assert status == 204, status
        status, _, _ = rheo.request("GET", "/messages")
        assert status == 404, status

    with_rheo(run)


def test_change_stream_on_mongodb():
    def run(rheo):
        create_messages(rheo)
        ws = WsClient(rheo.port, "/messages/_streams/all")
        status, _, _ = rheo.request("POST", "/messages", {"_id": "a", "m": 1})
        assert status == 201
        ev = ws.event()
        assert ev["operationType"] == "insert" and ev["fullDocument"]["m"] == 1, ev
        assert ev["documentKey"] == {"_id": "a"} and "_data" in ev["_id"], ev
        rheo.request("PATCH", "/messages/a", {"m": 2})
        ev = ws.event()
        assert ev["operationType"] == "update" and ev["fullDocument"]["m"] == 2, ev
        assert ev["updateDescription"]["updatedFields"]["m"] == 2, ev
        # A write made outside rheo reaches the stream too.
        import pymongo
        db = rheo_db(rheo)
        pymongo.MongoClient(URI).get_database(db).messages.insert_one({"_id": "b"})
        ev = ws.event()
        assert ev["operationType"] == "insert" and ev["documentKey"] == {"_id": "b"}, ev
        # Dropping through rheo: drop, invalidate, close 1000.
        _, headers, _ = rheo.request("GET", "/messages/_meta")
        rheo.request("DELETE", "/messages", None, {"If-Match": headers["ETag"]})
        assert ws.event()["operationType"] == "drop"
        assert ws.event()["operationType"] == "invalidate"
        code, reason = ws.close_frame()
        assert code == 1000 and reason == "collection dropped", (code, reason)

    with_rheo(run)


def test_stream_redefinition_closes_sessions_on_mongodb():
    def run(rheo):
        create_messages(rheo)
        ws = WsClient(rheo.port, "/messages/_streams/all")
        status, _, _ = rheo.request("PATCH", "/messages", {"streams": [
            {"uri": "all", "stages": [{"_$match": {"operationType": "delete"}}]}]})
        assert status == 200, status
        code, reason = ws.close_frame()
        assert code == 1000 and reason == "stream definition changed", (code, reason)

    with_rheo(run)


def rheo_db(rheo):
    return next(a for a in rheo.proc.args if a.startswith("/=")).split("=", 1)[1]


if __name__ == "__main__":
    if not URI:
        print("SKIPPED: MongoDB integration tests (set RHEO_TEST_MONGO_URI to a replica set, "
              "e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0)")
        sys.exit(0)
    run_tests([
        test_rest_contract_on_mongodb,
        test_change_stream_on_mongodb,
        test_stream_redefinition_closes_sessions_on_mongodb,
    ])
