#include "storage/mongo/feed.hpp"

#include "config/log.hpp"
#include "storage/document/json.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>

namespace rheo::mongo {

namespace {

// ---- change events ----

/// A MongoDB change document as rheo's change_event; nullopt for an operationType rheo does
/// not know (a collection's change stream without showExpandedEvents sends none).
std::optional<change_event> event_from_change(const object& doc, const std::string& db,
                                              const std::string& coll) {
  change_event ev;
  ev.db = db;
  ev.coll = coll;
  ev.wall_time = date_time::now();
  bool wall_time_seen = false;
  for (auto& [k, v] : doc) {
    if (k == "_id") {
      const value* data = v.is_object() ? find_field(v.as_object(), "_data") : nullptr;
      ev.token = data && data->is_string() ? data->as_string() : to_json(v);
    } else if (k == "operationType" && v.is_string()) {
      auto op = operation_from_string(v.as_string());
      if (!op) {
        log::debug("change stream of " + db + "." + coll + ": skipped an event of operation " +
                   v.as_string());
        return std::nullopt;
      }
      ev.operation = *op;
    } else if (k == "fullDocument" && v.is_object()) {
      ev.full_document = v.as_object();
    } else if (k == "documentKey" && v.is_object()) {
      if (const value* id = find_field(v.as_object(), "_id")) ev.document_key = *id;
    } else if (k == "updateDescription" && v.is_object()) {
      update_description desc;
      if (const value* f = find_field(v.as_object(), "updatedFields"); f && f->is_object())
        desc.updated_fields = f->as_object();
      if (const value* r = find_field(v.as_object(), "removedFields"); r && r->is_array())
        for (auto& path : r->as_array())
          if (path.is_string()) desc.removed_fields.push_back(path.as_string());
      ev.update = std::move(desc);
    } else if (k == "wallTime" && v.is<date_time>()) {
      ev.wall_time = v.get<date_time>();
      wall_time_seen = true;
    } else if (k == "clusterTime" && v.is<timestamp_value>() && !wall_time_seen) {
      ev.wall_time = date_time{static_cast<std::int64_t>(v.get<timestamp_value>().t) * 1000};
    }
  }
  return ev;
}

/// The `_data` of a resume token document, or "" when it has none.
std::string token_data(const bson_t* token) {
  if (!token) return {};
  object doc = from_bson(token);
  const value* data = find_field(doc, "_data");
  return data && data->is_string() ? data->as_string() : std::string();
}

// ---- feeds ----

/// One MongoDB change stream, read by the feed's own thread (started by start(), joined by
/// cancel()), which calls the sink. Thread-safety: as change_feed (store.hpp); the stream,
/// its pooled client and the positions belong to the caller of open_now() until start(),
/// then to the feed thread until it is joined.
class mongo_feed final : public change_feed {
public:
  /// `resume_after`: an event token, a snapshot token or nothing (from now).
  mongo_feed(std::shared_ptr<mongo_core> core, std::string db, std::string coll,
             const std::optional<std::string>& resume_after)
      : core_(std::move(core)), db_(std::move(db)), coll_(std::move(coll)),
        backoff_(core_->options.backoff_min) {
    inbox_.key = db_ + '\0' + coll_;
    core_->add_feed(&inbox_);
    if (!resume_after) return;
    start_position_ = *resume_after;
    if (is_event_data(*resume_after)) {
      token_ = to_bson(object{{"_data", value(*resume_after)}});
      reported_ = *resume_after; // the consumer has everything up to it
    } else if (auto t = snapshot_time(*resume_after)) {
      // The read reflected every write at or before t: the stream starts just after it.
      start_at_ =
          t->i == UINT32_MAX ? timestamp_value{t->t + 1, 0} : timestamp_value{t->t, t->i + 1};
    } else {
      lost_ = feed_end{feed_end_cause::history_lost,
                       "history lost: malformed resume token '" + *resume_after + "'"};
    }
  }

  ~mongo_feed() override {
    cancel();
    close_stream();
    core_->remove_feed(&inbox_);
  }

  /// Opens the stream now (the caller's position is fixed when this returns). A resume
  /// token the server no longer knows leaves the feed lost (lost() once started); other
  /// failures throw std::runtime_error.
  void open_now() {
    if (lost_) return;
    bson_error_t error;
    if (open(error)) {
      opened();
      return;
    }
    if (is_history_lost(error)) {
      lost_ = feed_end{feed_end_cause::history_lost, std::string("history lost: ") + error.message};
      return;
    }
    throw std::runtime_error(std::string("cannot open the change stream: ") + error.message);
  }

  /// As open_now(), but a failure leaves the stream to the feed thread, which re-opens it
  /// with backoff once started. True when the stream is open on return.
  bool open_or_retry() {
    if (lost_) return false;
    bson_error_t error;
    if (open(error)) {
      opened();
      return true;
    }
    failed(error, "cannot open the change stream");
    return false;
  }

  std::string position() const override { return start_position_; }

  void start(std::shared_ptr<feed_sink> sink) override {
    std::lock_guard lk(inbox_.mu);
    if (inbox_.cancelled || thread_.joinable()) return;
    sink_ = std::move(sink);
    pace_bytes_ = sink_->catch_up_bytes();
    health_ = dynamic_cast<health_sink*>(sink_.get());
    thread_ = std::thread([this] { run(); });
  }

  /// Returns once the feed thread has ended: at once when it waits (backoff, no stream),
  /// after the getMore in flight otherwise (at most max_await when the server answers; while
  /// no server is reachable, up to the driver's server selection or socket timeout).
  void cancel() override {
    std::thread feed_thread;
    {
      std::lock_guard lk(inbox_.mu);
      inbox_.cancelled = true;
      feed_thread = std::move(thread_);
    }
    inbox_.cv.notify_all();
    if (!feed_thread.joinable()) return;
    if (feed_thread.get_id() == std::this_thread::get_id())
      feed_thread.detach(); // misuse (cancel from a sink call): do not self-join
    else
      feed_thread.join();
  }

  /// A paced sink has room for more (feed_sink::catch_up_bytes).
  void more() override {
    {
      std::lock_guard lk(inbox_.mu);
      credit_ = true;
    }
    inbox_.cv.notify_all();
  }

private:
  /// Paced: once the events sent since the last credit reach the sink's bytes, waits for
  /// more() (or cancel()). False when cancelled.
  bool wait_for_credit() {
    if (!pace_bytes_ || since_credit_ < pace_bytes_) return true;
    std::unique_lock lk(inbox_.mu);
    inbox_.cv.wait(lk, [&] { return inbox_.cancelled || credit_; });
    if (inbox_.cancelled) return false;
    credit_ = false;
    since_credit_ = 0;
    return true;
  }

  bool cancelled() {
    std::lock_guard lk(inbox_.mu);
    return inbox_.cancelled;
  }

  /// The feed thread: reads the stream and calls the sink until cancelled or lost.
  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      log::error("change feed of " + db_ + "." + coll_ + " failed: " + e.what());
      if (!cancelled()) sink_->lost({feed_end_cause::failed, e.what()});
    }
    close_stream(); // the stream's client is returned by the thread that used it
    health_ = nullptr;
    sink_.reset();
  }

  void loop() {
    for (;;) {
      std::deque<object> metadata;
      {
        std::unique_lock lk(inbox_.mu);
        // Back off before re-opening; cancel() and metadata changes cut the wait short.
        if (!stream_ && !lost_)
          inbox_.cv.wait_until(lk, retry_at_,
                               [&] { return inbox_.cancelled || !inbox_.metadata.empty(); });
        if (inbox_.cancelled) return;
        metadata.swap(inbox_.metadata);
      }
      for (auto& m : metadata) {
        if (cancelled()) return;
        sink_->metadata(std::move(m));
      }
      if (lost_) {
        close_stream(); // after delivering the invalidate: may talk to the server
        if (!cancelled()) sink_->lost(*lost_);
        return;
      }
      if (!stream_) {
        if (std::chrono::steady_clock::now() < retry_at_) continue; // woken by metadata
        bson_error_t error;
        if (!open(error)) {
          failed(error, "cannot re-open the change stream");
          continue;
        }
        log::info("change stream of " + db_ + "." + coll_ + " re-opened" +
                  (token_      ? " after the last known position"
                   : start_at_ ? " at the snapshot's operation time"
                               : ""));
        if (health_) health_->stream_up();
      }
      // The opening reply or the last batch may have moved the position past every event.
      if (!report_position()) return;
      if (!wait_for_credit()) return;
      const bson_t* doc = nullptr;
      if (mongoc_change_stream_next(stream_, &doc)) {
        std::optional<change_event> known = event_from_change(from_bson(doc), db_, coll_);
        remember_position();
        backoff_ = core_->options.backoff_min;
        if (!known) continue;
        // Only delivered events count: the sink calls more() after events(), so a part of
        // skipped events alone would wait for a more() that never comes.
        if (pace_bytes_) since_credit_ += doc->len;
        change_event& ev = *known;
        if (ev.operation == operation_type::invalidate)
          lost_ = feed_end{feed_end_cause::invalidated,
                           "invalidated: the collection was dropped or renamed"};
        if (cancelled()) return;
        if (is_event_data(ev.token)) reported_ = ev.token;
        std::vector<change_event> batch;
        batch.push_back(std::move(ev));
        sink_->events(std::move(batch));
        continue;
      }
      bson_error_t error;
      const bson_t* reply = nullptr;
      if (mongoc_change_stream_error_document(stream_, &error, &reply)) {
        failed(error, "change stream failed");
        continue;
      }
      // An empty batch: the server's position advanced (postBatchResumeToken) or not; the
      // next turn reports it.
      remember_position();
      backoff_ = core_->options.backoff_min;
    }
  }

  /// Tells the sink the driver's resume token when it is past the last event or report:
  /// every change up to it has been delivered. False when cancelled.
  bool report_position() {
    std::string data = token_data(token_.get());
    if (data.empty() || !is_event_data(data) ||
        (!reported_.empty() && !token_before(reported_, data)))
      return true;
    if (cancelled()) return false;
    reported_ = data;
    sink_->position(std::move(data));
    return true;
  }

private:
  /// After the opening on the caller's thread: the feed's start position.
  void opened() {
    if (start_position_.empty()) start_position_ = token_data(token_.get());
    // position() tells the consumer where the feed starts: no need to report it again.
    if (reported_.empty() && is_event_data(start_position_)) reported_ = start_position_;
  }

  bool open(bson_error_t& error) {
    close_stream();
    client_.emplace(*core_);
    object opts{
        {"fullDocument", value("updateLookup")},
        {"maxAwaitTimeMS", value(static_cast<std::int64_t>(core_->options.max_await.count()))}};
    // The last known position; before any, the snapshot's start (as the driver resumes).
    if (token_)
      opts.emplace_back("resumeAfter", value(from_bson(token_.get())));
    else if (start_at_)
      opts.emplace_back("startAtOperationTime", value(*start_at_));
    auto coll = collection_of(*client_, db_, coll_);
    bson_t pipeline;
    bson_init(&pipeline);
    stream_ = mongoc_collection_watch(coll.get(), &pipeline, to_bson(opts).get());
    bson_destroy(&pipeline);
    const bson_t* reply = nullptr;
    if (mongoc_change_stream_error_document(stream_, &error, &reply)) {
      close_stream();
      return false;
    }
    remember_position();
    return true;
  }

  void close_stream() {
    if (stream_) mongoc_change_stream_destroy(stream_);
    stream_ = nullptr;
    client_.reset();
  }

  /// Keeps the driver's resume token: the last delivered event's _id, or the server's
  /// postBatchResumeToken once a batch is exhausted (never ahead of a delivered event).
  void remember_position() {
    if (const bson_t* t = mongoc_change_stream_get_resume_token(stream_))
      token_.reset(bson_copy(t));
  }

  /// After a failed stream: lost for good, or re-opened later with backoff.
  void failed(const bson_error_t& error, std::string_view what) {
    close_stream();
    if (is_history_lost(error)) {
      lost_ = feed_end{feed_end_cause::history_lost, std::string("history lost: ") + error.message};
      return;
    }
    log::warn("change stream of " + db_ + "." + coll_ + ": " + std::string(what) + ": " +
              error.message + "; retrying in " + std::to_string(backoff_.count()) + " ms");
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, core_->options.backoff_max);
    if (health_) health_->stream_down();
  }

  std::shared_ptr<mongo_core> core_;
  std::string db_;
  std::string coll_;
  // The token given to watch(), or the driver's after opening; set by the constructor and
  // open_now(), then constant.
  std::string start_position_;
  feed_inbox inbox_;
  std::thread thread_;  // under inbox_.mu; joined by cancel()
  bool credit_ = false; // under inbox_.mu: more() since the feed thread last waited
  // Used by the feed thread only once started (see the class comment).
  std::size_t pace_bytes_ = 0;   // the sink's catch_up_bytes(), set by start()
  std::size_t since_credit_ = 0; // bytes of the events sent since the last credit
  std::shared_ptr<feed_sink> sink_;
  health_sink* health_ = nullptr; // sink_, when it wants to know (set by start())
  std::optional<pooled_client> client_;
  mongoc_change_stream_t* stream_ = nullptr;
  bson_ptr token_; // the driver's resume token: the position to re-open from
  std::optional<timestamp_value> start_at_; // a snapshot's start, while token_ is empty
  std::string reported_; // the last event token or position the sink got (or was given)
  std::optional<feed_end> lost_;
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point retry_at_{};
};

} // namespace

bool is_event_data(std::string_view token) {
  return is_event_token(token) && token.size() % 2 == 0; // hex of whole bytes
}

std::unique_ptr<change_feed> open_feed(std::shared_ptr<mongo_core> core, const std::string& db,
                                       const std::string& coll,
                                       const std::optional<std::string>& resume_after) {
  auto feed = std::make_unique<mongo_feed>(std::move(core), db, coll, resume_after);
  feed->open_now();
  return feed;
}

std::unique_ptr<change_feed> open_feed_or_retry(std::shared_ptr<mongo_core> core,
                                                const std::string& db, const std::string& coll,
                                                bool& open) {
  auto feed = std::make_unique<mongo_feed>(std::move(core), db, coll, std::nullopt);
  open = feed->open_or_retry();
  return feed;
}

} // namespace rheo::mongo
