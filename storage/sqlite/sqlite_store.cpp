#include "storage/sqlite/sqlite_store.hpp"

#include "storage/sqlite/embedded_store.hpp"

namespace rheo::sqlite {

embedded_store::embedded_store(const sqlite_store_options& options)
    : core_(std::make_shared<core>(options)), data_dir_(options.data_dir) {
  core_->start();
  ttl_thread_ = std::thread([this, interval = options.ttl_interval] { ttl_loop(interval); });
}

embedded_store::~embedded_store() {
  close();
}

std::unique_ptr<change_feed> embedded_store::watch(const std::string& db, const std::string& coll,
                                                   const std::optional<std::string>& resume_after) {
  // Register first, then (in start()) read the log: no event falls in between.
  auto st = core_->register_feed(db, coll);
  if (resume_after) {
    std::lock_guard lk(st->mu);
    if (auto seq = seq_from_token(*resume_after)) {
      st->resume = *seq;
      st->start_seq = *seq;
    } else
      st->lost = feed_end{feed_end_cause::history_lost,
                          "history lost: malformed resume token '" + *resume_after + "'"};
  }
  return std::make_unique<sqlite_feed>(std::move(st), core_);
}

void embedded_store::check_resume_token(const std::string& token) const {
  if (!seq_from_token(token))
    throw api_error(400, "malformed resume token '" + token + "': expected 16 hex digits");
}

void embedded_store::close() {
  {
    std::lock_guard lk(ttl_mu_);
    ttl_stop_ = true;
  }
  ttl_cv_.notify_all();
  if (ttl_thread_.joinable() && ttl_thread_.get_id() != std::this_thread::get_id())
    ttl_thread_.join();
  core_->close();
}

bool embedded_store::ttl_stopping() {
  std::lock_guard lk(ttl_mu_);
  return ttl_stop_;
}

void embedded_store::ttl_loop(std::chrono::milliseconds interval) {
  std::unique_lock lk(ttl_mu_);
  for (;;) {
    if (ttl_cv_.wait_for(lk, interval, [this] { return ttl_stop_; })) return;
    lk.unlock();
    try {
      // A full batch may leave more: go on until a batch comes back short.
      while (expire_documents() > 0 && !ttl_stopping())
        ;
    } catch (const std::exception&) {
      // The store closed meanwhile, or an I/O error: try again next time.
    }
    lk.lock();
  }
}

} // namespace rheo::sqlite

namespace rheo {

std::unique_ptr<store> open_sqlite_store(const sqlite_store_options& options) {
  return std::make_unique<sqlite::embedded_store>(options);
}

} // namespace rheo
