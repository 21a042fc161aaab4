#include <boost/test/unit_test.hpp>

#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/document/live_window.hpp"
#include "storage/document/query.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(live_window_test)

namespace {

object obj(std::string_view json) {
  return parse_json(json).as_object();
}

std::vector<const object*> pointers(const std::vector<object>& docs) {
  std::vector<const object*> out;
  for (auto& d : docs)
    out.push_back(&d);
  return out;
}

std::string json_of(const std::vector<const object*>& docs) {
  array a;
  for (auto* d : docs)
    a.emplace_back(*d);
  std::string out;
  append_json(out, value(std::move(a)));
  return out;
}

std::string json_of(const std::vector<object>& docs) {
  return json_of(pointers(docs));
}

/// Checks that the ops diff_windows gives turn `from` into `to`, and returns how many.
std::size_t check_diff(const std::vector<object>& from, const std::vector<object>& to) {
  auto ops = diff_windows(pointers(from), pointers(to));
  std::vector<object> client = from;
  apply_live_ops(client, ops);
  BOOST_TEST(json_of(client) == json_of(to));
  return ops.size();
}

/// The query's order as find uses it: the sort, then _id descending.
sort_spec complete_order(std::string_view sort) {
  object spec = obj(sort);
  if (!find_field(spec, "_id")) spec.emplace_back("_id", value(std::int32_t{-1}));
  return sort_spec::parse(spec);
}

/// A collection as a map from _id, and a query evaluated on it as GET would.
struct model {
  std::map<std::int64_t, object> docs;

  std::vector<object> query(const matcher& filter, const sort_spec& order,
                            std::size_t limit) const {
    std::vector<object> out;
    for (auto& [id, d] : docs)
      if (filter.matches(d)) out.push_back(d);
    std::sort(out.begin(), out.end(),
              [&](const object& a, const object& b) { return order.compare(a, b) < 0; });
    if (out.size() > limit) out.resize(limit);
    return out;
  }
};

/// One random write to `m` (an insert of a new _id, a replace or a delete of one it holds)
/// as commit `seq`: the change event the feed gives for it.
object random_write(model& m, std::mt19937& rng, std::uint64_t seq, std::int64_t& next_id) {
  auto pick = [&](std::uint32_t n) { return static_cast<std::int32_t>(rng() % n); };
  object ev;
  ev.emplace_back("_id", value(object{{"_data", value(token_from_seq(seq))}}));
  std::int64_t id;
  const int what = m.docs.empty() ? 0 : pick(10);
  if (what < 4) {
    id = next_id++;
  } else {
    auto it = m.docs.begin();
    std::advance(it, pick(static_cast<std::uint32_t>(m.docs.size())));
    id = it->first;
  }
  if (what < 8) {
    object d{{"_id", value(id)}, {"a", value(pick(6))}, {"b", value(pick(4))}};
    ev.emplace_back("operationType", value(what < 4 ? "insert" : "replace"));
    ev.emplace_back("fullDocument", value(d));
    m.docs[id] = std::move(d);
  } else {
    ev.emplace_back("operationType", value("delete"));
    m.docs.erase(id);
  }
  ev.emplace_back("documentKey", value(object{{"_id", value(id)}}));
  return ev;
}

} // namespace

BOOST_AUTO_TEST_CASE(diff_sends_nothing_for_an_unchanged_window_and_each_kind_of_op_otherwise) {
  const auto a = obj(R"({"_id":1,"v":1})"), b = obj(R"({"_id":2,"v":2})"),
             c = obj(R"({"_id":3,"v":3})"), b2 = obj(R"({"_id":2,"v":20})");
  BOOST_TEST(check_diff({a, b, c}, {a, b, c}) == 0u);
  // The ops, as the frame carries them (their documents point into `to`, kept alive here).
  auto frame = [](const std::vector<object>& from, const std::vector<object>& to) {
    array ops;
    for (auto& op : diff_windows(pointers(from), pointers(to)))
      ops.push_back(op.to_value());
    std::string out;
    append_json(out, value(std::move(ops)));
    return out;
  };
  // An insert in the middle: one add; a delete: one remove.
  BOOST_TEST(frame({a, c}, {a, b, c}) == R"([{"op":"add","at":1,"doc":{"_id":2,"v":2}}])");
  BOOST_TEST(frame({a, b, c}, {a, c}) == R"([{"op":"remove","at":1}])");
  // A change in place, and a move to the front with a change.
  BOOST_TEST(frame({a, b, c}, {a, b2, c}) ==
             R"([{"op":"update","at":1,"to":1,"doc":{"_id":2,"v":20}}])");
  BOOST_TEST(frame({a, b, c}, {b2, a, c}) ==
             R"([{"op":"update","at":1,"to":0,"doc":{"_id":2,"v":20}}])");
  // A window that shifts by one (an insert at the top of a full window): one add, one remove.
  BOOST_TEST(frame({a, b}, {c, a}) ==
             R"([{"op":"remove","at":1},{"op":"add","at":0,"doc":{"_id":3,"v":3}}])");
  // 1 and 1.0 are equal values, but the client would show the difference.
  BOOST_TEST(check_diff({obj(R"({"_id":1,"v":1})")}, {obj(R"({"_id":1,"v":1.5})")}) == 1u);
  std::vector<object> as_double{object{{"_id", value(std::int32_t{1})}, {"v", value(1.0)}}};
  BOOST_TEST(check_diff({a}, as_double) == 1u);
}

BOOST_AUTO_TEST_CASE(diff_of_random_windows_turns_one_into_the_other) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    auto random_window = [&] {
      std::vector<object> w;
      std::vector<int> ids(12);
      for (int i = 0; i < 12; ++i)
        ids[i] = i;
      std::shuffle(ids.begin(), ids.end(), rng);
      const int n = static_cast<int>(rng() % 9);
      for (int i = 0; i < n; ++i)
        w.push_back(
            object{{"_id", value(std::int32_t{ids[i]})}, {"v", value(std::int32_t(rng() % 3))}});
      return w;
    };
    BOOST_TEST_CONTEXT("round " << round) {
      check_diff(random_window(), random_window());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_change_the_query_cannot_see_leaves_the_window_as_it_is) {
  live_window w(matcher::compile(obj(R"({"kind":"a"})")), complete_order(R"({"n":1})"), 2, 1);
  w.reset({obj(R"({"_id":1,"kind":"a","n":1})"), obj(R"({"_id":2,"kind":"a","n":2})")});
  const auto other = obj(R"({"_id":9,"kind":"b","n":0})");
  BOOST_TEST(!w.apply(value(std::int32_t{9}), &other));
  BOOST_TEST(!w.apply(value(std::int32_t{9}), nullptr));
  BOOST_TEST(!w.needs_read());
  BOOST_TEST(json_of(w.window()) == R"([{"_id":1,"kind":"a","n":1},{"_id":2,"kind":"a","n":2}])");
}

BOOST_AUTO_TEST_CASE(a_document_leaving_a_full_window_is_replaced_by_a_spare_then_needs_a_read) {
  live_window w(matcher(), complete_order(R"({"n":1})"), 2, 1);
  // Four documents match; the read asked for 3 (window 2 + spare 1).
  w.reset({obj(R"({"_id":1,"n":1})"), obj(R"({"_id":2,"n":2})"), obj(R"({"_id":3,"n":3})")});
  BOOST_TEST(w.apply(value(std::int32_t{1}), nullptr));
  BOOST_TEST(!w.needs_read());
  BOOST_TEST(json_of(w.window()) == R"([{"_id":2,"n":2},{"_id":3,"n":3}])");
  // The spare is gone: the next one is in the store only.
  BOOST_TEST(w.apply(value(std::int32_t{2}), nullptr));
  BOOST_TEST(w.needs_read());
  w.reset({obj(R"({"_id":3,"n":3})"), obj(R"({"_id":4,"n":4})")});
  BOOST_TEST(!w.needs_read());
  BOOST_TEST(json_of(w.window()) == R"([{"_id":3,"n":3},{"_id":4,"n":4}])");
  // An update that moves a document past the last one known, while others may follow: it is
  // dropped rather than placed where an unknown one may belong.
  w.reset({obj(R"({"_id":3,"n":3})"), obj(R"({"_id":4,"n":4})"), obj(R"({"_id":5,"n":5})")});
  const auto moved = obj(R"({"_id":3,"n":99})");
  BOOST_TEST(w.apply(value(std::int32_t{3}), &moved));
  BOOST_TEST(json_of(w.window()) == R"([{"_id":4,"n":4},{"_id":5,"n":5}])");
  BOOST_TEST(!w.needs_read());
}

/// The model-based check: random writes (inserts, updates that move documents across the
/// window's edge and onto ties, deletes, several in one batch) applied to a collection
/// model and to live windows of many shapes; after every batch each window equals the query
/// evaluated on the model, and the diff turns the client's previous copy into it. A window
/// that asks for a read gets the model's answer, as the store would give it.
BOOST_AUTO_TEST_CASE(windows_follow_random_writes_as_the_query_on_a_model_does) {
  struct shape {
    const char* filter;
    const char* sort;
  };
  const std::vector<shape> shapes = {
      {"{}", "{}"},
      {"{}", R"({"a":1})"},
      {"{}", R"({"a":-1,"b":1})"},
      {R"({"a":{"$gte":3}})", R"({"b":1})"},
      {R"({"b":{"$in":["x","y"]}})", R"({"a":1,"b":-1})"},
      {R"({"$or":[{"a":1},{"a":{"$gt":5}}]})", R"({"tags":1})"}, // multikey sort
      {"{}", R"({"tags":-1,"a":1})"},
  };
  std::size_t reads = 0, frames = 0, batches = 0;
  for (std::uint32_t seed = 1; seed <= 60; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](std::uint32_t n) { return static_cast<std::int32_t>(rng() % n); };
    auto random_doc = [&](std::int64_t id) {
      object d{{"_id", value(id)}};
      if (pick(8) != 0) d.emplace_back("a", value(pick(8))); // sometimes missing
      const char* bs[] = {"x", "y", "z"};
      d.emplace_back("b", value(bs[pick(3)]));
      if (pick(3) == 0) {
        array tags;
        for (int i = pick(3); i >= 0; --i)
          tags.emplace_back(pick(6));
        d.emplace_back("tags", value(std::move(tags)));
      }
      return d;
    };
    const shape& sh = shapes[seed % shapes.size()];
    const std::size_t size = 1 + static_cast<std::size_t>(pick(6));
    const std::size_t spare = static_cast<std::size_t>(pick(3));
    const matcher filter = matcher::compile(obj(sh.filter));
    const sort_spec order = complete_order(sh.sort);
    BOOST_TEST_CONTEXT("seed " << seed << ", filter " << sh.filter << ", sort " << sh.sort
                               << ", window " << size << " + " << spare) {
      model m;
      std::int64_t next_id = 0;
      for (int i = 0; i < 10; ++i, ++next_id)
        m.docs[next_id] = random_doc(next_id);
      live_window w(filter, order, size, spare);
      w.reset(m.query(filter, order, w.read_limit()));
      std::vector<object> client = m.query(filter, order, size);
      for (int step = 0; step < 150; ++step) {
        // One commit: a few writes.
        const int writes = pick(4) == 0 ? 1 + pick(5) : 1;
        for (int k = 0; k < writes; ++k) {
          const int what = m.docs.empty() ? 0 : pick(10);
          std::int64_t id;
          if (what < 3) {
            id = next_id++;
            m.docs[id] = random_doc(id);
          } else {
            auto it = m.docs.begin();
            std::advance(it, pick(static_cast<std::uint32_t>(m.docs.size())));
            id = it->first;
            if (what < 8) {
              it->second = random_doc(id);
            } else if (what < 9 && !client.empty()) {
              // A tie: the sort keys of a document in the window.
              object tie =
                  client[static_cast<std::size_t>(pick(static_cast<std::uint32_t>(client.size())))];
              tie[0].second = value(id);
              it->second = tie;
            } else {
              m.docs.erase(it);
            }
          }
          auto it = m.docs.find(id);
          w.apply(value(id), it == m.docs.end() ? nullptr : &it->second);
        }
        ++batches;
        if (w.needs_read()) {
          ++reads;
          w.reset(m.query(filter, order, w.read_limit()));
        }
        const auto expected = m.query(filter, order, size);
        const auto now = w.window();
        BOOST_TEST_CONTEXT("step " << step) {
          BOOST_TEST_REQUIRE(json_of(now) == json_of(expected));
          auto ops = diff_windows(pointers(client), now);
          apply_live_ops(client, ops);
          BOOST_TEST_REQUIRE(json_of(client) == json_of(expected));
          if (!ops.empty()) ++frames;
        }
      }
    }
  }
  BOOST_TEST_MESSAGE(batches << " commits, " << frames << " frames, " << reads << " reads");
  // The spare documents spare most reads.
  BOOST_TEST(reads < batches / 4);
}

/// The live result as its owner drives it: change events (as the feed gives them) in
/// batches, a read whenever it asks for one, served late while writes go on (the events that
/// arrive meanwhile wait, and those the read already reflects are skipped), and a projection
/// that hides the sort fields. After every batch the clients' array, built only from the
/// init and diff ops, equals the projected query on the model.
BOOST_AUTO_TEST_CASE(a_live_result_fed_events_and_late_reads_stays_equal_to_the_query) {
  std::size_t reads = 0, skipped_batches = 0;
  for (std::uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](std::uint32_t n) { return static_cast<std::int32_t>(rng() % n); };
    const matcher filter = matcher::compile(obj(seed % 2 ? R"({"a":{"$gte":2}})" : "{}"));
    const sort_spec order = complete_order(seed % 3 ? R"({"a":-1})" : R"({"b":1,"a":1})");
    const projection keys =
        projection::compile(obj(seed % 4 == 0 ? "{}" : R"({"b":1})")); // hides "a"
    const std::size_t size = 1 + static_cast<std::size_t>(pick(5));
    live_result r(filter, order, keys, size, static_cast<std::size_t>(pick(3)));
    model m;
    std::uint64_t seq = 0;
    std::int64_t next_id = 0;
    std::vector<object> log; // every event, in commit order
    // One write to the model and its event.
    auto write = [&] { log.push_back(random_write(m, rng, ++seq, next_id)); };
    auto expected = [&] {
      std::vector<object> out;
      for (auto& d : m.query(filter, order, size))
        out.push_back(keys.empty() ? d : keys.apply(d));
      return out;
    };
    for (int i = 0; i < 6; ++i)
      write();
    std::vector<object> client;
    BOOST_TEST_CONTEXT("seed " << seed) {
      BOOST_TEST_REQUIRE(r.needs_read());
      apply_live_ops(client, r.read(m.query(filter, order, r.read_limit()), token_from_seq(seq)));
      BOOST_TEST_REQUIRE(json_of(client) == json_of(expected()));
      // A client that joins now gets the same array from the init frame.
      BOOST_TEST(r.init_frame() ==
                 R"({"init":)" + json_of(client) + R"(,"token":")" + token_from_seq(seq) + R"("})");
      std::size_t delivered = log.size();
      for (int step = 0; step < 120; ++step) {
        const int writes = 1 + (pick(4) == 0 ? pick(6) : 0);
        for (int k = 0; k < writes; ++k)
          write();
        // The feed's batch: everything not delivered yet.
        std::vector<object> pending(log.begin() + static_cast<std::ptrdiff_t>(delivered),
                                    log.end());
        delivered = log.size();
        while (!pending.empty()) {
          std::size_t consumed = 0;
          auto ops = r.apply(pending, &consumed);
          apply_live_ops(client, ops);
          if (!ops.empty()) {
            // The frame carries the ops and the position of the last event applied.
            const std::string frame = r.diff_frame(ops);
            BOOST_TEST(frame.find(R"("token":")" + r.position() + "\"") != std::string::npos);
          }
          pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(consumed));
          if (!r.needs_read()) {
            BOOST_TEST_REQUIRE(pending.empty());
            break;
          }
          // The read runs late: more writes commit first; their events queue behind.
          ++reads;
          for (int k = pick(3); k > 0; --k)
            write();
          pending.insert(pending.end(), log.begin() + static_cast<std::ptrdiff_t>(delivered),
                         log.end());
          delivered = log.size();
          apply_live_ops(client,
                         r.read(m.query(filter, order, r.read_limit()), token_from_seq(seq)));
          // Everything pending is reflected by the read: applying it changes nothing.
          const auto again = r.apply(pending, &consumed);
          BOOST_TEST(again.empty());
          BOOST_TEST(consumed == pending.size());
          ++skipped_batches;
          pending.clear();
        }
        BOOST_TEST_CONTEXT("step " << step) {
          BOOST_TEST_REQUIRE(json_of(client) == json_of(expected()));
          BOOST_TEST_REQUIRE(r.position() == token_from_seq(seq));
        }
      }
    }
  }
  BOOST_TEST_MESSAGE(reads << " reads, " << skipped_batches << " batches skipped after them");
  BOOST_TEST(reads > 0u);
}

/// Applies a frame's JSON ({"init":[...]} or {"diff":[ops]}) to a client's array, as a client
/// does, and returns the frame's token.
std::string apply_frame(std::vector<object>& client, const std::string& json) {
  const value frame = parse_json(json);
  const object& f = frame.as_object();
  if (const value* init = find_field(f, "init")) {
    client.clear();
    for (auto& d : init->as_array())
      client.push_back(d.as_object());
  } else {
    for (auto& opv : find_field(f, "diff")->as_array()) {
      const object& op = opv.as_object();
      const std::string& kind = find_field(op, "op")->as_string();
      const auto at = static_cast<std::ptrdiff_t>(find_field(op, "at")->as_int64());
      BOOST_REQUIRE_LE(static_cast<std::size_t>(at), client.size() - (kind == "add" ? 0 : 1));
      if (kind != "add") client.erase(client.begin() + at);
      if (kind == "remove") continue;
      const auto to =
          kind == "add" ? at : static_cast<std::ptrdiff_t>(find_field(op, "to")->as_int64());
      BOOST_REQUIRE_LE(static_cast<std::size_t>(to), client.size());
      client.insert(client.begin() + to, find_field(op, "doc")->as_object());
    }
  }
  return find_field(f, "token")->as_string();
}

/// The evaluation as the live_query actor drives it, with the store and the feed racing it:
/// the feed delivers commits in batches some time after they commit; each read the
/// evaluation asks for is answered some time later, from a snapshot taken at any moment
/// between the request and the answer (so it may reflect events already held, events not
/// delivered yet, or neither). Clients join whenever the result is ready. After every frame,
/// each client's array equals the query on the model at the frame's token.
BOOST_AUTO_TEST_CASE(an_evaluation_racing_its_reads_and_its_feed_keeps_every_client_equal) {
  std::size_t reads = 0, held_during_reads = 0, frames = 0;
  for (std::uint32_t seed = 1; seed <= 60; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](std::uint32_t n) { return static_cast<std::int32_t>(rng() % n); };
    const matcher filter = matcher::compile(obj(seed % 2 ? R"({"a":{"$gte":2}})" : "{}"));
    const sort_spec order = complete_order(seed % 3 ? R"({"a":-1})" : R"({"b":1,"a":1})");
    // Projections that hide the sort key, and the _id too.
    const projection keys = projection::compile(obj(seed % 4 == 0   ? "{}"
                                                    : seed % 4 == 1 ? R"({"_id":0,"b":1})"
                                                                    : R"({"b":1})"));
    const std::size_t size = 1 + static_cast<std::size_t>(pick(6));
    live_evaluation eval(live_result(filter, order, keys, size, static_cast<std::size_t>(pick(3))));
    // states[s]: the collection after commit s; log[s - 1]: commit s's event.
    std::vector<model> states(1);
    std::vector<object> log;
    std::int64_t next_id = 0;
    auto commit = [&] {
      model m = states.back();
      log.push_back(random_write(m, rng, states.size(), next_id));
      states.push_back(std::move(m));
    };
    auto expected_at = [&](const std::string& token) {
      const std::uint64_t seq = std::stoull(token, nullptr, 16);
      std::vector<object> out;
      for (auto& d : states.at(seq).query(filter, order, size))
        out.push_back(keys.empty() ? d : keys.apply(d));
      return out;
    };
    struct client {
      std::vector<object> docs;
    };
    std::vector<client> clients;
    std::optional<std::uint64_t> read_asked; // the commit count when the read was asked for
    std::size_t delivered = 0;               // events the feed has delivered
    auto follow = [&](live_evaluation::step step) {
      for (auto& f : step.diffs) {
        ++frames;
        for (auto& c : clients) {
          BOOST_TEST_REQUIRE(apply_frame(c.docs, f.json) == f.token);
          BOOST_TEST_REQUIRE(json_of(c.docs) == json_of(expected_at(f.token)));
        }
      }
      if (step.start_read) {
        BOOST_TEST_REQUIRE(!read_asked);
        read_asked = states.size() - 1;
        ++reads;
      }
      if (eval.ready() && pick(8) == 0) {
        clients.emplace_back();
        BOOST_TEST_REQUIRE(apply_frame(clients.back().docs, eval.init_frame()) == eval.position());
        BOOST_TEST_REQUIRE(json_of(clients.back().docs) == json_of(expected_at(eval.position())));
      }
    };
    BOOST_TEST_CONTEXT("seed " << seed) {
      for (int i = 0; i < 4; ++i)
        commit();
      // The feed starts after the commits so far.
      delivered = log.size();
      follow(eval.attached());
      for (int step = 0; step < 300; ++step) {
        switch (pick(4)) {
        case 0:
        case 1:
          commit();
          break;
        case 2: { // the feed delivers some of what has committed
          if (delivered == log.size()) break;
          const std::size_t n = 1 + static_cast<std::size_t>(
                                        pick(static_cast<std::uint32_t>(log.size() - delivered)));
          auto batch = std::make_shared<const std::vector<object>>(
              log.begin() + static_cast<std::ptrdiff_t>(delivered),
              log.begin() + static_cast<std::ptrdiff_t>(delivered + n));
          delivered += n;
          if (read_asked) ++held_during_reads;
          follow(eval.events(std::move(batch)));
          break;
        }
        default: { // the read under way answers, from a snapshot taken since it was asked for
          if (!read_asked) break;
          const std::uint64_t now = states.size() - 1;
          const std::uint64_t at =
              *read_asked +
              static_cast<std::uint64_t>(pick(static_cast<std::uint32_t>(now - *read_asked + 1)));
          read_asked.reset();
          follow(eval.read(states[at].query(filter, order, eval.read_limit()), token_from_seq(at)));
          break;
        }
        }
      }
      // Everything arrives: every client ends equal to the query on the last commit.
      while (read_asked || delivered < log.size()) {
        if (delivered < log.size()) {
          auto batch = std::make_shared<const std::vector<object>>(
              log.begin() + static_cast<std::ptrdiff_t>(delivered), log.end());
          delivered = log.size();
          follow(eval.events(std::move(batch)));
        }
        if (read_asked) {
          const std::uint64_t at = states.size() - 1;
          read_asked.reset();
          follow(eval.read(states[at].query(filter, order, eval.read_limit()), token_from_seq(at)));
        }
      }
      BOOST_TEST_REQUIRE(eval.ready());
      const auto last = expected_at(token_from_seq(states.size() - 1));
      for (auto& c : clients)
        BOOST_TEST(json_of(c.docs) == json_of(last));
    }
  }
  BOOST_TEST_MESSAGE(reads << " reads, " << held_during_reads << " batches held during one, "
                           << frames << " frames");
  BOOST_TEST(held_during_reads > 100u);
}

BOOST_AUTO_TEST_CASE(a_reads_position_reflects_the_events_up_to_it_on_either_backend) {
  // The embedded store: event tokens, in order.
  BOOST_TEST(reflects(token_from_seq(7), token_from_seq(7)));
  BOOST_TEST(reflects(token_from_seq(7), token_from_seq(6)));
  BOOST_TEST(!reflects(token_from_seq(7), token_from_seq(8)));
  // MongoDB: a snapshot token (a read's operation time) against events' cluster times.
  const std::string at = snapshot_token(1700000000, 7);
  auto mongo_event = [](std::uint32_t t, std::uint32_t i) {
    char b[40];
    std::snprintf(b, sizeof b, "82%08X%08X2B0229296E04", t, i);
    return std::string(b);
  };
  BOOST_TEST(reflects(at, mongo_event(1700000000, 7)));
  BOOST_TEST(reflects(at, mongo_event(1700000000, 6)));
  BOOST_TEST(reflects(at, mongo_event(1699999999, 0xFFFFFFFF)));
  BOOST_TEST(!reflects(at, mongo_event(1700000000, 8)));
  BOOST_TEST(!reflects(at, mongo_event(1700000001, 0)));
  // Nothing known: nothing skipped.
  BOOST_TEST(!reflects("", token_from_seq(1)));
  BOOST_TEST(!reflects(at, "0123"));
  BOOST_TEST(!reflects(at, "83" + mongo_event(1, 1).substr(2)));
}

BOOST_AUTO_TEST_CASE(an_event_about_no_single_document_changes_nothing) {
  BOOST_TEST(!live_change_of(obj(R"({"_id":{"_data":"01"},"operationType":"drop"})")));
  auto del = obj(R"({"operationType":"delete","documentKey":{"_id":5},"fullDocument":{"_id":5}})");
  auto c = live_change_of(del);
  BOOST_REQUIRE(c);
  BOOST_TEST(c->doc == nullptr); // a delete leaves nothing, whatever else the event holds
  auto upd = obj(R"({"operationType":"update","documentKey":{"_id":5},"fullDocument":null})");
  c = live_change_of(upd);
  BOOST_REQUIRE(c);
  BOOST_TEST(c->doc == nullptr); // looked up after a delete: gone
}

BOOST_AUTO_TEST_SUITE_END()
