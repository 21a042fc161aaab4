// The MongoDB store: the store interface on a MongoDB replica set or sharded cluster through
// mongo-c-driver (a mongoc_client_pool_t; every call pops a client and pushes it back).
//
// Layout, as RESTHeart keeps it, so rheo can serve an existing RESTHeart database:
// documents live in the MongoDB collection of the same name; collection metadata lives in
// the database's `_properties` collection as {_id: "_properties.<coll>", <metadata>...,
// _etag: ObjectId}. A collection exists when it has a `_properties` document or appears in
// listCollections. A collection without a `_properties` document (created by a POST, or
// outside rheo) has empty metadata and the ETag 000000000000000000000000 until its metadata
// is written.
//
// Queries run server-side with the request's own filter/sort/keys objects (find_query's
// *_doc fields); a find_query without them (a non-REST caller) is filtered with the
// compiled matcher in rheo. PATCH sends the compiled update operators as a MongoDB update
// document (plus $set of a fresh _etag); If-Match becomes an `_etag` condition in the
// filter (412 when the document exists with another etag).
//
// Change feeds: one MongoDB change stream (mongoc_collection_watch, fullDocument:
// "updateLookup") per feed, opened by watch() on the caller's thread, then read by the
// feed's own thread (started by start(), joined by cancel()), which holds one pooled client
// for the stream's lifetime and calls the sink. The position after the last delivered
// event is kept (the driver's resume token): errors the driver classifies as resumable are
// resumed by the driver; after any other error, or a lost connection, the feed re-opens the
// stream with `resumeAfter` that position, backing off exponentially (100 ms doubling to
// 5 s), until it succeeds or the feed is cancelled. The feed ends with lost("history lost:
// ...") on ChangeStreamHistoryLost (286) or a resume token the server no longer knows, and
// with lost("invalidated: ...") after delivering an `invalidate` event. cancel() returns once
// the getMore in flight returns: within max_await when the server answers, up to the
// driver's timeouts when it does not.
// Metadata changes reach the live feeds of their collection in this process, whose threads
// deliver them with feed_sink::metadata() (between two reads of the stream, so within
// max_await), so sessions whose stream definition changed are closed: put_collection and
// patch_collection hand over the new metadata themselves, and a change made by another
// process (another rheo, a script writing `_properties`) comes from the metadata cache's
// change stream and takes the same path (mongo_core::publish_metadata).
//
// Metadata cache (metadata_cache.hpp): `_properties` documents are kept in memory, current
// through one change stream per database on its `_properties` collection (a mongo_feed like
// the data feeds, so it resumes and re-opens with the same backoff), opened at the first
// metadata lookup of the database; a lookup then costs no round trip. Rules:
// - While that stream is down (failed and not yet re-opened, or lost and not yet replaced,
//   which the next lookup does) every lookup reads `_properties`: correct, slower, never a
//   possibly stale entry. Re-opening starts from an empty cache.
// - A miss reads once and caches the answer, including "no `_properties` document"
//   (negative entries are safe: another process creating the document sends an insert
//   event). A read that an event or a write overtook (a generation counter) is not cached.
//   Whether a collection without metadata exists is still asked (listCollections) each time:
//   the stream does not show collections created or dropped by other processes.
// - This store's own writes update the cache when they succeed, and pin the entry before
//   being sent: events still in the stream from before the write are skipped until the
//   write's own event (found by its _etag) arrives, so an own write is never followed by an
//   older state, and its event is not published twice. A failed write forgets the entry.
// - Events of other writers become the entry (an update's fullDocument is looked up, so it
//   is the current document, or none when deleted since) and are published to the feeds.
//
// Resume tokens come in two forms, told apart by their first character:
// - event tokens: the `_data` of a change event's `_id` (hex digits, MongoDB's sortable
//   KeyString); watch() opens the stream with `resumeAfter: {_data: <token>}`. Positions
//   reported to feed_sink::position() (the driver's resume token after a batch, i.e. the
//   server's postBatchResumeToken, when it is past the last delivered event) and
//   change_feed::position() of a feed opened without a token are event tokens too.
// - snapshot tokens, the Resume-Token header of find() and find_by_id(): "T" (not a hex
//   digit) and 16 uppercase hex digits, the seconds and the increment (8 each) of the
//   operationTime the server reports for the read, which runs in a causally consistent
//   client session. The read reflects every write at or before that time, so watch() opens
//   the stream with `startAtOperationTime` the next timestamp: Timestamp(t, i + 1), or
//   Timestamp(t + 1, 0) when i is at its maximum. The operation time is what MongoDB gives
//   for this, and it is exact unless a write commits while the read runs: the server
//   reports (read concern "local") its last applied optime when the read ends, so such a
//   write can be at or before it without being in the result, and is then not replayed
//   either. A deployment without sessions, or a reply without operationTime, gives no
//   token (no header). A feed opened from a snapshot token re-opens, until it knows a resume token,
//   with that same startAtOperationTime; its position() is the snapshot token.
// check_resume_token() accepts exactly these two forms; watch() ends the feed of any other
// string with lost("history lost: malformed resume token ...").
//
// Errors: 409 on duplicate key (11000); 400 for update/query errors the server rejects
// (type mismatch, conflicting paths...); 503 when no MongoDB server is reachable; other
// server errors are 500 with the server's message.
//
// Thread-safety: the store is safe to use from any number of threads (store.hpp); feeds
// as in store.hpp (sinks called on the feed's thread only).
#pragma once

#include "storage/store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace rheo {

struct mongo_store_options {
  /// Longest a change-stream getMore waits for events on the server (maxAwaitTimeMS); it
  /// also bounds how long cancel() waits for the feed thread (server answering).
  std::chrono::milliseconds max_await{1000};
  /// Re-open backoff after a failed change stream: starts here, doubles, capped at max.
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  /// serverSelectionTimeoutMS used when the URI does not set one.
  std::chrono::milliseconds server_selection_timeout{5000};
  /// Keep collection metadata in a cache kept current by a change stream on `_properties`
  /// per database. Off: every lookup reads `_properties` (a cluster's edges, which open
  /// no change streams of their own: only the core does).
  bool metadata_cache = true;
};

/// Connects to `uri` (a MongoDB connection string) and checks that the deployment is
/// reachable (`hello`, falling back to `isMaster`) and supports change streams (a replica
/// set member reporting `setName`, or a mongos reporting `msg: "isdbgrid"`). Throws
/// std::runtime_error with one clear line otherwise.
std::unique_ptr<store> open_mongo_store(const std::string& uri,
                                        const mongo_store_options& options = {});

} // namespace rheo
