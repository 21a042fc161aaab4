"""Wire-level tests of rheo's MongoDB backend: rheo runs with --mongo-uri against a
scripted replica-set primary (mockupdb), and each test asserts the commands rheo sends
and the HTTP/WebSocket results.

usage: wire_test.py <path to rheo>   (RHEO_TEST_ONLY=<substring> runs a subset)
"""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bson import ObjectId, Timestamp  # noqa: E402
from bson.son import SON  # noqa: E402
from harness import (NOISE, TIMEOUT, Primary, Rheo, SseClient, WsClient, change,  # noqa: E402
                     cursor_reply, free_port, in_background, props_change, run_tests, token)

RHEO = sys.argv[1] if len(sys.argv) > 1 else "build/rheo"

PROPS_NS = "rheo._properties"
MSG_NS = "rheo.messages"
STREAMS = [SON([("uri", "all"), ("stages", [])])]


def props_doc(etag, streams=STREAMS):
    return SON([("_id", "_properties.messages"), ("streams", streams), ("_etag", etag)])


def expect_props_read(mock, docs):
    """rheo reads the collection's _properties document; answers with `docs`. (Once per
    collection while rheo's _properties stream is up: a cache miss.)"""
    r = mock.receive("find")
    assert r.doc["find"] == "_properties", r.doc
    assert r.doc["filter"] == {"_id": "_properties.messages"}, r.doc
    cursor_reply(r, docs, PROPS_NS)


def expect_list_collections(mock, names, name_filter="messages"):
    r = mock.receive("listCollections")
    assert r.doc.get("nameOnly") is True, r.doc
    if name_filter is not None:
        assert r.doc["filter"] == {"name": name_filter}, r.doc
    cursor_reply(r, [SON([("name", n), ("type", "collection")]) for n in names],
                 "rheo.$cmd.listCollections")


def expect_unknown_collection(mock, call, props_cached=False):
    """rheo finds neither metadata (read, unless `props_cached`: known absent) nor the
    collection: `call` answers 404."""
    if not props_cached:
        expect_props_read(mock, [])
    expect_list_collections(mock, [])
    status, _, body = call()
    assert status == 404 and "does not exist" in body, (status, body)


def props_events(mock, events):
    """The _properties stream delivers `events` (change documents) with its next batch;
    returns once rheo has read them (it asked for the batch after)."""
    seen = mock.props_getmores
    mock.props_script.append(events)
    mock.props_served(seen + 2)


def outside_delete(mock, n):
    """Another process deletes _properties.messages (rheo's cache learns it)."""
    props_events(mock, [props_change(n, "_properties.messages", "delete")])


def assert_no_command(mock, timeout=0.5):
    """rheo sends nothing (but idle getMores and noise) for `timeout` seconds."""
    deadline = time.time() + timeout
    try:
        mock.serve_idle_until(lambda: time.time() > deadline, timeout=timeout + 5)
    except AssertionError as e:
        raise AssertionError("rheo sent a command: %s" % e)


def close_frame_serving_idle(mock, ws):
    """ws's close frame, answering the idle stream's getMores meanwhile (a feed delivers
    metadata changes between two reads of its stream)."""
    box = {}

    def wait():
        try:
            box["value"] = ws.close_frame()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    mock.serve_idle_until(lambda: not t.is_alive())
    if "error" in box:
        raise box["error"]
    return box["value"]


def with_rheo(fn, extra=(), **primary):
    """Runs fn(mock, rheo) with a fresh primary (Primary(**primary)) and rheo (with the
    options `extra`); prints rheo's log on failure."""
    mock = Primary(**primary)
    rheo = None
    try:
        rheo = Rheo(RHEO, mock.uri, extra)
        fn(mock, rheo)
    except BaseException:
        if rheo:
            print(rheo.stderr(), file=sys.stderr)
        raise
    finally:
        # The primary first: a feed thread blocked in an unanswered getMore then fails
        # promptly and rheo shuts down without waiting for socket timeouts.
        mock.stop()
        if rheo:
            rheo.stop()


# ---- startup ----


def test_startup_refuses_a_standalone_server():
    mock = Primary(standalone=True)
    try:
        uri = "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=2000" % mock.port
        r = subprocess.run([RHEO, "--mongo-uri", uri, "--port", "0"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert r.returncode == 2, (r.returncode, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.startswith("rheo: ")]
        assert len(lines) == 1 and "standalone" in lines[0] and "replica set" in lines[0], \
            r.stderr
    finally:
        mock.stop()


def test_startup_reports_an_unreachable_server():
    uri = "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=1000" % free_port()
    r = subprocess.run([RHEO, "--mongo-uri", uri, "--port", "0"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "rheo: cannot connect to MongoDB at 127.0.0.1:" in r.stderr, r.stderr


def test_startup_reports_a_malformed_uri():
    r = subprocess.run([RHEO, "--mongo-uri", "mongodb://", "--port", "0"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2 and "rheo: invalid --mongo-uri" in r.stderr, r.stderr


# ---- REST ----


def test_get_sends_find_with_filter_sort_skip_limit_and_projection():
    def run(mock, rheo):
        call = in_background(rheo.request, "GET",
                             "/messages?filter={from:'a'}&sort={timestamp:-1}&page=2"
                             "&pagesize=2&keys={message:1}")
        r = mock.receive("find")
        assert r.doc["find"] == "messages" and r.doc["$db"] == "rheo", r.doc
        assert r.doc["filter"] == {"from": "a"}, r.doc
        sort = list(r.doc["sort"].items())  # _id may be appended as a tie-breaker
        assert sort in ([("timestamp", -1)], [("timestamp", -1), ("_id", -1)]), r.doc
        assert r.doc["skip"] == 2 and r.doc["limit"] == 2, r.doc
        assert r.doc["projection"] == {"message": 1}, r.doc
        cursor_reply(r, [SON([("_id", 1), ("message", "x")]),
                         SON([("_id", 2), ("message", "y")])], MSG_NS)
        status, _, body = call()
        assert status == 200 and body == '[{"_id":1,"message":"x"},{"_id":2,"message":"y"}]', \
            (status, body)

        # Defaults: newest first, 100 per page; no documents and no collection -> 404.
        call = in_background(rheo.request, "GET", "/messages")
        r = mock.receive("find")
        assert r.doc["filter"] == {} and list(r.doc["sort"].items()) == [("_id", -1)], r.doc
        assert r.doc["limit"] == 100 and "skip" not in r.doc, r.doc
        assert "projection" not in r.doc, r.doc
        cursor_reply(r, [], MSG_NS)
        expect_unknown_collection(mock, call)

    with_rheo(run)


def test_size_counts_with_the_filter():
    def run(mock, rheo):
        call = in_background(rheo.request, "GET", "/messages/_size?filter={from:'a'}")
        expect_props_read(mock, [props_doc(ObjectId())])
        r = mock.receive("aggregate")
        assert r.doc["aggregate"] == "messages", r.doc
        assert r.doc["pipeline"][0] == {"$match": {"from": "a"}}, r.doc
        assert "$group" in r.doc["pipeline"][-1], r.doc
        cursor_reply(r, [SON([("_id", 1), ("n", 3)])], MSG_NS)
        status, _, body = call()
        assert status == 200 and body == '{"_size":3}', (status, body)

    with_rheo(run)


def test_document_writes_send_insert_update_and_delete():
    def run(mock, rheo):
        # POST: insert with a generated ObjectId _id (first) and an _etag.
        call = in_background(rheo.request, "POST", "/messages", {"message": "hi", "from": "a"})
        r = mock.receive("insert")
        assert r.doc["insert"] == "messages", r.doc
        doc = r.doc["documents"][0]
        assert list(doc.keys())[0] == "_id" and isinstance(doc["_id"], ObjectId), doc
        assert doc["message"] == "hi" and doc["from"] == "a", doc
        assert isinstance(doc["_etag"], ObjectId), doc
        r.replies(ok=1, n=1)
        status, headers, _ = call()
        assert status == 201, status
        assert headers["Location"] == "/messages/" + str(doc["_id"]), headers
        assert headers["ETag"] == str(doc["_etag"]), headers

        # POST with an existing _id: E11000 -> 409.
        call = in_background(rheo.request, "POST", "/messages", {"_id": "x", "message": "m"})
        r = mock.receive("insert")
        assert r.doc["documents"][0]["_id"] == "x", r.doc
        r.replies(ok=1, n=0, writeErrors=[{"index": 0, "code": 11000,
                                           "errmsg": "E11000 duplicate key error"}])
        status, _, body = call()
        assert status == 409, (status, body)

        # PUT: replace, no upsert; the body gets _id first and a fresh _etag.
        call = in_background(rheo.request, "PUT", "/messages/x", {"message": "new"})
        r = mock.receive("update")
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "x"} and not u.get("upsert", False), u
        assert list(u["u"].keys()) == ["_id", "message", "_etag"] and u["u"]["_id"] == "x", u
        r.replies(ok=1, n=1, nModified=1)
        status, headers, _ = call()
        assert status == 200 and headers["ETag"] == str(u["u"]["_etag"]), (status, headers)

        # PUT ?wm=upsert of a new document: upsert flag, 201.
        call = in_background(rheo.request, "PUT", "/messages/y?wm=upsert", {"message": "n"})
        r = mock.receive("update")
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "y"} and u["upsert"] is True, u
        r.replies(ok=1, n=1, nModified=0, upserted=[{"index": 0, "_id": "y"}])
        status, _, _ = call()
        assert status == 201, status

        # PATCH with If-Match: operators as an update document, the etag in the filter;
        # no match but the document exists -> 412 with the document's current ETag.
        etag = ObjectId()
        call = in_background(rheo.request, "PATCH", "/messages/x",
                             {"$inc": {"n": 1}, "a": 2}, {"If-Match": str(etag)})
        r = mock.receive("update")
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "x", "_etag": etag} and not u.get("upsert", False), u
        assert u["u"]["$inc"] == {"n": 1}, u
        assert u["u"]["$set"]["a"] == 2 and isinstance(u["u"]["$set"]["_etag"], ObjectId), u
        r.replies(ok=1, n=0, nModified=0)
        r = mock.receive("find")
        assert r.doc["find"] == "messages" and r.doc["filter"] == {"_id": "x"}, r.doc
        current = ObjectId()
        cursor_reply(r, [SON([("_id", "x"), ("_etag", current)])], MSG_NS)
        status, headers, body = call()
        assert status == 412 and headers.get("ETag") == str(current), (status, headers, body)

        # DELETE with a stale If-Match: the same.
        call = in_background(rheo.request, "DELETE", "/messages/x", None,
                             {"If-Match": str(etag)})
        r = mock.receive("delete")
        assert r.doc["deletes"][0]["q"] == {"_id": "x", "_etag": etag}, r.doc
        r.replies(ok=1, n=0)
        r = mock.receive("find")
        assert r.doc["filter"] == {"_id": "x"}, r.doc
        cursor_reply(r, [SON([("_id", "x"), ("_etag", current)])], MSG_NS)
        status, headers, body = call()
        assert status == 412 and headers.get("ETag") == str(current), (status, headers, body)

        # PUT ?wm=upsert with If-Match of a document that does not exist: 412 without an ETag.
        call = in_background(rheo.request, "PUT", "/messages/w?wm=upsert", {"a": 1},
                             {"If-Match": str(etag)})
        r = mock.receive("update")
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "w", "_etag": etag} and not u.get("upsert", False), u
        r.replies(ok=1, n=0, nModified=0)
        r = mock.receive("find")
        cursor_reply(r, [], MSG_NS)
        status, headers, body = call()
        assert status == 412 and "ETag" not in headers, (status, headers, body)

        # PATCH ?wm=upsert: the upsert flag.
        call = in_background(rheo.request, "PATCH", "/messages/z?wm=upsert", {"a": 1})
        r = mock.receive("update")
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "z"} and u["upsert"] is True, u
        assert u["u"]["$set"]["a"] == 1, u
        r.replies(ok=1, n=1, nModified=0, upserted=[{"index": 0, "_id": "z"}])
        status, _, _ = call()
        assert status == 201, status

        # GET one document.
        call = in_background(rheo.request, "GET", "/messages/x")
        r = mock.receive("find")
        assert r.doc["filter"] == {"_id": "x"} and r.doc["limit"] == 1, r.doc
        etag = ObjectId()
        cursor_reply(r, [SON([("_id", "x"), ("message", "new"), ("_etag", etag)])], MSG_NS)
        status, headers, body = call()
        assert status == 200 and headers["ETag"] == str(etag), (status, headers)
        assert '"message":"new"' in body, body

        # DELETE: delete one; absent -> 404 (after checking the collection exists).
        call = in_background(rheo.request, "DELETE", "/messages/x")
        r = mock.receive("delete")
        d = r.doc["deletes"][0]
        assert d["q"] == {"_id": "x"} and d["limit"] == 1, d
        r.replies(ok=1, n=1)
        status, _, _ = call()
        assert status == 204, status
        call = in_background(rheo.request, "DELETE", "/messages/gone")
        r = mock.receive("delete")
        r.replies(ok=1, n=0)
        expect_props_read(mock, [props_doc(ObjectId())])
        status, _, body = call()
        assert status == 404 and "document" in body, (status, body)

    with_rheo(run)


def test_collection_metadata_lives_in_properties():
    def run(mock, rheo):
        # PUT /messages on a new collection: create + upsert of _properties.messages.
        call = in_background(rheo.request, "PUT", "/messages",
                             {"streams": [{"uri": "all", "stages": []}]})
        expect_props_read(mock, [])
        expect_list_collections(mock, [])
        r = mock.receive("create")
        assert r.doc["create"] == "messages", r.doc
        r.replies(ok=1)
        r = mock.receive("update")
        assert r.doc["update"] == "_properties", r.doc
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "_properties.messages"} and u["upsert"] is True, u
        assert u["u"]["_id"] == "_properties.messages", u
        assert u["u"]["streams"] == [{"uri": "all", "stages": []}], u
        etag = u["u"]["_etag"]
        assert isinstance(etag, ObjectId), u
        r.replies(ok=1, n=1, nModified=0, upserted=[{"index": 0, "_id": "_properties.messages"}])
        # The answer's ETag comes from the cache, which the write updated: no read.
        status, headers, _ = call()
        assert status == 201 and headers["ETag"] == str(etag), (status, headers)

        # GET /messages/_meta: from the cache, no command.
        status, _, body = rheo.request("GET", "/messages/_meta")
        assert status == 200 and '"streams"' in body and str(etag) in body, (status, body)

        # PATCH with the wrong If-Match: 412 without writing, with the current ETag.
        status, headers, _ = rheo.request("PATCH", "/messages", {"x": 1},
                                          {"If-Match": str(ObjectId())})
        assert status == 412 and headers.get("ETag") == str(etag), (status, headers)

        # A PATCH whose write, conditional on the etag read, matches nothing (another
        # process wrote the metadata meanwhile): 412 with the winner's ETag, read again.
        call = in_background(rheo.request, "PATCH", "/messages", {"x": 1})
        r = mock.receive("update")
        assert r.doc["update"] == "_properties", r.doc
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "_properties.messages", "_etag": etag}, u
        assert not u.get("upsert", False), u
        r.replies(ok=1, n=0, nModified=0)
        etag = ObjectId()
        expect_props_read(mock, [props_doc(etag)])
        status, headers, _ = call()
        assert status == 412 and headers.get("ETag") == str(etag), (status, headers)

        # DELETE with the right If-Match: drop + delete of the _properties document.
        call = in_background(rheo.request, "DELETE", "/messages", None, {"If-Match": str(etag)})
        r = mock.receive("drop")
        assert r.doc["drop"] == "messages", r.doc
        r.replies(ok=1)
        r = mock.receive("delete")
        assert r.doc["delete"] == "_properties", r.doc
        assert r.doc["deletes"][0]["q"] == {"_id": "_properties.messages"}, r.doc
        r.replies(ok=1, n=1)
        status, _, _ = call()
        assert status == 204, status

        # GET /: listCollections (without system.* and _properties) + _properties ids.
        call = in_background(rheo.request, "GET", "/")
        expect_list_collections(mock, ["messages", "_properties", "system.views", "b"], None)
        r = mock.receive("find")
        assert r.doc["find"] == "_properties", r.doc
        cursor_reply(r, [SON([("_id", "_properties.c")])], PROPS_NS)
        status, _, body = call()
        assert status == 200 and body == '["b","c","messages"]', (status, body)

    with_rheo(run)


def expect_list_indexes(mock, indexes):
    """rheo lists the collection's indexes; answers with `indexes`."""
    r = mock.receive("listIndexes")
    assert r.doc["listIndexes"] == "messages" and r.doc["$db"] == "rheo", r.doc
    cursor_reply(r, indexes, "rheo.$cmd.listIndexes")


ID_INDEX = SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])
TS_INDEX = SON([("v", 2), ("key", SON([("timestamp", -1)])), ("name", "ts"), ("unique", True),
                ("background", True)])


def test_index_api_maps_to_index_commands():
    def run(mock, rheo):
        # GET _indexes: listIndexes, shown with _id and the options the API knows.
        call = in_background(rheo.request, "GET", "/messages/_indexes")
        expect_list_indexes(mock, [ID_INDEX, TS_INDEX])
        status, _, body = call()
        assert status == 200 and body == ('[{"_id":"_id_","key":{"_id":1}},'
                                          '{"_id":"ts","key":{"timestamp":-1},"unique":true}]'), \
            (status, body)

        # PUT: createIndexes with the key, the URL's name (ops.name ignored) and the options.
        call = in_background(rheo.request, "PUT", "/messages/_indexes/ts",
                             {"keys": {"timestamp": -1, "from": 1},
                              "ops": {"unique": True, "name": "other",
                                      "partialFilterExpression": {"from": {"$exists": True}}}})
        expect_props_read(mock, [props_doc(ObjectId())])
        expect_list_indexes(mock, [ID_INDEX])
        r = mock.receive("createIndexes")
        assert r.doc["createIndexes"] == "messages" and r.doc["$db"] == "rheo", r.doc
        spec = r.doc["indexes"]
        assert len(spec) == 1, r.doc
        assert list(spec[0]["key"].items()) == [("timestamp", -1), ("from", 1)], r.doc
        assert spec[0]["name"] == "ts" and spec[0]["unique"] is True, r.doc
        assert spec[0]["partialFilterExpression"] == {"from": {"$exists": True}}, r.doc
        assert set(spec[0].keys()) == {"key", "name", "unique", "partialFilterExpression"}, r.doc
        r.replies(ok=1, createdCollectionAutomatically=False, numIndexesBefore=1,
                  numIndexesAfter=2)
        status, _, body = call()
        assert status == 201, (status, body)

        # PUT of a name that exists: 409 without createIndexes.
        call = in_background(rheo.request, "PUT", "/messages/_indexes/ts",
                             {"keys": {"timestamp": -1}})
        expect_list_indexes(mock, [ID_INDEX, TS_INDEX])
        status, _, body = call()
        assert status == 409 and "already exists" in body, (status, body)

        # Key values are MongoDB's to check: any number and the index types go as given.
        call = in_background(rheo.request, "PUT", "/messages/_indexes/n",
                             {"keys": {"a": 2, "b": -0.5, "body": "text"}})
        expect_list_indexes(mock, [ID_INDEX])
        r = mock.receive("createIndexes")
        key = list(r.doc["indexes"][0]["key"].items())
        assert key == [("a", 2), ("b", -0.5), ("body", "text")], r.doc
        r.replies(ok=1, createdCollectionAutomatically=False, numIndexesBefore=1,
                  numIndexesAfter=2)
        status, _, body = call()
        assert status == 201, (status, body)

        # A unique index over duplicates (E11000 from createIndexes): 400.
        call = in_background(rheo.request, "PUT", "/messages/_indexes/u",
                             {"keys": {"from": 1}, "ops": {"unique": True}})
        expect_list_indexes(mock, [ID_INDEX])
        r = mock.receive("createIndexes")
        r.replies(ok=0, code=11000, codeName="DuplicateKey",
                  errmsg="E11000 duplicate key error collection: rheo.messages index: u")
        status, _, body = call()
        assert status == 400 and "duplicate" in body, (status, body)

        # PUT without keys and PUT of a reserved name: 400 before any command.
        status, _, body = rheo.request("PUT", "/messages/_indexes/k", {"ops": {}})
        assert status == 400 and "keys" in body, (status, body)
        status, _, body = rheo.request("PUT", "/messages/_indexes/_k", {"keys": {"a": 1}})
        assert status == 400, (status, body)

        # DELETE: dropIndexes of that name; unknown: 404; _id_: 400 before any command.
        call = in_background(rheo.request, "DELETE", "/messages/_indexes/ts")
        expect_list_indexes(mock, [ID_INDEX, TS_INDEX])
        r = mock.receive("dropIndexes")
        assert r.doc["dropIndexes"] == "messages" and r.doc["index"] == "ts", r.doc
        assert r.doc["$db"] == "rheo", r.doc
        r.replies(ok=1, nIndexesWas=2)
        status, _, body = call()
        assert status == 204, (status, body)
        call = in_background(rheo.request, "DELETE", "/messages/_indexes/gone")
        expect_list_indexes(mock, [ID_INDEX])
        status, _, body = call()
        assert status == 404 and "gone" in body, (status, body)
        status, _, body = rheo.request("DELETE", "/messages/_indexes/_id_")
        assert status == 400, (status, body)

        # An unknown collection (its metadata deleted by another process): 404.
        outside_delete(mock, 1)
        call = in_background(rheo.request, "DELETE", "/messages/_indexes/ts")
        expect_unknown_collection(mock, call, props_cached=True)

    with_rheo(run)


def test_explain_maps_to_mongodbs_explain_command():
    def run(mock, rheo):
        # An index scan: the find runs, then explain with the same find, executionStats.
        call = in_background(rheo.request, "GET",
                             "/messages?sort={timestamp:-1}&pagesize=15&explain=true")
        cursor_reply(mock.receive("find"), [SON([("_id", 1)])], MSG_NS)
        r = mock.receive("explain")
        assert r.doc["verbosity"] == "executionStats", r.doc
        inner = r.doc["explain"]
        assert inner["find"] == "messages" and inner["limit"] == 15, r.doc
        assert inner["sort"] == SON([("timestamp", -1), ("_id", -1)]), r.doc
        r.replies(SON([
            ("queryPlanner", SON([("winningPlan", SON([
                ("stage", "LIMIT"),
                ("inputStage", SON([("stage", "FETCH"), ("inputStage", SON([
                    ("stage", "IXSCAN"), ("indexName", "timestamp_-1"),
                    ("indexBounds", SON([("timestamp", ["[MaxKey, MinKey]"])])),
                    ("direction", "forward")]))]))]))])),
            ("executionStats", SON([("nReturned", 1), ("totalKeysExamined", 1),
                                    ("totalDocsExamined", 1)])),
            ("ok", 1)]))
        status, _, body = call()
        assert status == 200, (status, body)
        assert json.loads(body) == {"index": "timestamp_-1", "examined": 1,
                                    "bounds": 'timestamp_-1: {"timestamp":["[MaxKey, MinKey]"]}',
                                    "inMemorySort": False, "returned": 1}, body

        # A collection scan sorted in memory, as a slot-based plan (MongoDB 6+) shows it.
        call = in_background(rheo.request, "GET", "/messages?sort={n:1}&explain=true")
        cursor_reply(mock.receive("find"), [SON([("_id", 1)]), SON([("_id", 2)])], MSG_NS)
        r = mock.receive("explain")
        r.replies(SON([
            ("queryPlanner", SON([("winningPlan", SON([("queryPlan", SON([
                ("stage", "SORT"), ("inputStage", SON([("stage", "COLLSCAN")]))])),
                ("slotBasedPlan", SON())]))])),
            ("executionStats", SON([("nReturned", 2), ("totalKeysExamined", 0),
                                    ("totalDocsExamined", 40)])),
            ("ok", 1)]))
        status, _, body = call()
        assert status == 200 and json.loads(body) == {
            "index": "COLLSCAN", "examined": 40, "bounds": "collection scan",
            "inMemorySort": True, "returned": 2}, (status, body)

        # A failing explain is the request's error.
        call = in_background(rheo.request, "GET", "/messages?explain=true")
        cursor_reply(mock.receive("find"), [], MSG_NS)
        mock.receive("explain").replies(ok=0, code=2, errmsg="bad plan")
        status, _, body = call()
        assert status >= 400 and "bad plan" in body, (status, body)

    with_rheo(run)


def test_get_on_mongodb_5_reads_one_snapshot_and_answers_its_time():
    def run(mock, rheo):
        call = in_background(rheo.request, "GET", "/messages?pagesize=3")
        r = mock.receive("find")
        # One snapshot (MongoDB 5.0+), not a causally consistent read.
        assert r.doc["readConcern"] == {"level": "snapshot"}, r.doc
        assert "afterClusterTime" not in r.doc["readConcern"], r.doc
        assert r.doc["limit"] == 3, r.doc
        cursor = SON([("id", 77), ("ns", MSG_NS), ("firstBatch", [SON([("_id", 1)])]),
                      ("atClusterTime", Timestamp(1700000000, 9))])
        r.replies(SON([("cursor", cursor), ("ok", 1),
                       ("operationTime", Timestamp(1700000000, 12))]))
        # The rest of the answer comes from the same cursor (the same snapshot).
        r = mock.receive("getMore")
        assert r.doc["getMore"] == 77, r.doc
        cursor_reply(r, [SON([("_id", 2)])], MSG_NS, 0, first=False)
        status, headers, body = call()
        assert status == 200 and json.loads(body) == [{"_id": 1}, {"_id": 2}], (status, body)
        # The token is the snapshot's time, not the (later) operation time.
        assert headers.get("Resume-Token") == "T6553F10000000009", headers

    with_rheo(run, wire_version=13)


# ---- snapshot tokens (Resume-Token) ----

# An operation time and the snapshot token rheo makes of it ("T", then t and i in hex).
OP_TIME = Timestamp(1700000000, 7)
SNAPSHOT = "T6553F10000000007"


def test_get_answers_a_resume_token_from_the_reads_operation_time():
    def run(mock, rheo):
        # GET /messages: the find runs in a session; the reply's operationTime is the token.
        call = in_background(rheo.request, "GET", "/messages")
        r = mock.receive("find")
        assert r.doc["find"] == "messages" and "lsid" in r.doc, r.doc
        # A fresh causally consistent session: nothing to wait for (no afterClusterTime).
        assert "afterClusterTime" not in r.doc.get("readConcern", {}), r.doc
        cursor_reply(r, [SON([("_id", 1)])], MSG_NS, operationTime=OP_TIME)
        status, headers, body = call()
        assert status == 200 and body == '[{"_id":1}]', (status, body)
        assert headers.get("Resume-Token") == SNAPSHOT, headers

        # Each read is its own snapshot: the next one does not wait for the first's time.
        call = in_background(rheo.request, "GET", "/messages?filter={a:1}")
        r = mock.receive("find")
        assert "lsid" in r.doc, r.doc
        assert "afterClusterTime" not in r.doc.get("readConcern", {}), r.doc
        cursor_reply(r, [], MSG_NS, operationTime=Timestamp(1700000001, 0xFFFFFFFF))
        expect_props_read(mock, [props_doc(ObjectId())])  # empty: does the collection exist?
        status, headers, body = call()
        assert status == 200 and body == "[]", (status, body)
        assert headers.get("Resume-Token") == "T6553F101FFFFFFFF", headers

        # GET /messages/<id>: the same, for the document's find.
        call = in_background(rheo.request, "GET", "/messages/x")
        r = mock.receive("find")
        assert r.doc["filter"] == {"_id": "x"} and r.doc["limit"] == 1, r.doc
        assert "lsid" in r.doc, r.doc
        cursor_reply(r, [SON([("_id", "x"), ("_etag", ObjectId())])], MSG_NS,
                     operationTime=Timestamp(1700000002, 1))
        status, headers, _ = call()
        assert status == 200 and headers.get("Resume-Token") == "T6553F10200000001", \
            (status, headers)

        # A reply without operationTime: no token is invented.
        call = in_background(rheo.request, "GET", "/messages")
        cursor_reply(mock.receive("find"), [SON([("_id", 1)])], MSG_NS)
        status, headers, _ = call()
        assert status == 200 and "Resume-Token" not in headers, headers
        call = in_background(rheo.request, "GET", "/messages/x")
        cursor_reply(mock.receive("find"), [SON([("_id", "x")])], MSG_NS)
        status, headers, _ = call()
        assert status == 200 and "Resume-Token" not in headers, headers

    with_rheo(run)


def test_get_without_sessions_answers_no_resume_token():
    def run(mock, rheo):
        for path in ("/messages", "/messages/x"):
            call = in_background(rheo.request, "GET", path)
            r = mock.receive("find")
            assert "lsid" not in r.doc, r.doc
            cursor_reply(r, [SON([("_id", "x")])], MSG_NS, operationTime=OP_TIME)
            status, headers, _ = call()
            assert status == 200 and "Resume-Token" not in headers, (path, status, headers)

    with_rheo(run, sessions=False)


# ---- bulk writes and aggregations ----


def test_bulk_post_inserts_every_document_in_one_transaction():
    def run(mock, rheo):
        # One insert command with every document (each with _id first and an _etag), the
        # first of a transaction on a session; then commitTransaction on that session.
        call = in_background(rheo.request, "POST", "/messages",
                             [{"m": "a"}, {"_id": "x", "m": "b"}, {"_id": 7, "a.b": 1}])
        r = mock.receive("insert")
        assert r.doc["insert"] == "messages" and r.doc["$db"] == "rheo", r.doc
        assert r.doc.get("ordered", True) is True, r.doc
        docs = r.doc["documents"]
        assert len(docs) == 3, r.doc
        assert [list(d.keys())[0] for d in docs] == ["_id"] * 3, docs
        assert isinstance(docs[0]["_id"], ObjectId) and docs[0]["m"] == "a", docs
        assert docs[1]["_id"] == "x" and docs[2]["_id"] == 7, docs
        assert docs[2]["a"] == {"b": 1}, docs  # dotted keys are nested fields
        assert all(isinstance(d["_etag"], ObjectId) for d in docs), docs
        assert len({d["_etag"] for d in docs}) == 3, docs
        assert r.doc["startTransaction"] is True and r.doc["autocommit"] is False, r.doc
        lsid, txn = r.doc["lsid"], r.doc["txnNumber"]
        r.replies(ok=1, n=3)
        r = mock.receive("commitTransaction")
        assert r.doc["$db"] == "admin" and r.doc["autocommit"] is False, r.doc
        assert r.doc["lsid"] == lsid and r.doc["txnNumber"] == txn, r.doc
        assert "startTransaction" not in r.doc, r.doc
        r.replies(ok=1)
        status, _, body = call()
        assert status == 200, (status, body)
        assert json.loads(body) == {
            "inserted": 3, "links": ["/messages/" + str(docs[0]["_id"]), "/messages/x",
                                     "/messages/7?id_type=NUMBER"],
            "deleted": 0, "modified": 0, "matched": 0}, body

        # The next bulk POST is a new transaction.
        call = in_background(rheo.request, "POST", "/messages", [{"m": "c"}])
        r = mock.receive("insert")
        assert r.doc["startTransaction"] is True, r.doc
        assert (r.doc["lsid"], r.doc["txnNumber"]) != (lsid, txn), r.doc
        r.replies(ok=1, n=1)
        mock.receive("commitTransaction").replies(ok=1)
        status, _, body = call()
        assert status == 200 and json.loads(body)["inserted"] == 1, (status, body)

        # A duplicate key: the transaction is aborted, not committed, and the answer is 409.
        call = in_background(rheo.request, "POST", "/messages", [{"_id": "y"}, {"_id": "x"}])
        r = mock.receive("insert")
        lsid, txn = r.doc["lsid"], r.doc["txnNumber"]
        r.replies(ok=1, n=1, writeErrors=[{"index": 1, "code": 11000,
                                           "errmsg": "E11000 duplicate key error"}])
        r = mock.receive("abortTransaction")
        assert r.doc["$db"] == "admin", r.doc
        assert r.doc["lsid"] == lsid and r.doc["txnNumber"] == txn, r.doc
        # (The server has aborted it already.)
        r.replies(ok=0, code=251, codeName="NoSuchTransaction", errmsg="no such transaction")
        status, _, body = call()
        assert status == 409 and "duplicate" in body, (status, body)

        # An element that is not an object: 400 before any command.
        status, _, body = rheo.request("POST", "/messages", '[{"_id":"z"},1]')
        assert status == 400 and "element 1" in body, (status, body)

        # An empty array: nothing to insert (mongoc refuses an empty insert); the collection
        # is created as by any POST.
        call = in_background(rheo.request, "POST", "/messages", [])
        r = mock.receive("create")
        assert r.doc["create"] == "messages", r.doc
        r.replies(ok=0, code=48, codeName="NamespaceExists", errmsg="collection already exists")
        status, _, body = call()
        assert status == 200 and json.loads(body)["inserted"] == 0, (status, body)
        assert json.loads(body)["links"] == [], body

    with_rheo(run)


def test_bulk_patch_and_delete_send_update_many_and_delete_many():
    def run(mock, rheo):
        # PATCH /*: one update statement with multi:true, the request's filters ANDed, the
        # operators and a fresh _etag.
        call = in_background(rheo.request, "PATCH",
                             "/messages/*?filter={from:'a'}&filter={n:{$gt:1}}",
                             {"$inc": {"n": 1}, "seen": True})
        expect_props_read(mock, [props_doc(ObjectId())])
        r = mock.receive("update")
        assert r.doc["update"] == "messages" and r.doc["$db"] == "rheo", r.doc
        assert len(r.doc["updates"]) == 1, r.doc
        u = r.doc["updates"][0]
        assert u["q"] == {"$and": [{"from": "a"}, {"n": {"$gt": 1}}]}, u
        assert u["multi"] is True and not u.get("upsert", False), u
        assert u["u"]["$inc"] == {"n": 1} and u["u"]["$set"]["seen"] is True, u
        assert isinstance(u["u"]["$set"]["_etag"], ObjectId), u
        r.replies(ok=1, n=3, nModified=2)
        status, _, body = call()
        assert status == 200, (status, body)
        assert json.loads(body) == {"inserted": 0, "links": [], "deleted": 0, "modified": 2,
                                    "matched": 3}, body

        # DELETE /*: one delete statement with limit 0 (every match).
        call = in_background(rheo.request, "DELETE", "/messages/*?filter={from:'a'}")
        r = mock.receive("delete")
        assert r.doc["delete"] == "messages" and r.doc["$db"] == "rheo", r.doc
        assert r.doc["deletes"] == [{"q": {"from": "a"}, "limit": 0}], r.doc
        r.replies(ok=1, n=4)
        status, _, body = call()
        assert status == 200, (status, body)
        assert json.loads(body) == {"inserted": 0, "links": [], "deleted": 4, "modified": 0,
                                    "matched": 0}, body

        # Without a filter, or an empty one: 400 before any command.
        for method, body in (("PATCH", {"$set": {"a": 1}}), ("DELETE", None)):
            for target in ("/messages/*", "/messages/*?filter={}"):
                status, _, text = rheo.request(method, target, body)
                assert status == 400 and "filter" in text, (method, target, status, text)

        # An unknown collection: 404 without an update or delete.
        outside_delete(mock, 1)
        expect_unknown_collection(mock, in_background(
            rheo.request, "PATCH", "/messages/*?filter={a:1}", {"$set": {"a": 2}}), True)
        expect_unknown_collection(mock, in_background(
            rheo.request, "DELETE", "/messages/*?filter={a:1}"), True)

    with_rheo(run)


AGGRS = [SON([("uri", "by_from"), ("stages", [
    SON([("_$match", SON([("from", SON([("_$var", "who")])), ("meta::lang", "en")]))]),
    SON([("_$group", SON([("_id", "$from"), ("n", SON([("_$sum", 1)]))]))]),
    SON([("_$sort", SON([("n", -1)]))]),
    SON([("_$skip", "@skip")]),
    SON([("_$limit", "@limit")]),
])]), SON([("uri", "literal"), ("type", "pipeline"), ("stages", [
    SON([("$match", SON([("a.b", SON([("$gte", SON([("$var", ["min", 5])]))]))]))]),
    SON([("$count", "n")]),
])])]


def test_aggregation_sends_aggregate_with_the_resolved_pipeline():
    def run(mock, rheo):
        props = SON([("_id", "_properties.messages"), ("aggrs", AGGRS), ("_etag", ObjectId())])
        call = in_background(rheo.request, "GET",
                             "/messages/_aggrs/by_from?avars={who:'ann'}&page=3&pagesize=2")
        expect_props_read(mock, [props])  # the definition (then cached: the collection exists)
        r = mock.receive("aggregate")
        assert r.doc["aggregate"] == "messages" and r.doc["$db"] == "rheo", r.doc
        assert "cursor" in r.doc, r.doc
        assert r.doc["pipeline"] == [
            {"$match": {"from": "ann", "meta.lang": "en"}},
            {"$group": {"_id": "$from", "n": {"$sum": 1}}},
            {"$sort": {"n": -1}},
            {"$skip": 4},
            {"$limit": 2},
        ], r.doc["pipeline"]
        # Every batch of the cursor is returned.
        cursor_reply(r, [SON([("_id", "ann"), ("n", 2)])], MSG_NS, 61)
        r = mock.receive("getMore")
        assert r.doc["getMore"] == 61 and r.doc["collection"] == "messages", r.doc
        cursor_reply(r, [SON([("_id", "bob"), ("n", 1)])], MSG_NS, 0, first=False)
        status, headers, body = call()
        assert status == 200 and headers["Content-Type"] == "application/json", (status, body)
        assert body == '[{"_id":"ann","n":2},{"_id":"bob","n":1}]', body

        # Literal keys; a $var default; no paging variables used.
        call = in_background(rheo.request, "GET", "/messages/_aggrs/literal")
        r = mock.receive("aggregate")
        assert r.doc["pipeline"] == [{"$match": {"a.b": {"$gte": 5}}}, {"$count": "n"}], r.doc
        cursor_reply(r, [], MSG_NS)
        status, _, body = call()
        assert status == 200 and body == "[]", (status, body)

        # An unbound variable: 400; an undeclared aggregation: 404; neither aggregates.
        status, _, body = rheo.request("GET", "/messages/_aggrs/by_from")
        assert status == 400 and "variable who not bound" in body, (status, body)
        status, _, body = rheo.request("GET", "/messages/_aggrs/none")
        assert status == 404 and "aggregation 'none'" in body, (status, body)

        # A $group or $sort over MongoDB's memory limit is the request's fault (400, naming
        # it); any other server error is not.
        for code, expected in ((292, 400), (16945, 400), (8000, 500)):
            call = in_background(rheo.request, "GET", "/messages/_aggrs/literal")
            r = mock.receive("aggregate")
            r.replies(ok=0, code=code, errmsg="Exceeded memory limit for $group")
            status, _, body = call()
            assert status == expected and "memory limit" in body, (code, status, body)

        # An unknown collection: 404.
        outside_delete(mock, 1)
        expect_unknown_collection(mock, in_background(rheo.request, "GET",
                                                      "/messages/_aggrs/literal"), True)

    with_rheo(run)


# ---- change streams ----


def open_stream(mock, rheo, cursor_id=42, post_batch_token=None, props_read=True, etag=None):
    """Connects a WebSocket to /messages/_streams/all and answers the metadata read (a
    cache miss, unless not `props_read`) and the stream's opening (with a
    postBatchResumeToken {_data: post_batch_token} when given); returns the client and the
    change-stream aggregate command."""
    connect = in_background(WsClient, rheo.port, "/messages/_streams/all")
    if props_read:
        expect_props_read(mock, [props_doc(etag or ObjectId())])
    r = mock.receive("aggregate")
    assert r.doc["aggregate"] == "messages", r.doc
    stage = r.doc["pipeline"][0]["$changeStream"]
    assert stage["fullDocument"] == "updateLookup", r.doc
    cursor_reply(r, [], MSG_NS, cursor_id, cursor_extra=pbrt(post_batch_token))
    return connect(), stage


def pbrt(data):
    """The cursor field of a change-stream reply carrying postBatchResumeToken {_data}."""
    return [] if data is None else [("postBatchResumeToken", SON([("_data", data)]))]


def serve_getmore(mock, cursor_id, batch, **reply):
    r = mock.receive("getMore", cursor=cursor_id)
    assert r.doc["getMore"] == cursor_id and r.doc["collection"] == "messages", r.doc
    assert r.doc["maxTimeMS"] == 1000, r.doc  # maxAwaitTimeMS
    cursor_reply(r, batch, MSG_NS, cursor_id, first=False, **reply)


def test_stream_delivers_events_and_resumes_after_errors():
    def run(mock, rheo):
        ws, stage = open_stream(mock, rheo)
        assert "resumeAfter" not in stage, stage

        # insert and update, mapped to the WebSocket message shape.
        serve_getmore(mock, 42, [change(1, "insert", SON([("_id", 7), ("m", "a")]), 7)])
        ev = ws.event()
        assert ev == {"_id": {"_data": token(1)}, "operationType": "insert",
                      "fullDocument": {"_id": 7, "m": "a"}, "documentKey": {"_id": 7}}, ev
        serve_getmore(mock, 42, [change(2, "update", SON([("_id", 7), ("m", "b")]), 7,
                                        SON([("updatedFields", {"m": "b"}),
                                             ("removedFields", ["x"])]))])
        ev = ws.event()
        assert ev["operationType"] == "update" and ev["fullDocument"]["m"] == "b", ev
        assert ev["updateDescription"] == {"updatedFields": {"m": "b"},
                                           "removedFields": ["x"]}, ev

        # A resumable error (labelled so, as servers >= 4.4 do): the driver resumes with
        # the last event's token.
        r = mock.receive("getMore")
        r.replies(ok=0, code=6, codeName="HostUnreachable", errmsg="host unreachable",
                  errorLabels=["ResumableChangeStreamError"])
        r = mock.receive("aggregate")
        resumed = r.doc["pipeline"][0]["$changeStream"]
        assert resumed["resumeAfter"] == {"_data": token(2)}, r.doc
        assert resumed["fullDocument"] == "updateLookup", r.doc
        cursor_reply(r, [change(3, "delete", key=7)], MSG_NS, 43)
        ev = ws.event()
        assert ev == {"_id": {"_data": token(3)}, "operationType": "delete",
                      "documentKey": {"_id": 7}}, ev

        # A non-resumable error: rheo re-opens the stream after the last delivered event.
        r = mock.receive("getMore")
        assert r.doc["getMore"] == 43, r.doc
        r.replies(ok=0, code=96, errmsg="operation failed (not resumable)")
        r = mock.receive("aggregate")
        reopened = r.doc["pipeline"][0]["$changeStream"]
        assert reopened["resumeAfter"] == {"_data": token(3)}, r.doc
        assert reopened["fullDocument"] == "updateLookup", r.doc
        cursor_reply(r, [], MSG_NS, 44)
        serve_getmore(mock, 44, [change(4, "insert", SON([("_id", 8)]), 8)])
        ev = ws.event()
        assert ev["_id"] == {"_data": token(4)} and ev["documentKey"] == {"_id": 8}, ev
        ws.close()

    with_rheo(run)


def test_reopen_backs_off_exponentially():
    def run(mock, rheo):
        ws, _ = open_stream(mock, rheo)
        serve_getmore(mock, 42, [change(1, "insert", SON([("_id", 1)]), 1)])
        ws.event()
        r = mock.receive("getMore")
        r.replies(ok=0, code=96, errmsg="operation failed (not resumable)")
        failed_at = time.time()
        gaps = []
        for attempt in range(3):
            r = mock.receive("aggregate")
            gaps.append(time.time() - failed_at)
            assert r.doc["pipeline"][0]["$changeStream"]["resumeAfter"] == {"_data": token(1)}
            r.replies(ok=0, code=96, errmsg="still failing")
            failed_at = time.time()
        # 100 ms, 200 ms, 400 ms (lower bounds only: a loaded machine may be slower).
        for gap, least in zip(gaps, (0.1, 0.2, 0.4)):
            assert gap >= least * 0.9, gaps
        r = mock.receive("aggregate")
        assert time.time() - failed_at >= 0.8 * 0.9, "backoff did not keep doubling"
        cursor_reply(r, [change(2, "insert", SON([("_id", 2)]), 2)], MSG_NS, 50)
        assert ws.event()["_id"] == {"_data": token(2)}

    with_rheo(run)


def test_history_lost_closes_sessions():
    def run(mock, rheo):
        ws, _ = open_stream(mock, rheo)
        serve_getmore(mock, 42, [change(1, "insert", SON([("_id", 1)]), 1)])
        assert ws.event()["_id"] == {"_data": token(1)}
        r = mock.receive("getMore")
        # As a server sends it: labelled non-resumable, so the driver does not retry.
        r.replies(ok=0, code=286, codeName="ChangeStreamHistoryLost",
                  errmsg="Resume of change stream was not possible, as the resume point may "
                         "no longer be in the oplog.",
                  errorLabels=["NonResumableChangeStreamError"])
        code, reason = ws.close_frame()
        assert code == 4410 and reason == "history lost", \
            (code, reason)

    with_rheo(run)


def test_history_lost_on_reopen_closes_sessions():
    def run(mock, rheo):
        ws, _ = open_stream(mock, rheo)
        serve_getmore(mock, 42, [change(1, "insert", SON([("_id", 1)]), 1)])
        ws.event()
        r = mock.receive("getMore")
        r.replies(ok=0, code=96, errmsg="operation failed (not resumable)")
        r = mock.receive("aggregate")
        assert r.doc["pipeline"][0]["$changeStream"]["resumeAfter"] == {"_data": token(1)}
        r.replies(ok=0, code=286, codeName="ChangeStreamHistoryLost", errmsg="history lost")
        code, reason = ws.close_frame()
        assert code == 4410 and reason == "history lost", \
            (code, reason)

    with_rheo(run)


def test_invalidate_closes_sessions():
    def run(mock, rheo):
        ws, _ = open_stream(mock, rheo)
        serve_getmore(mock, 42, [change(1, "drop"), change(2, "invalidate")])
        assert ws.event()["operationType"] == "drop"
        assert ws.event()["operationType"] == "invalidate"
        code, reason = ws.close_frame()
        assert code == 1000 and reason == "collection dropped", (code, reason)

    with_rheo(run)


def test_stream_resumes_when_the_primary_comes_back():
    def run(mock, rheo):
        ws, _ = open_stream(mock, rheo)
        serve_getmore(mock, 42, [change(1, "insert", SON([("_id", 1)]), 1)])
        assert ws.event()["_id"] == {"_data": token(1)}
        mock.receive("getMore")  # left unanswered: the primary goes away
        port = mock.port
        mock.stop()
        back = Primary(port=port)
        try:
            r = back.receive("aggregate", timeout=30)
            stage = r.doc["pipeline"][0]["$changeStream"]
            assert stage["resumeAfter"] == {"_data": token(1)}, r.doc
            assert stage["fullDocument"] == "updateLookup", r.doc
            cursor_reply(r, [change(2, "insert", SON([("_id", 2)]), 2)], MSG_NS, 77)
            ev = ws.event()
            assert ev["_id"] == {"_data": token(2)}, ev
            serve_getmore(back, 77, [change(3, "insert", SON([("_id", 3)]), 3)])
            assert ws.event()["_id"] == {"_data": token(3)}
        finally:
            back.stop()

    with_rheo(run)


def test_metadata_change_through_rheo_closes_sessions():
    def run(mock, rheo):
        etag = ObjectId()
        ws, _ = open_stream(mock, rheo, etag=etag)
        mock.idle_cursor = 42
        call = in_background(rheo.request, "PATCH", "/messages",
                             {"streams": [{"uri": "all", "stages": [
                                 {"_$match": {"operationType": "delete"}}]}]})
        # The metadata read when the stream was opened is cached: no read.
        r = mock.receive("update")
        u = r.doc["updates"][0]
        assert u["q"] == {"_id": "_properties.messages", "_etag": etag}, u
        r.replies(ok=1, n=1, nModified=1)
        status, _, _ = call()
        assert status == 200, status
        code, reason = close_frame_serving_idle(mock, ws)
        assert code == 1000 and reason == "stream definition changed", (code, reason)

    with_rheo(run)


# ---- the metadata cache (a change stream on _properties) ----


def test_after_warm_up_a_get_sends_only_its_own_command():
    def run(mock, rheo):
        # rheo watches _properties from the first metadata lookup on.
        call = in_background(rheo.request, "GET", "/messages")
        cursor_reply(mock.receive("find"), [], MSG_NS)
        expect_props_read(mock, [props_doc(ObjectId())])  # empty: does it exist? (a miss)
        assert call()[:1] == (200,)
        assert len(mock.props_opens) == 1 and "resumeAfter" not in mock.props_opens[0], \
            mock.props_opens

        # Warm: each GET sends its find (or aggregate) and nothing else; _meta sends nothing.
        for _ in range(3):
            call = in_background(rheo.request, "GET", "/messages")
            r = mock.receive("find")
            assert r.doc["find"] == "messages", r.doc
            cursor_reply(r, [], MSG_NS)
            status, _, body = call()
            assert status == 200 and body == "[]", (status, body)
            assert_no_command(mock, 0.2)
        call = in_background(rheo.request, "GET", "/messages/_size")
        r = mock.receive("aggregate")
        assert r.doc["aggregate"] == "messages", r.doc
        cursor_reply(r, [SON([("_id", 1), ("n", 2)])], MSG_NS)
        assert call()[2] == '{"_size":2}'
        status, _, body = rheo.request("GET", "/messages/_meta")
        assert status == 200 and '"streams"' in body, (status, body)
        assert_no_command(mock)
        # A WebSocket session: the change stream's aggregate only.
        ws, _ = open_stream(mock, rheo, props_read=False)
        ws.close()

    with_rheo(run)


def test_an_outside_stream_redefinition_closes_sessions():
    def run(mock, rheo):
        ws, _ = open_stream(mock, rheo)
        mock.idle_cursor = 42
        # Another process replaces the definition of stream "all" in _properties.
        changed = [SON([("uri", "all"), ("stages", [{"_$match": {"operationType": "delete"}}])])]
        etag = ObjectId()
        mock.props_script.append([props_change(1, props_doc(etag, changed))])
        code, reason = close_frame_serving_idle(mock, ws)
        assert code == 1000 and reason == "stream definition changed", (code, reason)
        # The cache holds the new definition: no read.
        status, headers, body = rheo.request("GET", "/messages/_meta")
        assert status == 200 and "operationType" in body and str(etag) in body, (status, body)

        # A collection created by another process (its _properties inserted) is noticed,
        # though rheo had found it missing before.
        call = in_background(rheo.request, "GET", "/other/_meta")
        r = mock.receive("find")
        assert r.doc["find"] == "_properties" and r.doc["filter"] == {"_id": "_properties.other"}
        cursor_reply(r, [], PROPS_NS)
        expect_list_collections(mock, [], "other")
        assert call()[0] == 404
        other = SON([("_id", "_properties.other"), ("streams", STREAMS), ("_etag", ObjectId())])
        props_events(mock, [props_change(2, other, "insert")])
        status, _, body = rheo.request("GET", "/other/_meta")
        assert status == 200 and str(other["_etag"]) in body, (status, body)

    with_rheo(run)


def test_while_the_properties_stream_is_down_requests_read_properties():
    def run(mock, rheo):
        call = in_background(rheo.request, "GET", "/messages/_meta")
        expect_props_read(mock, [props_doc(ObjectId())])
        assert call()[0] == 200
        assert rheo.request("GET", "/messages/_meta")[0] == 200  # cached: no command

        # A non-resumable error: rheo re-opens the stream (held here) after a backoff, and
        # meanwhile reads _properties for every request.
        mock.props_hold = True
        mock.props_script.append(dict(code=96, errmsg="operation failed (not resumable)"))
        reopen = mock.receive("aggregate")
        assert reopen.doc["aggregate"] == "_properties", reopen.doc
        for _ in range(2):
            call = in_background(rheo.request, "GET", "/messages/_meta")
            expect_props_read(mock, [props_doc(ObjectId())])
            assert call()[0] == 200

        # Re-opened: one read (a miss), then the cache again.
        mock.props_hold = False
        seen = mock.props_getmores
        cursor_reply(reopen, [], PROPS_NS, 990)
        mock.props_served(seen + 1)
        call = in_background(rheo.request, "GET", "/messages/_meta")
        expect_props_read(mock, [props_doc(ObjectId())])
        assert call()[0] == 200
        assert rheo.request("GET", "/messages/_meta")[0] == 200
        assert_no_command(mock)

    with_rheo(run)


# ---- resuming (section 7 of the API contract) ----


def connect_resuming(mock, rheo, resume_token):
    """Connects a WebSocket with ?resumeAfter=<resume_token> to the subscription of
    /messages/_streams/all (open already); answers the connection's metadata read. Returns
    the client and the replay's change-stream aggregate (unanswered) and its
    $changeStream stage. (The metadata is cached since open_stream.)"""
    connect = in_background(WsClient, rheo.port,
                            "/messages/_streams/all?resumeAfter=" + resume_token)
    ws = connect()
    r = mock.receive("aggregate")
    assert r.doc["aggregate"] == "messages", r.doc
    stage = r.doc["pipeline"][0]["$changeStream"]
    assert stage["fullDocument"] == "updateLookup", r.doc
    return ws, r, stage


def ids(ws, n):
    """The _data of the next n events on `ws`."""
    return [ws.event()["_id"]["_data"] for _ in range(n)]


def insert(n):
    return change(n, "insert", SON([("_id", n)]), n)


def live_stream_through(mock, rheo, last):
    """A live client on cursor 42 that has received inserts 1..`last`; the stream then idles
    (empty getMores) until the test serves it again."""
    live, _ = open_stream(mock, rheo, 42)
    for n in range(1, last + 1):
        serve_getmore(mock, 42, [insert(n)])
        assert ids(live, 1) == [token(n)]
    mock.idle_cursors = {42}
    return live


def test_resume_after_an_event_token_replays_then_continues_live():
    def run(mock, rheo):
        live = live_stream_through(mock, rheo, 3)

        # The replay: a second change stream, resumeAfter the client's token.
        ws, r, stage = connect_resuming(mock, rheo, token(1))
        assert stage["resumeAfter"] == {"_data": token(1)}, stage
        assert "startAtOperationTime" not in stage and "startAfter" not in stage, stage
        cursor_reply(r, [insert(2)], MSG_NS, 50)
        assert ids(ws, 1) == [token(2)]
        mock.idle_cursors = {42, 50}

        # A live event while the replay is behind: the live session gets it at once, the
        # resuming one after the replay reaches it, once.
        serve_getmore(mock, 42, [insert(4)])
        assert ids(live, 1) == [token(4)]
        serve_getmore(mock, 50, [insert(3), insert(4)])
        assert ids(ws, 2) == [token(3), token(4)]

        # Handed over: the shared live stream only, no duplicate.
        for n in (5, 6):
            serve_getmore(mock, 42, [insert(n)])
            assert ids(live, 1) == [token(n)]
            assert ids(ws, 1) == [token(n)]
        ws.close()
        live.close()

    with_rheo(run)


def test_replay_ahead_of_the_live_stream_repeats_nothing():
    def run(mock, rheo):
        # The live position is a postBatchResumeToken (an idle stream), not an event.
        live, _ = open_stream(mock, rheo, 42, post_batch_token=token(10))
        mock.idle_cursors = {42}
        # The replay's stream reads the oplog on its own: it can return an event committed
        # after the join (11) before the live stream delivers it.
        ws, r, _ = connect_resuming(mock, rheo, token(1))
        cursor_reply(r, [insert(5), insert(11)], MSG_NS, 50)
        assert ids(ws, 1) == [token(5)]
        mock.idle_cursors = {42, 50}
        mock.serve_idle_until(lambda: mock.killed(50))  # handed over: the replay is closed
        for n in (11, 12):
            serve_getmore(mock, 42, [insert(n)])
            assert ids(live, 1) == [token(n)]
        got = ids(ws, 2)
        assert got == [token(11), token(12)], got  # 11 once

    with_rheo(run)


def test_resume_from_a_snapshot_token_starts_after_the_read():
    def run(mock, rheo):
        # The live stream knows its position from the opening's postBatchResumeToken.
        live, _ = open_stream(mock, rheo, 42, post_batch_token=token(10))
        mock.idle_cursors = {42}
        call = in_background(rheo.request, "GET", "/messages")
        cursor_reply(mock.receive("find"), [SON([("_id", 1)])], MSG_NS, operationTime=OP_TIME)
        _, headers, _ = call()
        assert headers["Resume-Token"] == SNAPSHOT, headers

        # The replay starts just after the read's operation time.
        ws, r, stage = connect_resuming(mock, rheo, SNAPSHOT)
        assert stage["startAtOperationTime"] == Timestamp(1700000000, 8), stage
        assert "resumeAfter" not in stage and "startAfter" not in stage, stage
        cursor_reply(r, [], MSG_NS, 50)
        # Nothing happened since: an empty batch whose postBatchResumeToken is past the live
        # position hands the session over (without it the replay would wait for an event).
        serve_getmore(mock, 50, [], cursor_extra=pbrt(token(11)))
        mock.idle_cursors = {42, 50}
        serve_getmore(mock, 42, [insert(12)])
        assert ids(live, 1) == [token(12)]
        assert ids(ws, 1) == [token(12)]
        serve_getmore(mock, 42, [insert(13)])
        assert ids(ws, 1) == [token(13)]
        ws.close()
        live.close()

    with_rheo(run)


# ---- live queries ----


def mongo_token(t, i):
    """An event's _data whose cluster time is Timestamp(t, i): MongoDB's begin with it."""
    return "82%08X%08X2B022C0100296E5A1004" % (t, i)


def at(i, op, key, doc=None):
    """A change event of _id `key` at cluster time Timestamp(1700000000, i)."""
    ev = change(0, op, doc, key)
    ev["_id"] = SON([("_data", mongo_token(1700000000, i))])
    return ev


def apply_frame(docs, frame):
    """The client's array after `frame` (section 10 of the contract)."""
    if "init" in frame:
        return list(frame["init"])
    docs = list(docs)
    for op in frame["diff"]:
        if op["op"] == "add":
            docs.insert(op["at"], op["doc"])
        elif op["op"] == "remove":
            del docs[op["at"]]
        else:
            del docs[op["at"]]
            docs.insert(op["to"], op["doc"])
    return docs


def test_live_query_reads_in_sessions_and_skips_the_events_its_reads_reflect():
    def run(mock, rheo):
        path = '/messages/_live?sort={"n":1}&pagesize=1'
        connect = in_background(WsClient, rheo.port, path)
        expect_props_read(mock, [props_doc(ObjectId())])
        r = mock.receive("aggregate")
        assert r.doc["pipeline"][0]["$changeStream"]["fullDocument"] == "updateLookup", r.doc
        cursor_reply(r, [], MSG_NS, 42, cursor_extra=pbrt(mongo_token(1700000000, 1)))
        mock.idle_cursors = {42}
        ws = connect()

        # Once the feed is open, the first read: in a session, the window and 4 spare ones,
        # in the query's order (_id breaks ties).
        r = mock.receive("find")
        assert r.doc["find"] == "messages" and "lsid" in r.doc, r.doc
        assert r.doc["sort"] == SON([("n", 1), ("_id", 1)]), r.doc
        assert r.doc["limit"] == 5, r.doc
        cursor_reply(r, [SON([("_id", k), ("n", k)]) for k in range(1, 6)], MSG_NS,
                     operationTime=Timestamp(1700000000, 7))
        docs = []
        frame = ws.event()
        docs = apply_frame(docs, frame)
        assert frame["token"] == "T6553F10000000007" and docs == [{"_id": 1, "n": 1}], frame

        # Events the read already reflects (cluster times 5 and 6 <= 7) change nothing: no
        # frame. Deletes of the whole window and its spare ones need a second read.
        mock.idle_cursors = set()
        serve_getmore(mock, 42, [
            at(5, "replace", 1, SON([("_id", 1), ("n", 100)])),
            at(6, "replace", 1, SON([("_id", 1), ("n", 1)])),
        ] + [at(8 + k, "delete", k) for k in range(1, 6)])
        # The feed may hand the batch on in parts: a frame for each part that moved the
        # window, each equal to the query at its token (document 6, the next in order, was
        # never deleted), until the window has lost every document the read gave.
        def expected(token):
            time_i = int(token[10:18], 16)  # the cluster time's increment
            left = [k for k in range(1, 6) if 8 + k > time_i]
            return [{"_id": left[0], "n": left[0]}] if left else [{"_id": 6, "n": 6}]

        r = None
        while r is None:
            request = mock.server.receives(timeout=TIMEOUT)
            if request.command_name == "find":
                r = request
            elif request.command_name == "getMore":
                mock.idle_getmore(request) if request.doc["getMore"] in mock.idle_cursors else \
                    cursor_reply(request, [], MSG_NS, 42, first=False)
            else:
                mock.ack(request)
        assert "lsid" in r.doc and r.doc["limit"] == 5, r.doc
        mock.idle_cursors = {42}
        cursor_reply(r, [SON([("_id", 6), ("n", 6)])], MSG_NS,
                     operationTime=Timestamp(1700000000, 13))
        while True:
            frame = ws.event()
            docs = apply_frame(docs, frame)
            if frame["token"].startswith("T"):
                break
            assert docs == expected(frame["token"]), (frame, docs)
        # The refill's read reflects every delete: the window is the next document.
        assert frame["token"] == "T6553F1000000000D" and docs == [{"_id": 6, "n": 6}], frame

        # Live again: an insert before it in the order.
        mock.idle_cursors = set()
        serve_getmore(mock, 42, [at(14, "insert", 0, SON([("_id", 0), ("n", 0)]))])
        mock.idle_cursors = {42}
        frame = ws.event()
        docs = apply_frame(docs, frame)
        assert frame["token"] == mongo_token(1700000000, 14), frame
        assert docs == [{"_id": 0, "n": 0}], frame
        ws.close()

    with_rheo(run)


def test_live_query_follows_a_random_history_with_reads_racing_the_stream():
    """The model-based check on the MongoDB wire: a seeded random history of inserts,
    replaces and deletes, committed in batches that the change stream delivers some time
    later; every read rheo asks for (the first and each refill) answers the collection at the
    latest commit, so it may already reflect events the stream has not delivered yet. Every
    frame must leave the client's array equal to the query on the model at the frame's
    token (an event's cluster time, or a read's snapshot time)."""
    import random
    seed = int(os.environ.get("RHEO_LIVE_SEED", "2026"))
    rng = random.Random(seed)
    size = 3

    history = []  # (increment, key, doc or None), in commit order; cluster time (T0, i)
    state = {}

    def query_at(i):
        docs = {}
        for at_i, key, doc in history:
            if at_i > i:
                break
            if doc is None:
                docs.pop(key, None)
            else:
                docs[key] = doc
        ordered = sorted(docs.values(), key=lambda d: (d["n"], d["_id"]))
        return [dict(d) for d in ordered[:size]]

    def time_of(token):
        return int(token[9:17], 16) if token.startswith("T") else int(token[10:18], 16)

    def commit(events, i):
        key = rng.randrange(12)
        if key in state and rng.random() < 0.3:
            state.pop(key)
            history.append((i, key, None))
            events.append(at(i, "delete", key))
        else:
            doc = SON([("_id", key), ("n", rng.randrange(8))])
            op = "replace" if key in state else "insert"
            state[key] = {"_id": key, "n": doc["n"]}
            history.append((i, key, state[key]))
            events.append(at(i, op, key, doc))

    def run(mock, rheo):
        clock = [1]
        undelivered = []  # batches committed, not yet delivered by the stream
        reads = [0]

        def answer_find(r):
            assert "lsid" in r.doc and r.doc["sort"] == SON([("n", 1), ("_id", 1)]), r.doc
            reads[0] += 1
            docs = [SON([("_id", d["_id"]), ("n", d["n"])]) for d in query_at(clock[0])]
            limit = r.doc["limit"]
            full = sorted(state.values(), key=lambda d: (d["n"], d["_id"]))[:limit]
            cursor_reply(r, [SON([("_id", d["_id"]), ("n", d["n"])]) for d in full], MSG_NS,
                         operationTime=Timestamp(1700000000, clock[0]))
            assert [dict(d) for d in docs] == full[:size]

        def serve_one(timeout=TIMEOUT):
            request = mock.server.receives(timeout=timeout)
            if request.command_name in ("killCursors", "endSessions"):
                mock.ack(request)
            elif request.command_name == "getMore":
                batch = undelivered.pop(0) if undelivered else []
                if not batch:
                    time.sleep(0.01)
                cursor_reply(request, batch, MSG_NS, 42, first=False)
            elif request.command_name == "find":
                answer_find(request)
            else:
                raise AssertionError("unexpected %r" % request.doc)

        connect = in_background(WsClient, rheo.port, '/messages/_live?sort={"n":1}&pagesize=%d'
                                % size)
        expect_props_read(mock, [props_doc(ObjectId())])
        cursor_reply(mock.receive("aggregate"), [], MSG_NS, 42,
                     cursor_extra=pbrt(mongo_token(1700000000, 1)))
        ws = connect()
        frames = []
        stop = threading.Event()

        def read_frames():
            while not stop.is_set():
                try:
                    op, payload = ws.frame(timeout=0.2)
                except AssertionError:
                    continue
                except OSError:
                    return
                if op == 1:
                    frames.append(json.loads(payload.decode()))

        reader = threading.Thread(target=read_frames, daemon=True)
        reader.start()
        for _ in range(120):
            batch = []
            for _ in range(rng.randrange(1, 4)):
                clock[0] += 1
                commit(batch, clock[0])
            undelivered.append(batch)
            for _ in range(rng.randrange(0, 3)):
                serve_one()
        # Everything is delivered, then the client holds the query on the last commit.
        final = query_at(clock[0])
        deadline = time.time() + TIMEOUT
        docs = []
        while True:
            serve_one(timeout=1)
            docs = []
            for f in list(frames):
                docs = apply_frame(docs, f)
            if not undelivered and docs == final:
                break
            assert time.time() < deadline, ("never converged", docs, final)
        stop.set()
        reader.join()
        ws.close()
        # Every frame: the query on the model at its token.
        docs = []
        for f in frames:
            docs = apply_frame(docs, f)
            assert docs == query_at(time_of(f["token"])), (seed, f, docs)
        assert reads[0] >= 2, reads  # refills happened
        print("     seed %d: %d commits, %d frames, %d reads" % (seed, clock[0] - 1, len(frames),
                                                                 reads[0]))

    with_rheo(run)


def fail_and_reopen(mock, cursor_id, **error):
    """Fails the replay's next getMore on `cursor_id` with `error`; returns the aggregate
    that re-opens it and its $changeStream stage."""
    r = mock.receive("getMore", cursor=cursor_id)
    r.replies(ok=0, **error)
    r = mock.receive("aggregate")
    return r, r.doc["pipeline"][0]["$changeStream"]


def test_replay_from_a_snapshot_token_reopens_at_its_start_until_an_event():
    def run(mock, rheo):
        live, _ = open_stream(mock, rheo, 42)  # no position known: no handover before events
        mock.idle_cursors = {42}
        ws, r, stage = connect_resuming(mock, rheo, SNAPSHOT)
        start = Timestamp(1700000000, 8)
        assert stage["startAtOperationTime"] == start, stage
        cursor_reply(r, [], MSG_NS, 50)

        # A non-resumable error before any event: rheo re-opens at the same start.
        r, stage = fail_and_reopen(mock, 50, code=96, errmsg="operation failed (not resumable)")
        assert stage["startAtOperationTime"] == start and "resumeAfter" not in stage, stage
        cursor_reply(r, [], MSG_NS, 51)

        # A resumable one: the driver resumes at the same start too.
        r, stage = fail_and_reopen(mock, 51, code=6, codeName="HostUnreachable",
                                   errmsg="host unreachable",
                                   errorLabels=["ResumableChangeStreamError"])
        assert stage["startAtOperationTime"] == start and "resumeAfter" not in stage, stage
        cursor_reply(r, [insert(11)], MSG_NS, 52)
        assert ids(ws, 1) == [token(11)]

        # After an event, the event's token.
        r, stage = fail_and_reopen(mock, 52, code=96, errmsg="operation failed (not resumable)")
        assert stage["resumeAfter"] == {"_data": token(11)}, stage
        assert "startAtOperationTime" not in stage, stage
        cursor_reply(r, [], MSG_NS, 53)

        # The live stream moves on; the replay reaches it; then live only.
        mock.idle_cursors = {42, 53}
        serve_getmore(mock, 42, [insert(12)])
        assert ids(live, 1) == [token(12)]
        serve_getmore(mock, 53, [insert(12)])
        assert ids(ws, 1) == [token(12)]
        serve_getmore(mock, 42, [insert(13)])
        assert ids(ws, 1) == [token(13)]
        ws.close()
        live.close()

    with_rheo(run)


def test_resume_with_a_malformed_token_is_refused_before_the_upgrade():
    def run(mock, rheo):
        for bad in ("xyz", "82ABC", "T6553F1000000000", "T6553F10000000007A",
                    "t6553f10000000007", "T6553F1000000000G"):
            try:
                WsClient(rheo.port, "/messages/_streams/all?resumeAfter=" + bad)
                raise AssertionError("upgrade accepted with resumeAfter=" + bad)
            except AssertionError as e:
                assert "upgrade refused" in str(e) and " 400 " in str(e), (bad, e)
            status, _, body = rheo.request("GET", "/messages/_streams/all?resumeAfter=" + bad,
                                           headers={"Accept": "text/event-stream"})
            assert status == 400 and "resume token" in body, (bad, status, body)
        # Neither opened a change stream (nor read anything): the next command is this find.
        call = in_background(rheo.request, "GET", "/messages")
        r = mock.receive("find")
        assert r.doc["find"] == "messages", r.doc
        cursor_reply(r, [SON([("_id", 1)])], MSG_NS)
        assert call()[0] == 200

    with_rheo(run)


def test_history_lost_on_the_replay_closes_with_4410():
    def run(mock, rheo):
        live = live_stream_through(mock, rheo, 2)
        lost = dict(ok=0, code=286, codeName="ChangeStreamHistoryLost",
                    errmsg="Resume of change stream was not possible, as the resume point may "
                           "no longer be in the oplog.",
                    errorLabels=["NonResumableChangeStreamError"])

        # An event token too old for the oplog.
        ws, r, stage = connect_resuming(mock, rheo, token(1))
        assert stage["resumeAfter"] == {"_data": token(1)}, stage
        r.replies(**lost)
        assert ws.close_frame() == (4410, "history lost")

        # A snapshot token too old; its increment at the maximum starts at the next second.
        ws, r, stage = connect_resuming(mock, rheo, "T6553F101FFFFFFFF")
        assert stage["startAtOperationTime"] == Timestamp(1700000002, 0), stage
        r.replies(**lost)
        assert ws.close_frame() == (4410, "history lost")

        # The shared live stream goes on.
        serve_getmore(mock, 42, [insert(3)])
        assert ids(live, 1) == [token(3)]
        live.close()

    with_rheo(run)


def test_sse_resumes_from_last_event_id_and_reports_history_lost():
    def run(mock, rheo):
        live = live_stream_through(mock, rheo, 2)

        # A reconnecting EventSource: Last-Event-ID is the resume token.
        connect = in_background(SseClient, rheo.port, "/messages/_streams/all",
                                {"Last-Event-ID": token(1)})
        sse = connect()
        r = mock.receive("aggregate")
        assert r.doc["pipeline"][0]["$changeStream"]["resumeAfter"] == {"_data": token(1)}, r.doc
        cursor_reply(r, [insert(2)], MSG_NS, 50)
        ev = sse.event()
        assert ev["id"] == token(2) and ev["event"] == "change", ev
        assert ev["data"]["_id"] == {"_data": token(2)}, ev
        mock.idle_cursors = {42, 50}
        serve_getmore(mock, 42, [insert(3)])
        assert ids(live, 1) == [token(3)]
        ev = sse.event()
        assert ev["id"] == token(3), ev

        # History lost: one history-lost event at the current position, then live.
        connect = in_background(SseClient, rheo.port,
                                "/messages/_streams/all?resumeAfter=" + token(1))
        lost_sse = connect()
        r = mock.receive("aggregate")
        r.replies(ok=0, code=286, codeName="ChangeStreamHistoryLost", errmsg="history lost",
                  errorLabels=["NonResumableChangeStreamError"])
        ev = lost_sse.event()
        assert ev["event"] == "history-lost" and ev["id"] == token(3), ev
        serve_getmore(mock, 42, [insert(4)])
        assert lost_sse.event()["id"] == token(4)
        assert sse.event()["id"] == token(4)
        sse.close()
        lost_sse.close()

    with_rheo(run)


def metric(rheo, name):
    """The value of metric `name` in rheo's /_metrics."""
    status, _, body = rheo.request("GET", "/_metrics")
    assert status == 200, (status, body)
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric %s in /_metrics" % name)


def test_a_resuming_client_that_does_not_read_pauses_its_replay_stream():
    """Paced replays: the replay of a resuming WebSocket client whose connection is full
    stops reading its change stream (no getMore while the client does not read, the live
    stream going on meanwhile); the client is not closed with 1013 however long the history;
    once it reads, the replay goes on and it gets every missed event in order, once."""
    # The client misses more than its connection can hold: rheo's send buffer grows up to
    # tcp_wmem's maximum (4 MiB by default), which takes the first events: 1.5 times that
    # in ~1 KB events (5,800 by default), in batches of 100.
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    per_batch = 100
    batches = max(30, -(-wmem_max * 3 // 2 // (per_batch * 1100)))
    last = 1 + per_batch * batches  # the client missed 2..last
    pad = "x" * 1000

    def missed(n):
        return change(n, "insert", SON([("_id", n), ("pad", pad)]), n)

    def run(mock, rheo):
        # The live stream's position is the last missed event: the replay hands over there.
        live, _ = open_stream(mock, rheo, 42, post_batch_token=token(last))
        mock.idle_cursors = {42}
        # A queue limit of 64 KiB: the replay reads 4 KiB parts, the next one once the
        # connection has drained to 16 KiB. The client's small receive buffer fills at once.
        connect = in_background(WsClient, rheo.port,
                                "/messages/_streams/all?resumeAfter=" + token(1), 4096)
        ws = connect()
        r = mock.receive("aggregate")
        assert r.doc["pipeline"][0]["$changeStream"]["resumeAfter"] == {"_data": token(1)}, r.doc
        script = [[missed(n) for n in range(2 + b * per_batch, 2 + (b + 1) * per_batch)]
                  for b in range(batches)]
        cursor_reply(r, script.pop(0), MSG_NS, 50)
        getmores = {42: 0, 50: 0}

        def serve(timeout):
            """Answers the next request, if one comes within `timeout`: a getMore on the
            replay (50) with its next batch (empty once all were given), one on the live
            stream (42) empty; noise acknowledged."""
            request = mock.next_request(timeout)
            if request is None:
                return
            if request.command_name in NOISE:
                mock.ack(request)
                return
            assert request.command_name == "getMore", request.doc
            cursor = request.doc["getMore"]
            assert cursor in getmores, request.doc
            getmores[cursor] += 1
            if cursor == 50 and script:
                cursor_reply(request, script.pop(0), MSG_NS, 50, first=False)
            else:  # idle (as a server waits maxAwaitTimeMS; pacing only)
                time.sleep(0.05)
                cursor_reply(request, [], MSG_NS, cursor, first=False)

        # (1) The client does not read: its connection fills and the replay stops asking
        # for batches though the server has more. Waits for a quiet second and a half (a
        # paced feed waits for the connection to drain: it would stay quiet for ever; an
        # unpaced one reads a batch in well under that), with a deadline.
        quiet = 1.5
        deadline = time.time() + TIMEOUT
        since = time.time()
        live_before = getmores[42]
        while time.time() - since < quiet:
            if time.time() > deadline:
                raise AssertionError("the replay kept reading: %d getMores" % getmores[50])
            seen = getmores[50]
            serve(0.1)
            if getmores[50] != seen:
                since = time.time()
                live_before = getmores[42]
        paused_at = getmores[50]
        assert script, "the replay read the whole history while its client did not read"
        # The live stream is not paced: it went on asking for events all along.
        assert getmores[42] - live_before >= 3, (getmores, live_before)
        # (2) Not closed as a slow consumer (before paced replays: 1013 at once).
        assert metric(rheo, "rheo_slow_consumer_closes_total") == 0
        replayed = metric(rheo, "rheo_events_replayed_total")
        assert replayed < last - 1, replayed

        # (3) The client reads: the replay goes on to the end, and the client gets every
        # missed event in order, each once, then live events.
        box = {}

        def read():
            try:
                box["ids"] = [ws.event()["_id"]["_data"] for _ in range(last - 1)]
            except BaseException as e:
                box["error"] = e

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.time() + TIMEOUT
        while reader.is_alive():
            if time.time() > deadline:
                raise AssertionError("the client did not get the history: %d getMores, %d "
                                     "batches left" % (getmores[50], len(script)))
            serve(0.1)
        if "error" in box:
            raise box["error"]
        assert box["ids"] == [token(n) for n in range(2, last + 1)], "not every event, once"
        assert not script and getmores[50] > paused_at, (getmores, paused_at)
        mock.idle_cursors = {42, 50}
        serve_getmore(mock, 42, [insert(last + 1)])
        assert ids(live, 1) == [token(last + 1)]
        assert ids(ws, 1) == [token(last + 1)]
        assert metric(rheo, "rheo_slow_consumer_closes_total") == 0
        print("     paused after %d of %d replay getMores, %d events replayed; live stream: "
              "%d getMores" % (paused_at, batches - 1, replayed, getmores[42]))
        ws.close()
        live.close()

    with_rheo(run, extra=["--ws-queue-limit-bytes", "65536"])


def test_a_paced_replay_goes_on_past_events_it_skips():
    """A paced replay counts only the events it delivers against its part: change events of
    an operation rheo does not know (skipped) never make it wait for a drain that no
    delivered event asks for."""
    def unknown(n):  # as a server with showExpandedEvents sends them; ~1.5 KB each
        ev = change(n, "createIndexes")
        ev["operationDescription"] = SON([("indexes", [SON([("name", "x" * 1500)])])])
        return ev

    def run(mock, rheo):
        live, _ = open_stream(mock, rheo, 42, post_batch_token=token(12))
        mock.idle_cursors = {42}
        ws, r, stage = connect_resuming(mock, rheo, token(1))
        assert stage["resumeAfter"] == {"_data": token(1)}, stage
        # A 4 KiB part: the first event fills one; the next part is 4 skipped events (6 KB)
        # and then the rest.
        big = change(2, "insert", SON([("_id", 2), ("pad", "x" * 5000)]), 2)
        cursor_reply(r, [big] + [unknown(n) for n in range(3, 7)] +
                     [insert(n) for n in range(7, 13)], MSG_NS, 50)
        mock.idle_cursors = {42, 50}
        read = threading.Thread(target=lambda: got.append(ids(ws, 7)), daemon=True)
        got = []
        read.start()
        mock.serve_idle_until(lambda: not read.is_alive(), timeout=TIMEOUT + 5)
        assert got, "the replay stopped after the skipped events"
        assert got[0] == [token(2)] + [token(n) for n in range(7, 13)], got[0]
        serve_getmore(mock, 42, [insert(13)])
        assert ids(live, 1) == [token(13)]
        assert ids(ws, 1) == [token(13)]
        ws.close()
        live.close()

    with_rheo(run, extra=["--ws-queue-limit-bytes", "65536"])


# ---- cluster ----


def owner_pid(client_port):
    """The process whose socket has local port `client_port` (a connection to the mock)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "( sport = :%d )" % client_port],
                         capture_output=True, text=True).stdout
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    raise AssertionError("no process owns port %d: %r" % (client_port, out))


def test_cluster_edge_talks_to_mongodb_and_only_the_core_watches():
    """With MongoDB, an edge reads and writes MongoDB itself; its change feeds come from the
    core, which alone opens change streams."""
    mock = Primary()
    core = edge = None
    try:
        cport = free_port()
        secret = ["--cluster-secret", "s3cret"]
        core = Rheo(RHEO, mock.uri,
                    ["--cluster-listen", "127.0.0.1:%d" % cport, "--node-name", "core"] + secret)
        edge = Rheo(RHEO, mock.uri,
                    ["--cluster-join", "127.0.0.1:%d" % cport, "--node-name", "edge"] + secret)
        # A client of the edge: the edge reads the stream definition itself...
        connect = in_background(WsClient, edge.port, "/messages/_streams/all")
        r = mock.receive("find")
        assert r.doc["find"] == "_properties", r.doc
        assert owner_pid(r.client_port) == edge.proc.pid, "the edge reads MongoDB itself"
        cursor_reply(r, [props_doc(ObjectId())], PROPS_NS)
        # ...and the change stream is the core's.
        r = mock.receive("aggregate")
        assert "$changeStream" in r.doc["pipeline"][0], r.doc
        assert owner_pid(r.client_port) == core.proc.pid, "only the core opens change streams"
        cursor_reply(r, [], MSG_NS, 42)
        ws = connect()
        serve_getmore(mock, 42, [change(1, "insert", SON([("_id", 7), ("m", "a")]), 7)])
        ev = ws.event()
        assert ev["_id"] == {"_data": token(1)} and ev["fullDocument"] == {"_id": 7, "m": "a"}, ev

        # A write on the edge goes to MongoDB from the edge.
        call = in_background(edge.request, "POST", "/messages", {"m": "b"})
        while True:
            r = mock.server.receives(timeout=TIMEOUT)
            if r.command_name == "getMore":  # the core's stream, idle
                cursor_reply(r, [], MSG_NS, 42, first=False)
                continue
            break
        assert r.command_name == "insert", r.doc
        assert owner_pid(r.client_port) == edge.proc.pid, "the edge writes MongoDB itself"
        r.replies(ok=1, n=1)
        status, _, _ = call()
        assert status == 201, status
        status, _, body = core.request("GET", "/_cluster")
        assert status == 200 and json.loads(body)["upstream_feeds"] == 1, body
    except BaseException:
        for node in (core, edge):
            if node:
                print(node.stderr(), file=sys.stderr)
        raise
    finally:
        mock.stop()
        for node in (edge, core):
            if node:
                node.stop()


if __name__ == "__main__":
    run_tests([
        test_startup_refuses_a_standalone_server,
        test_startup_reports_an_unreachable_server,
        test_startup_reports_a_malformed_uri,
        test_get_sends_find_with_filter_sort_skip_limit_and_projection,
        test_size_counts_with_the_filter,
        test_document_writes_send_insert_update_and_delete,
        test_collection_metadata_lives_in_properties,
        test_index_api_maps_to_index_commands,
        test_explain_maps_to_mongodbs_explain_command,
        test_get_on_mongodb_5_reads_one_snapshot_and_answers_its_time,
        test_get_answers_a_resume_token_from_the_reads_operation_time,
        test_get_without_sessions_answers_no_resume_token,
        test_bulk_post_inserts_every_document_in_one_transaction,
        test_bulk_patch_and_delete_send_update_many_and_delete_many,
        test_aggregation_sends_aggregate_with_the_resolved_pipeline,
        test_stream_delivers_events_and_resumes_after_errors,
        test_reopen_backs_off_exponentially,
        test_history_lost_closes_sessions,
        test_history_lost_on_reopen_closes_sessions,
        test_invalidate_closes_sessions,
        test_stream_resumes_when_the_primary_comes_back,
        test_metadata_change_through_rheo_closes_sessions,
        test_after_warm_up_a_get_sends_only_its_own_command,
        test_an_outside_stream_redefinition_closes_sessions,
        test_while_the_properties_stream_is_down_requests_read_properties,
        test_resume_after_an_event_token_replays_then_continues_live,
        test_replay_ahead_of_the_live_stream_repeats_nothing,
        test_resume_from_a_snapshot_token_starts_after_the_read,
        test_replay_from_a_snapshot_token_reopens_at_its_start_until_an_event,
        test_resume_with_a_malformed_token_is_refused_before_the_upgrade,
        test_history_lost_on_the_replay_closes_with_4410,
        test_sse_resumes_from_last_event_id_and_reports_history_lost,
        test_a_resuming_client_that_does_not_read_pauses_its_replay_stream,
        test_a_paced_replay_goes_on_past_events_it_skips,
        test_cluster_edge_talks_to_mongodb_and_only_the_core_watches,
        test_live_query_reads_in_sessions_and_skips_the_events_its_reads_reflect,
        test_live_query_follows_a_random_history_with_reads_racing_the_stream,
    ])
