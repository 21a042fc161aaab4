#include "storage/mongo/metadata_cache.hpp"

#include "config/log.hpp"
#include "storage/mongo/feed.hpp"

#include <vector>

namespace rheo::mongo {

namespace {

std::optional<object> read_properties(pooled_client& c, const std::string& db,
                                      const std::string& coll) {
  auto props = collection_of(c, db, properties_coll);
  cursor_ptr cursor(mongoc_collection_find_with_opts(
      props.get(), to_bson(object{{"_id", value(properties_id(coll))}}).get(),
      to_bson(object{{"limit", value(std::int64_t{1})}}).get(), nullptr));
  auto docs = drain(cursor.get(), "reading the metadata of " + coll);
  if (docs.empty()) return std::nullopt;
  return std::move(docs.front());
}

std::string etag_of(const std::optional<object>& doc) {
  const value* etag = doc ? find_field(*doc, "_etag") : nullptr;
  return etag && etag->is<object_id>() ? etag->get<object_id>().hex() : std::string();
}

} // namespace

/// The sink of one database's `_properties` stream: hands its events and health to the
/// cache (on the feed's thread).
class metadata_cache::sink final : public health_sink {
public:
  sink(metadata_cache* cache, std::string db) : cache_(cache), db_(std::move(db)) {}
  void events(std::vector<change_event> batch) override {
    for (auto& ev : batch)
      cache_->apply(db_, ev);
  }
  void metadata(object) override {} // nothing publishes to the _properties feed
  void lost(feed_end end) override {
    log::warn("change stream of " + db_ + "." + properties_coll + " ended (" + end.reason +
              "): collection metadata is read from MongoDB until it is re-opened");
    cache_->down(db_, true);
  }
  void stream_up() override { cache_->up(db_); }
  void stream_down() override { cache_->down(db_, false); }

private:
  metadata_cache* cache_; // outlives the feed: close() joins it
  std::string db_;
};

metadata_cache::metadata_cache(std::shared_ptr<mongo_core> core, bool enabled)
    : core_(std::move(core)), closed_(!enabled) {}

metadata_cache::~metadata_cache() {
  close();
}

object metadata_cache::metadata_of(const object& properties) {
  object metadata;
  for (auto& [k, v] : properties)
    if (k != "_id" && k != "_etag") metadata.emplace_back(k, v);
  return metadata;
}

std::optional<object> metadata_cache::properties(pooled_client& c, const std::string& db,
                                                 const std::string& coll) {
  std::unique_lock lk(mu_);
  database& d = databases_[db];
  if (!d.started && !closed_) {
    d.started = true;
    lk.unlock();
    open(db);
    lk.lock();
  }
  if (d.live)
    if (auto it = d.entries.find(coll); it != d.entries.end() && it->second.known)
      return it->second.doc;
  const bool cacheable = d.live;
  const std::uint64_t generation = d.generation;
  lk.unlock();
  auto doc = read_properties(c, db, coll);
  lk.lock();
  // An event or a write of ours since the read began may be newer than what it returned.
  if (cacheable && d.live && d.generation == generation && !d.entries.contains(coll))
    d.entries[coll] = entry{doc, true, std::nullopt};
  return doc;
}

void metadata_cache::open(const std::string& db) {
  std::unique_ptr<change_feed> ended;
  {
    std::lock_guard lk(mu_);
    ended = std::move(databases_[db].ended);
  }
  ended.reset(); // its thread has ended or is ending (after lost())
  bool is_open = false;
  auto feed = open_feed_or_retry(core_, db, properties_coll, is_open);
  auto s = std::make_shared<sink>(this, db);
  std::lock_guard lk(mu_);
  database& d = databases_[db];
  if (closed_) return; // the feed is destroyed (never started)
  if (is_open) {
    d.live = true;
    ++d.generation;
  } else {
    log::warn("cannot open the change stream of " + db + "." + properties_coll +
              ": collection metadata is read from MongoDB until it opens");
  }
  d.feed = std::move(feed);
  d.feed->start(std::move(s)); // only starts the thread: fine under the lock
}

void metadata_cache::up(const std::string& db) {
  std::lock_guard lk(mu_);
  if (closed_) return;
  database& d = databases_[db];
  d.reset(true);
  log::info("change stream of " + db + "." + properties_coll +
            " re-opened: collection metadata is cached again");
}

void metadata_cache::down(const std::string& db, bool lost) {
  std::lock_guard lk(mu_);
  if (closed_) return;
  database& d = databases_[db];
  d.reset(false);
  if (lost) {
    // The next lookup opens a new stream; this one is destroyed then (not on its thread).
    d.ended = std::move(d.feed);
    d.started = false;
  }
}

void metadata_cache::apply(const std::string& db, const change_event& ev) {
  const std::string prefix = properties_coll + ".";
  if (ev.operation == operation_type::drop || ev.operation == operation_type::rename ||
      ev.operation == operation_type::drop_database || ev.operation == operation_type::invalidate) {
    std::lock_guard lk(mu_);
    database& d = databases_[db];
    d.entries.clear(); // read again; the invalidate ends the stream (lost())
    ++d.generation;
    return;
  }
  if (!ev.document_key || !ev.document_key->is_string()) return;
  const std::string& id = ev.document_key->as_string();
  if (!id.starts_with(prefix)) return;
  const std::string coll = id.substr(prefix.size());
  // An update's fullDocument is the document when the server looked it up: null when
  // deleted since, which is then the state to keep.
  std::optional<object> doc;
  if (ev.operation != operation_type::delete_) doc = ev.full_document;
  {
    std::lock_guard lk(mu_);
    database& d = databases_[db];
    if (closed_ || !d.live) return;
    entry& e = d.entries[coll];
    ++d.generation;
    if (e.pending) {
      // Our own write in flight: older events are skipped; its own event was published by
      // the write.
      if (*e.pending != etag_of(doc) || (e.pending->empty() && doc)) return;
      e.pending.reset();
      e.doc = std::move(doc);
      e.known = true;
      return;
    }
    e.doc = doc;
    e.known = true;
  }
  // As if the change were made through this process: the feeds of the collection deliver
  // it to their sessions (a stream whose definition changed closes them).
  core_->publish_metadata(db, coll, doc ? metadata_of(*doc) : object{});
}

void metadata_cache::writing(const std::string& db, const std::string& coll,
                             const std::string& etag) {
  std::lock_guard lk(mu_);
  database& d = databases_[db];
  if (!d.live) return;
  d.entries[coll].pending = etag;
  ++d.generation;
}

void metadata_cache::written(const std::string& db, const std::string& coll,
                             const std::string& etag, std::optional<object> doc) {
  std::lock_guard lk(mu_);
  database& d = databases_[db];
  ++d.generation;
  auto it = d.entries.find(coll);
  if (!d.live || it == d.entries.end()) return;
  if (it->second.pending == etag) {
    it->second.doc = std::move(doc); // the event is still to come: it unpins the entry
    it->second.known = true;
  } else if (it->second.pending) {
    d.entries.erase(it); // another write of ours raced this one: read again
  }
  // else the write's event came first and set the entry (or a later one did)
}

void metadata_cache::forget(const std::string& db, const std::string& coll) {
  std::lock_guard lk(mu_);
  database& d = databases_[db];
  d.entries.erase(coll);
  ++d.generation;
}

void metadata_cache::close() {
  std::vector<std::unique_ptr<change_feed>> feeds;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    for (auto& [name, d] : databases_) {
      d.live = false;
      d.entries.clear();
      if (d.feed) feeds.push_back(std::move(d.feed));
      if (d.ended) feeds.push_back(std::move(d.ended));
    }
  }
  for (auto& feed : feeds)
    feed->cancel(); // joins its thread: no sink call after this
}

} // namespace rheo::mongo
