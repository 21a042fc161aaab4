#include "storage/sqlite/sqlite_store.hpp"

#include "storage/sqlite/embedded_store.hpp"

namespace rheo::sqlite {

embedded_store::embedded_store(const sqlite_store_options& options)
    : core_(std::make_shared<core>(options)) {
  core_->start();
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
    if (auto seq = seq_from_token(*resume_after))
      st->resume = *seq;
    else
      st->lost = "history lost: malformed resume token '" + *resume_after + "'";
  }
  return std::make_unique<sqlite_feed>(std::move(st), core_);
}

void embedded_store::close() {
  core_->close();
}

} // namespace rheo::sqlite

namespace rheo {

std::unique_ptr<store> open_sqlite_store(const sqlite_store_options& options) {
  return std::make_unique<sqlite::embedded_store>(options);
}

} // namespace rheo
