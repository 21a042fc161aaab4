"""Wire-level tests of rheo migrate: the embedded store's collections copied into a
scripted replica-set primary (mockupdb, as test/storage/mongo/wire_test.py), asserting the
commands rheo sends: the _properties documents (RESTHeart's layout, the collection's etag
kept), createIndexes, the documents as upserts by _id in batches, the counts compared; an
interrupted run finished by running it again, with nothing inserted twice; counts that
differ; --delete removing exactly the documents the store no longer holds; a standalone
server refused.

usage: migrate_test.py <path to rheo>   (RHEO_TEST_ONLY=<substring> runs a subset)
"""

import datetime
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "storage",
                                "mongo"))

from bson import Int64  # noqa: E402
from bson.son import SON  # noqa: E402
from harness import TIMEOUT, Primary, cursor_reply, in_background, run_tests  # noqa: E402

RHEO = sys.argv[1] if len(sys.argv) > 1 else "build/rheo"
DOCS = 2500


def make_store():
    """A data dir holding rheo.notes (DOCS documents, an index, streams) and rheo.empty
    (metadata only), made with rheo import."""
    work = tempfile.mkdtemp(prefix="rheo-migrate-test.")
    src = os.path.join(work, "in", "rheo")
    os.makedirs(src)
    with open(os.path.join(src, "notes.json"), "w") as f:
        for i in range(DOCS):
            f.write('{"_id":%d,"n":%d,"big":{"$numberLong":"%d"},"at":{"$date":%d},"s":"x%d"}\n'
                    % (i, i, 2**40 + i, 1700000000000 + i, i))
    with open(os.path.join(src, "notes.metadata.json"), "w") as f:
        f.write('{"metadata":{"streams":[{"uri":"all","stages":[]}]},"indexes":['
                '{"v":2,"key":{"_id":1},"name":"_id_"},'
                '{"v":2,"key":{"n":-1},"name":"by_n","unique":true}]}\n')
    with open(os.path.join(src, "empty.metadata.json"), "w") as f:
        f.write('{"metadata":{"note":"no documents"},"indexes":[]}\n')
    data = os.path.join(work, "data")
    r = subprocess.run([RHEO, "import", os.path.join(work, "in"), "--data-dir", data],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    return work, data


def migrate(data, uri, *extra):
    r = subprocess.run([RHEO, "migrate", "--data-dir", data, "--to", uri] + list(extra),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def expect_properties(mock, coll, fields):
    """The _properties upsert of `coll`; its replacement document is returned."""
    r = mock.receive("update")
    assert r.doc["update"] == "_properties", r.doc
    (u,) = r.doc["updates"]
    assert u["q"] == {"_id": "_properties." + coll}, u
    assert u["upsert"] is True, u
    doc = u["u"]
    assert doc["_id"] == "_properties." + coll, doc
    for k, v in fields.items():
        assert doc[k] == v, (k, doc)
    assert "_etag" in doc, doc
    assert r.doc.get("writeConcern", {}).get("w") == "majority", r.doc
    r.replies(ok=1, n=1, nModified=0, upserted=[SON([("index", 0), ("_id", doc["_id"])])])
    return doc


def expect_batch(mock, coll, size, fail=None, ordered=False):
    """One batch of document upserts into `coll` (`ordered` or not); returns their _ids (in
    order) and the updates."""
    r = mock.receive("update")
    assert r.doc["update"] == coll, r.doc
    assert r.doc.get("ordered", True) is ordered, r.doc
    ups = r.doc["updates"]
    assert len(ups) == size, (len(ups), size)
    ids = []
    for u in ups:
        assert u["upsert"] is True and not u.get("multi"), u
        assert u["q"] == {"_id": u["u"]["_id"]}, u
        ids.append(u["u"]["_id"])
    if fail:
        r.replies(ok=0, errmsg=fail, code=11601)
    else:
        r.replies(ok=1, n=size, nModified=0,
                  upserted=[SON([("index", i), ("_id", x)]) for i, x in enumerate(ids)])
    return ids, ups


def expect_count(mock, coll, n):
    r = mock.receive("aggregate")
    assert r.doc["aggregate"] == coll, r.doc
    cursor_reply(r, [{"_id": 1, "n": n}] if n else [], "rheo." + coll)


def serve_full_run(mock, count=DOCS):
    """The commands of one whole run over make_store()'s data; returns the upserted _ids."""
    expect_properties(mock, "empty", {"note": "no documents"})
    expect_count(mock, "empty", 0)
    expect_properties(mock, "notes", {"streams": [{"uri": "all", "stages": []}]})
    r = mock.receive("createIndexes")
    assert r.doc["createIndexes"] == "notes", r.doc
    assert r.doc["indexes"] == [{"key": {"n": -1}, "name": "by_n", "unique": True}], r.doc
    r.replies(ok=1)
    ids = []
    for size in (1000, 1000, DOCS - 2000):
        got, ups = expect_batch(mock, "notes", size)
        ids += got
    expect_count(mock, "notes", count)
    return ids, ups


def test_migrate_copies_metadata_indexes_and_documents_then_compares_counts():
    work, data = make_store()
    mock = Primary()
    try:
        done = in_background(migrate, data, mock.uri, "--batch", "1000")
        ids, ups = serve_full_run(mock)
        code, out = done(60)
        assert code == 0, out
        assert "rheo.notes: 2500 documents, 1 index -> MongoDB rheo.notes" in out, out
        assert "counts equal" in out, out
        assert "migrated 2 collections, 2500 documents of " + data in out, out
        assert ids == list(range(DOCS)), ids[:5]
        # The documents as stored: types kept (int64, dates).
        last = ups[-1]["u"]
        assert last["big"] == 2**40 + DOCS - 1 and isinstance(last["big"], Int64), last
        assert isinstance(last["at"], datetime.datetime), last
        assert list(last.keys())[0] == "_id", last
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_an_interrupted_migration_is_finished_by_running_it_again():
    work, data = make_store()
    mock = Primary()
    try:
        done = in_background(migrate, data, mock.uri, "--batch", "1000")
        expect_properties(mock, "empty", {"note": "no documents"})
        expect_count(mock, "empty", 0)
        expect_properties(mock, "notes", {"streams": [{"uri": "all", "stages": []}]})
        mock.receive("createIndexes").replies(ok=1)
        first, _ = expect_batch(mock, "notes", 1000)
        expect_batch(mock, "notes", 1000, fail="operation was interrupted")
        code, out = done(60)
        assert code == 1, out
        assert "operation was interrupted" in out, out
        assert "run the same command again" in out, out
        # Again: the same upserts by _id, so the documents of the first batch are replaced,
        # not added; the whole collection arrives and the counts agree.
        done = in_background(migrate, data, mock.uri, "--batch", "1000")
        ids, _ = serve_full_run(mock)
        code, out = done(60)
        assert code == 0, out
        assert sorted(ids) == list(range(DOCS))
        assert set(first) <= set(ids)
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_counts_that_differ_fail_naming_the_collection():
    work, data = make_store()
    mock = Primary()
    try:
        done = in_background(migrate, data, mock.uri, "--batch", "1000")
        serve_full_run(mock, count=DOCS + 3)
        code, out = done(60)
        assert code == 1, out
        assert "the counts differ: rheo.notes (2500 here, 2503 in MongoDB)" in out, out
        assert "--delete removes them" in out, out
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)


def expect_deletes(mock, coll, mongo_ids, extra, batches):
    """--delete: rheo reads `coll`'s _ids (`mongo_ids`, in two batches) and deletes those
    the store does not hold (`extra`) in `batches` deletes of `_id $in`."""
    r = mock.receive("find")
    assert r.doc["find"] == coll and r.doc.get("projection") == {"_id": 1}, r.doc
    assert r.doc.get("filter", {}) == {}, r.doc
    half = len(mongo_ids) // 2
    cursor_reply(r, [{"_id": x} for x in mongo_ids[:half]], "rheo." + coll, 31)
    r = mock.receive("getMore", cursor=31)
    cursor_reply(r, [{"_id": x} for x in mongo_ids[half:]], "rheo." + coll, 0, first=False)
    deleted = []
    for _ in range(batches):
        r = mock.receive("delete")
        assert r.doc["delete"] == coll, r.doc
        (d,) = r.doc["deletes"]
        assert d["limit"] == 0, d
        deleted += d["q"]["_id"]["$in"]
        r.replies(ok=1, n=len(d["q"]["_id"]["$in"]))
    assert sorted(deleted, key=str) == sorted(extra, key=str), deleted
    return deleted


def test_delete_removes_exactly_the_ids_the_store_no_longer_holds():
    work, data = make_store()
    mock = Primary()
    try:
        done = in_background(migrate, data, mock.uri, "--batch", "1000", "--delete")
        expect_properties(mock, "empty", {"note": "no documents"})
        expect_deletes(mock, "empty", ["stray"], ["stray"], 1)
        expect_count(mock, "empty", 0)
        expect_properties(mock, "notes", {"streams": [{"uri": "all", "stages": []}]})
        mock.receive("createIndexes").replies(ok=1)
        for size in (1000, 1000, DOCS - 2000):
            expect_batch(mock, "notes", size)
        # MongoDB holds every document of the store (1 and 1.0 are one _id) and 1,205 more.
        extra = list(range(DOCS, DOCS + 1200)) + ["x", -1, 0.5, Int64(2**40), "2"]
        mongo_ids = [float(1)] + list(range(2, DOCS)) + [0] + extra
        expect_deletes(mock, "notes", mongo_ids, extra, 2)
        expect_count(mock, "notes", DOCS)
        code, out = done(60)
        assert code == 0, out
        assert "rheo.notes: 2500 documents, 1 index -> MongoDB rheo.notes" in out, out
        assert "1205 deleted, counts equal" in out, out
        assert "rheo.empty: 0 documents, 0 indexes -> MongoDB rheo.empty" in out, out
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_a_standalone_server_or_none_is_refused():
    work, data = make_store()
    mock = Primary(standalone=True)
    try:
        code, out = migrate(data, "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=2000"
                            % mock.port)
        assert code == 1, out
        assert "is a standalone server" in out, out
    finally:
        mock.stop()
    code, out = migrate(data, "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500")
    assert code == 1 and "cannot connect to MongoDB at 127.0.0.1:1" in out, out
    code, out = migrate(data, "not-a-uri")
    assert code == 1 and "invalid MongoDB URI" in out, out
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run_tests([
        test_migrate_copies_metadata_indexes_and_documents_then_compares_counts,
        test_an_interrupted_migration_is_finished_by_running_it_again,
        test_counts_that_differ_fail_naming_the_collection,
        test_delete_removes_exactly_the_ids_the_store_no_longer_holds,
        test_a_standalone_server_or_none_is_refused,
    ])
