#include "actors/replay.hpp"

#include "actors/actors.hpp"
#include "storage/store.hpp"

#include <boost/asio/post.hpp>

namespace rheo {

replay_pool::replay_pool(store& storage, unsigned threads) : storage_(storage), threads_(threads) {}

replay_pool::~replay_pool() {
  threads_.join();
}

void replay_pool::open(std::string db, std::string coll, std::string token,
                       std::shared_ptr<feed_sink> sink,
                       std::function<void(std::shared_ptr<change_feed>)> opened) {
  boost::asio::post(threads_, [this, db = std::move(db), coll = std::move(coll),
                               token = std::move(token), sink = std::move(sink),
                               opened = std::move(opened)] {
    std::shared_ptr<change_feed> feed;
    try {
      feed = storage_.watch(db, coll, token);
    } catch (const std::exception& e) {
      sink->lost({feed_end_cause::failed,
                  std::string("cannot replay from the resume token: ") + e.what()});
      return;
    }
    feed->start(sink);
    opened(std::move(feed));
  });
}

void replay_pool::cancel(std::shared_ptr<change_feed> feed) {
  boost::asio::post(threads_, [feed = std::move(feed)] { feed->cancel(); });
}

void replay_pool::more(std::shared_ptr<change_feed> feed) {
  boost::asio::post(threads_, [feed = std::move(feed)] { feed->more(); });
}

void replay_pool::read(std::string db, std::string coll, find_query q,
                       std::function<void(store_read)> done) {
  boost::asio::post(threads_, [this, db = std::move(db), coll = std::move(coll), q = std::move(q),
                               done = std::move(done)]() mutable {
    store_read out;
    q.position = &out.position;
    q.explain = nullptr;
    q.page_json = nullptr;
    try {
      out.docs = storage_.find(db, coll, q);
    } catch (const std::exception& e) {
      out.docs.clear();
      out.error = e.what();
    }
    done(std::move(out));
  });
}

} // namespace rheo
