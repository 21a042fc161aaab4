"""Wire-level tests of rheo export and rheo import with --mongo-uri: a scripted replica-set
primary (mockupdb, as test/tools/migrate_test.py), asserting the commands rheo sends and the
files it writes. Export: listCollections, _properties, listIndexes and one cursor per
collection sorted by _id, the files byte-equal (as BSON) to what the server sent. Import: a
new collection through a staging collection (inserts, createIndexes, renameCollection), a
bad line or an _id the collection holds writing nothing, a failure mid-way naming how many
documents were written and --upsert, --upsert replacing by _id, a file changed between the
import's two passes refused (its staging collection dropped), and the import's peak RSS for
a 290 MB file under 100 MB (one batch of documents in memory, not the file).

usage: transfer_mongo_test.py <path to rheo>   (RHEO_TEST_ONLY=<substring> runs a subset)
"""

import contextlib
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "storage",
                                "mongo"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bson  # noqa: E402
from bson import (Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex,  # noqa: E402
                  Timestamp, json_util)
from bson.son import SON  # noqa: E402
from harness import Primary, cursor_reply, in_background, run_tests  # noqa: E402
from migrate_test import expect_batch  # noqa: E402

RHEO = sys.argv[1] if len(sys.argv) > 1 else "build/rheo"
DOCS = 2500


def rheo(*args):
    r = subprocess.run([RHEO] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def sent_documents():
    """Documents of every BSON type a server may send, in _id order."""
    docs = []
    for i in range(5):
        docs.append(SON([
            ("_id", i), ("i32", i), ("i64", Int64(2**40 + i)), ("d", 1.5 + i), ("dneg", -0.0),
            ("s", "h\u00e9llo %d" % i), ("oid", ObjectId("65a1b2c3d4e5f60718293a4%d" % i)),
            ("at", datetime.datetime(2024, 1, 2, 3, 4, 5, 6000 * (i + 1))),
            ("dec", Decimal128("1.2%d" % i)), ("bin", Binary(b"\x00\x01\xff", 0)),
            ("user", Binary(b"xy", 128)), ("re", Regex("^a.*b$", "ims")),
            ("ts", Timestamp(1700000000, i)), ("min", MinKey()), ("max", MaxKey()),
            ("null", None), ("t", True), ("obj", SON([("a", [1, SON([("b", "c")])])])),
            ("arr", [1, "two", [3], None])]))
    return docs


def write_input(folder, lines, coll="notes", metadata=None):
    """A folder of an export's layout: <folder>/rheo/<coll>.json (and its metadata)."""
    os.makedirs(os.path.join(folder, "rheo"), exist_ok=True)
    with open(os.path.join(folder, "rheo", coll + ".json"), "w") as f:
        f.write("".join(line + "\n" for line in lines))
    if metadata is not None:
        with open(os.path.join(folder, "rheo", coll + ".metadata.json"), "w") as f:
            f.write(metadata)


def note_lines(n=DOCS):
    return ['{"_id":%d,"n":%d,"big":{"$numberLong":"%d"}}' % (i, i, 2**40 + i)
            for i in range(n)]


METADATA = ('{"metadata":{"streams":[{"uri":"all","stages":[]}]},"indexes":['
            '{"v":2,"key":{"_id":1},"name":"_id_"},'
            '{"v":2,"key":{"n":-1},"name":"by_n","unique":true}]}\n')


def assert_no_more_commands(mock, timeout=0.5):
    """No command (a write least of all) reaches the mock for `timeout` seconds."""
    deadline = time.time() + timeout
    mock.serve_idle_until(lambda: time.time() > deadline, timeout=timeout + 5)


def assert_refused(mock, result, message):
    """`result` (exit status, output) is a failure saying `message`, and rheo sent no more
    commands."""
    code, out = result
    assert code == 1 and message in out, out
    assert_no_more_commands(mock)


@contextlib.contextmanager
def scripted(lines=None, coll="notes", metadata=METADATA):
    """(work dir, input folder holding `lines` as <coll>.json, a scripted primary)."""
    work = tempfile.mkdtemp(prefix="rheo-transfer-mongo.")
    src = os.path.join(work, "in")
    if lines is not None:
        write_input(src, lines, coll, metadata)
    mock = Primary()
    try:
        yield work, src, mock
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)


def expect_probe(mock, coll, exists, first=None):
    """rheo asks whether `coll` exists (listCollections) and, if it does, for one _id."""
    r = mock.receive("listCollections")
    assert r.doc["filter"] == {"name": coll}, r.doc
    cursor_reply(r, [SON([("name", coll), ("type", "collection")])] if exists else [],
                 "rheo.$cmd.listCollections")
    if exists:
        r = mock.receive("find")
        assert r.doc["find"] == coll and r.doc.get("limit") == 1, r.doc
        assert r.doc.get("projection") == {"_id": 1}, r.doc
        cursor_reply(r, [SON([("_id", first)])] if first is not None else [], "rheo." + coll)


def expect_properties(mock, coll, streams):
    r = mock.receive("update")
    assert r.doc["update"] == "_properties", r.doc
    (u,) = r.doc["updates"]
    assert u["q"] == {"_id": "_properties." + coll} and u["upsert"] is True, u
    assert u["u"]["streams"] == streams and "_etag" in u["u"], u
    r.replies(ok=1, n=1, nModified=0, upserted=[SON([("index", 0), ("_id", u["u"]["_id"])])])


def expect_create_indexes(mock, coll):
    r = mock.receive("createIndexes")
    assert r.doc["createIndexes"] == coll, r.doc
    assert r.doc["indexes"] == [{"key": {"n": -1}, "name": "by_n", "unique": True}], r.doc
    r.replies(ok=1)


def expect_inserts(mock, coll, sizes, fail_at=None):
    """Ordered insert batches of `sizes` into `coll`; `fail_at` (batch, index): that batch
    fails at that document (a duplicate key). Returns the _ids inserted."""
    ids = []
    for b, size in enumerate(sizes):
        r = mock.receive("insert")
        assert r.doc["insert"] == coll, r.doc
        assert r.doc.get("ordered", True) is True, r.doc
        docs = r.doc["documents"]
        assert len(docs) == size, (len(docs), size)
        ids += [d["_id"] for d in docs]
        if fail_at and fail_at[0] == b:
            r.replies(ok=1, n=fail_at[1], writeErrors=[SON([
                ("index", fail_at[1]), ("code", 11000),
                ("errmsg", "E11000 duplicate key error collection: rheo.%s" % coll)])])
            return ids
        r.replies(ok=1, n=size)
    return ids


def test_export_writes_what_the_server_sent_with_metadata_and_indexes():
    docs = sent_documents()
    with scripted() as (work, _, mock):
        out = os.path.join(work, "out")
        done = in_background(rheo, "export", "--mongo-uri", mock.uri, "--out", out)
        r = mock.receive("listCollections")
        assert r.doc["$db"] == "rheo", r.doc
        cursor_reply(r, [SON([("name", n), ("type", "collection")])
                         for n in ("notes", "_properties", "system.views",
                                   "x.rheo_import_00ff00ff00ff00ff")],
                     "rheo.$cmd.listCollections")
        r = mock.receive("find")
        assert r.doc["find"] == "_properties", r.doc
        etag = ObjectId()
        cursor_reply(r, [SON([("_id", "_properties.notes"),
                              ("streams", [SON([("uri", "all"), ("stages", [])])]),
                              ("_etag", etag)]),
                         SON([("_id", "_properties.meta_only"), ("note", "x"), ("_etag", etag)])],
                     "rheo._properties")
        # meta_only first (by name): no documents, no indexes.
        r = mock.receive("listIndexes")
        assert r.doc["listIndexes"] == "meta_only", r.doc
        r.replies(ok=0, code=26, errmsg="ns does not exist: rheo.meta_only")
        r = mock.receive("find")
        assert r.doc["find"] == "meta_only" and r.doc["sort"] == {"_id": 1}, r.doc
        cursor_reply(r, [], "rheo.meta_only")
        r = mock.receive("listIndexes")
        assert r.doc["listIndexes"] == "notes", r.doc
        cursor_reply(r, [SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")]),
                         SON([("v", 2), ("key", SON([("n", -1)])), ("name", "by_n"),
                              ("unique", True)])], "rheo.notes")
        # One cursor, sorted by _id, in two batches.
        r = mock.receive("find")
        assert r.doc["find"] == "notes" and r.doc["sort"] == {"_id": 1}, r.doc
        assert r.doc.get("filter", {}) == {}, r.doc
        cursor_reply(r, docs[:3], "rheo.notes", 4242)
        r = mock.receive("getMore", cursor=4242)
        cursor_reply(r, docs[3:], "rheo.notes", 0, first=False)
        code, text = done(60)
        assert code == 0, text
        assert "exported 2 collections, 5 documents of MongoDB at 127.0.0.1:%d" % mock.port \
            in text, text
        # Each line is the BSON the server sent, byte for byte.
        with open(os.path.join(out, "rheo", "notes.json")) as f:
            lines = f.read().splitlines()
        assert len(lines) == len(docs), lines
        for line, doc in zip(lines, docs):
            assert bson.encode(json_util.loads(line)) == bson.encode(doc), (line, doc)
        assert '"i32" : { "$numberInt" : "0" }' in lines[0], lines[0]
        with open(os.path.join(out, "rheo", "notes.metadata.json")) as f:
            meta = json_util.loads(f.read())
        assert meta["collectionName"] == "notes" and meta["db"] == "rheo", meta
        assert meta["metadata"] == {"streams": [{"uri": "all", "stages": []}]}, meta
        assert [ix["name"] for ix in meta["indexes"]] == ["_id_", "by_n"], meta
        assert meta["indexes"][1]["unique"] is True, meta
        with open(os.path.join(out, "rheo", "meta_only.metadata.json")) as f:
            assert json_util.loads(f.read())["metadata"] == {"note": "x"}
        assert os.path.getsize(os.path.join(out, "rheo", "meta_only.json")) == 0
        assert sorted(os.listdir(os.path.join(out, "rheo"))) == [
            "meta_only.json", "meta_only.metadata.json", "notes.json", "notes.metadata.json"]


def test_import_of_a_new_collection_goes_through_a_staging_collection():
    with scripted(note_lines()) as (_, src, mock):
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        expect_probe(mock, "notes", exists=False)
        r = mock.receive("insert")
        staging = r.doc["insert"]
        assert re.fullmatch(r"notes\.rheo_import_[0-9a-f]{16}", staging), staging
        assert r.doc.get("writeConcern", {}).get("w") == "majority", r.doc
        first = [d["_id"] for d in r.doc["documents"]]
        assert len(first) == 1000, len(first)
        r.replies(ok=1, n=1000)
        ids = first + expect_inserts(mock, staging, [1000, DOCS - 2000])
        assert ids == list(range(DOCS)), ids[:5]
        expect_create_indexes(mock, staging)
        r = mock.receive("renameCollection")
        assert r.doc["$db"] == "admin", r.doc
        assert r.doc["renameCollection"] == "rheo." + staging, r.doc
        assert r.doc["to"] == "rheo.notes" and r.doc["dropTarget"] is False, r.doc
        r.replies(ok=1)
        expect_properties(mock, "notes", [{"uri": "all", "stages": []}])
        code, out = done(60)
        assert code == 0, out
        assert "rheo.notes: 2500 documents, 1 index <- %s/rheo/notes.json -> MongoDB rheo.notes" \
            % src in out, out
        assert "imported 1 collection, 2500 documents into MongoDB" in out, out


def test_a_failed_staging_collection_is_dropped_and_nothing_appears():
    with scripted(note_lines()) as (_, src, mock):
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        expect_probe(mock, "notes", exists=True)  # exists, empty: dropTarget
        r = mock.receive("insert")
        staging = r.doc["insert"]
        r.replies(ok=1, n=1000)
        expect_inserts(mock, staging, [1000, DOCS - 2000])
        expect_create_indexes(mock, staging)
        r = mock.receive("renameCollection")
        assert r.doc["dropTarget"] is True, r.doc
        r.replies(ok=0, code=11601, errmsg="operation was interrupted")
        r = mock.receive("drop")
        assert r.doc["drop"] == staging, r.doc
        r.replies(ok=1)
        assert_refused(mock, done(60), "operation was interrupted; nothing of rheo.notes was "
                       "written (the staging collection %s was dropped)" % staging)


def test_a_bad_line_sends_no_write_at_all():
    with scripted(note_lines(10), coll="a") as (_, src, mock):
        write_input(src, ['{"_id":"x"}', '', '{"x": }', '{"_id":"last"}'], coll="b")
        assert_refused(mock, rheo("import", src, "--mongo-uri", mock.uri),
                       "rheo import: %s/rheo/b.json, line 3: offset 6: Invalid value.; nothing "
                       "was imported" % src)
        # An _id twice in a file is bad input too.
        write_input(src, ['{"_id":"x"}', '{"_id":"y"}', '{"_id":"x"}'], coll="b")
        assert_refused(mock, rheo("import", src, "--mongo-uri", mock.uri),
                       "b.json, line 3: _id \"x\" is also on line 1; nothing was imported")


def test_an_existing_collection_holding_one_of_the_ids_gets_no_insert():
    with scripted(note_lines()) as (_, src, mock):
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        expect_probe(mock, "notes", exists=True, first="old")
        for batch in range(3):
            r = mock.receive("find")
            assert r.doc["find"] == "notes" and r.doc.get("projection") == {"_id": 1}, r.doc
            wanted = r.doc["filter"]["_id"]["$in"]
            assert wanted == list(range(batch * 1000, min(DOCS, batch * 1000 + 1000))), wanted[:3]
            cursor_reply(r, [SON([("_id", 1500)]), SON([("_id", 1700)])] if batch == 1 else [],
                         "rheo.notes")
        assert_refused(mock, done(60),
                       "rheo import: %s/rheo/notes.json, line 1501: _id 1500 is already in "
                       "rheo.notes (and 1 more of the file's) (--upsert replaces them); nothing "
                       "was imported" % src)


def test_a_failure_mid_way_says_how_many_were_written_and_upsert_finishes_it():
    with scripted(note_lines()) as (_, src, mock):
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        expect_probe(mock, "notes", exists=True, first="old")
        for _ in range(3):
            cursor_reply(mock.receive("find"), [], "rheo.notes")
        expect_properties(mock, "notes", [{"uri": "all", "stages": []}])
        expect_create_indexes(mock, "notes")
        expect_inserts(mock, "notes", [1000, 1000], fail_at=(1, 300))
        assert_refused(mock, done(60),
                       "E11000 duplicate key error collection: rheo.notes; 1300 documents of "
                       "%s/rheo/notes.json were written into rheo.notes: the same command with "
                       "--upsert finishes it" % src)

        # --upsert: no _id check, every document replaces by _id (ordered).
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri, "--upsert")
        expect_probe(mock, "notes", exists=True, first=0)
        expect_properties(mock, "notes", [{"uri": "all", "stages": []}])
        expect_create_indexes(mock, "notes")
        ids = []
        for size in (1000, 1000, DOCS - 2000):
            got, ups = expect_batch(mock, "notes", size, ordered=True)
            ids += got
        assert ids == list(range(DOCS)), ids[:5]
        assert "$set" not in ups[-1]["u"], ups[-1]
        assert isinstance(ups[-1]["u"]["big"], Int64), ups[-1]
        code, out = done(60)
        assert code == 0, out
        assert "imported 1 collection, 2500 documents into MongoDB" in out, out


def test_a_file_changed_between_the_passes_is_refused_and_its_staging_dropped():
    changed = "notes.json changed while it was imported"
    with scripted(note_lines()) as (_, src, mock):
        path = os.path.join(src, "rheo", "notes.json")
        # Changed once read (an appended line): found before the first insert.
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        r = mock.receive("listCollections")  # the first pass is over
        with open(path, "a") as f:
            f.write('{"_id":"late"}\n')
        cursor_reply(r, [], "rheo.$cmd.listCollections")
        r = mock.receive("drop")
        staging = r.doc["drop"]
        assert re.fullmatch(r"notes\.rheo_import_[0-9a-f]{16}", staging), staging
        r.replies(ok=1)
        assert_refused(mock, done(60), "%s (its size or modification time differ): it was read "
                       "once to check it and is read again to write it; nothing of rheo.notes "
                       "was written (the staging collection %s was dropped)" % (changed, staging))

        # A line that no longer converts, met while writing: the staging collection dropped.
        write_input(src, note_lines(), metadata=METADATA)
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        expect_probe(mock, "notes", exists=False)
        r = mock.receive("insert")
        staging = r.doc["insert"]
        with open(path, "r+b") as f:  # line 2000 keeps its size, loses its closing brace
            f.seek(sum(len(line) + 1 for line in note_lines(1999)))
            line = note_lines(2000)[-1]
            f.write((line[:-1] + " ").encode())
        r.replies(ok=1, n=1000)
        r = mock.receive("drop")
        assert r.doc["drop"] == staging, r.doc
        r.replies(ok=1)
        code, out = done(60)
        assert code == 1 and "%s (line 2000 no longer converts: " % changed in out, out
        assert "nothing of rheo.notes was written (the staging collection %s was dropped)" \
            % staging in out, out
        assert_no_more_commands(mock)

        # A collection holding documents: refused before its first write.
        write_input(src, note_lines(), metadata=METADATA)
        done = in_background(rheo, "import", src, "--mongo-uri", mock.uri)
        expect_probe(mock, "notes", exists=True, first="old")
        for batch in range(3):
            r = mock.receive("find")
            if batch == 2:
                write_input(src, note_lines(DOCS - 1), metadata=METADATA)
            cursor_reply(r, [], "rheo.notes")
        assert_refused(mock, done(60), "%s (its size or modification time differ): it was read "
                       "once to check it and is read again to write it; nothing of rheo.notes "
                       "was written" % changed)


def peak_rss(pid):
    """The peak resident set of process `pid` so far (VmHWM), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for process %d" % pid)


BIG_DOCS = 300_000
MEMORY_BOUND = 100 << 20


def write_big_input(folder):
    """BIG_DOCS lines of about 1 KB each (about 300 MB) as <folder>/rheo/big.json; returns
    the file's size."""
    os.makedirs(os.path.join(folder, "rheo"), exist_ok=True)
    path = os.path.join(folder, "rheo", "big.json")
    text = "".join(chr(ord("a") + i % 26) * 37 for i in range(26))  # 962 characters
    with open(path, "w") as f:
        for start in range(0, BIG_DOCS, 10_000):
            f.write("".join('{"_id":%d,"n":{"$numberLong":"%d"},"text":"%s"}\n'
                            % (i, i, text[i % 26:] + text[:i % 26])
                            for i in range(start, start + 10_000)))
    return os.path.getsize(path)


def test_an_import_holds_one_batch_of_documents_not_the_file():
    """300,000 documents of 1 KB (290 MB): rheo import's peak RSS stays under MEMORY_BOUND
    (it reads the file twice, keeping only the _ids between the passes). Not in a
    sanitizer build (RHEO_SANITIZED=1), whose memory says nothing of rheo's."""
    if os.environ.get("RHEO_SANITIZED"):
        return
    with scripted() as (_, src, mock), tempfile.TemporaryFile() as log:
        size = write_big_input(src)
        assert size > 2.8 * MEMORY_BOUND, size
        p = subprocess.Popen([RHEO, "import", src, "--mongo-uri", mock.uri], stdout=log,
                             stderr=subprocess.STDOUT)
        try:
            r = mock.receive("listCollections", timeout=60)  # after the first pass
            cursor_reply(r, [], "rheo.$cmd.listCollections")
            inserted = 0
            while inserted < BIG_DOCS:
                r = mock.receive("insert", timeout=60)
                docs = r.doc["documents"]
                assert docs[0]["_id"] == inserted, (docs[0]["_id"], inserted)
                r.replies(ok=1, n=len(docs))
                inserted += len(docs)
            assert inserted == BIG_DOCS, inserted
            r = mock.receive("renameCollection")
            assert r.doc["to"] == "rheo.big", r.doc
            r.replies(ok=1)
            r = mock.receive("update")  # its (empty) metadata, the last write
            assert r.doc["updates"][0]["q"] == {"_id": "_properties.big"}, r.doc
            # rheo waits for this answer, every document sent: its peak so far is the import's.
            peak = peak_rss(p.pid)
            r.replies(ok=1, n=1, nModified=0)
            code = p.wait(60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.seek(0)
        out = log.read().decode()
        assert code == 0, out
        assert "imported 1 collection, 300000 documents into MongoDB" in out, out
        print("  rheo import --mongo-uri of a %d MB file: peak RSS %.1f MB"
              % (size >> 20, peak / (1 << 20)))
        assert peak < MEMORY_BOUND, "peak RSS %d bytes for a %d-byte file" % (peak, size)


def test_upsert_is_refused_for_a_data_dir():
    with scripted(note_lines(3)) as (work, src, _):
        code, out = rheo("import", src, "--data-dir", os.path.join(work, "data"), "--upsert")
        assert code == 2 and "--upsert is for an import into MongoDB" in out, out


if __name__ == "__main__":
    run_tests([
        test_export_writes_what_the_server_sent_with_metadata_and_indexes,
        test_import_of_a_new_collection_goes_through_a_staging_collection,
        test_a_failed_staging_collection_is_dropped_and_nothing_appears,
        test_a_bad_line_sends_no_write_at_all,
        test_an_existing_collection_holding_one_of_the_ids_gets_no_insert,
        test_a_failure_mid_way_says_how_many_were_written_and_upsert_finishes_it,
        test_upsert_is_refused_for_a_data_dir,
        test_a_file_changed_between_the_passes_is_refused_and_its_staging_dropped,
        test_an_import_holds_one_batch_of_documents_not_the_file,
    ])
