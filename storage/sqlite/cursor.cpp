#include "storage/sqlite/cursor.hpp"

#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/core.hpp"
#include "storage/sqlite/schema.hpp"

namespace rheo::sqlite {

plan_cursor::plan_cursor(connection& c, std::string db, std::string coll, const plan& p)
    : c_(c), db_(std::move(db)), coll_(std::move(coll)), plan_(p) {}

plan_cursor::~plan_cursor() = default;

bool plan_cursor::open_next_range() {
  current_.reset();
  if (next_range_ >= plan_.ranges.size()) return false;
  // Backward plans walk the ranges from the last.
  const std::size_t i = plan_.backward ? plan_.ranges.size() - 1 - next_range_ : next_range_;
  ++next_range_;
  auto& range = plan_.ranges[i];
  if (plan_.index->is_id()) {
    current_ =
        std::make_unique<query>(c_, plan_.backward ? sql_docs_range_desc : sql_docs_range_asc);
    current_->text(1, db_).text(2, coll_).blob(3, range.lo).blob(4, range.hi);
  } else {
    current_ = std::make_unique<query>(c_, plan_.backward ? sql_entries_desc : sql_entries_asc);
    current_->int64(1, plan_.index->id).blob(2, range.lo).blob(3, range.hi);
  }
  return true;
}

std::optional<std::pair<std::string, object>> plan_cursor::next() {
  for (;;) {
    if (!current_ && !open_next_range()) return std::nullopt;
    if (!current_->step()) {
      current_.reset();
      continue;
    }
    ++examined_;
    std::string key(current_->column_blob(0));
    if (plan_.index->is_id())
      return std::pair{std::move(key), decode_bson(current_->column_blob(1))};
    if (plan_.index->multikey && !seen_.insert(key).second) continue;
    if (auto doc = read_document(c_, db_, coll_, key))
      return std::pair{std::move(key), std::move(*doc)};
  }
}

std::optional<std::string_view> plan_cursor::next_encoded() {
  for (;;) {
    if (!current_ && !open_next_range()) return std::nullopt;
    if (!current_->step()) {
      current_.reset();
      continue;
    }
    ++examined_;
    if (plan_.index->is_id()) return current_->column_blob(1);
    std::string key(current_->column_blob(0));
    if (plan_.index->multikey && !seen_.insert(key).second) continue;
    query doc(c_, sql_doc_get);
    doc.text(1, db_).text(2, coll_).blob(3, key);
    if (!doc.step()) continue;
    encoded_.assign(doc.column_blob(0));
    return std::string_view(encoded_);
  }
}

std::uint64_t plan_cursor::skip(std::uint64_t n) {
  std::uint64_t passed = 0;
  while (passed < n) {
    if (!current_ && !open_next_range()) break;
    if (!current_->step()) {
      current_.reset();
      continue;
    }
    ++examined_;
    if (plan_.index->multikey && !seen_.emplace(current_->column_blob(0)).second) continue;
    ++passed;
  }
  return passed;
}

} // namespace rheo::sqlite
