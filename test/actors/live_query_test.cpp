// Live queries (GET /<coll>/_live, section 10 of the contract) against a real rheo process:
// the invariant under a seeded random writer (model-based), the frames and their shapes over
// WebSocket and SSE, sharing, resume, limits, errors before the upgrade, close codes, metrics.
//
// The model: a raw change stream of the same collection gives every commit with its token;
// the test replays them and evaluates each live query on the replayed collection at each
// frame's token (filter, readFilter, sort with _id breaking ties, window, projection), and
// compares the client's array, element for element, after every frame.
#include <boost/test/unit_test.hpp>

#include "net/http.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/index_key.hpp"
#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "test/test_support.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(live_query_test)

namespace {

/// Every live query of the board collection hides documents with hidden: true (a readFilter
/// the model applies too); its change stream and plain requests see everything.
const std::string board_acl =
    R"acl([{"roles":["$unauthenticated"],"predicate":"path-prefix('/board/_live')",)acl"
    R"acl("readFilter":{"hidden":{"$ne":true}}},)acl"
    R"acl({"roles":["$unauthenticated"],"predicate":"path-prefix('/')"}])acl";

object parse_object(const std::string& text) {
  value v = parse_json(text, "test");
  BOOST_REQUIRE(v.is_object());
  return std::move(v.as_object());
}

/// A live query's parameters, as the URL sends them and as the model evaluates them.
struct query_shape {
  std::string filter; // JSON, or empty
  std::string sort;   // JSON, or empty (GET's order: _id descending)
  std::string keys;   // JSON, or empty
  std::size_t size = 100;

  std::string target(const std::string& coll) const {
    std::string t = "/" + coll + "/_live?pagesize=" + std::to_string(size);
    if (!filter.empty()) t += "&filter=" + percent_encode(filter);
    if (!sort.empty()) t += "&sort=" + percent_encode(sort);
    if (!keys.empty()) t += "&keys=" + percent_encode(keys);
    return t;
  }
};

/// The query evaluated on `docs` (the model), with the readFilter `read_filter`.
std::vector<std::string> evaluate(const query_shape& q, const object& read_filter,
                                  const std::map<std::string, object>& docs) {
  array all;
  if (!q.filter.empty()) all.emplace_back(parse_object(q.filter));
  if (!read_filter.empty()) all.emplace_back(read_filter);
  const matcher filter = matcher::compile(object{{"$and", value(all)}});
  object sort_doc = q.sort.empty() ? object{{"_id", value(-1)}} : parse_object(q.sort);
  if (!find_field(sort_doc, "_id")) {
    const value& last = sort_doc.back().second;
    set_field(sort_doc, "_id", value(last.is_number() && last.as_double() < 0 ? -1 : 1));
  }
  const sort_spec order = sort_spec::parse(sort_doc);
  const projection keys = projection::compile(q.keys.empty() ? object{} : parse_object(q.keys));
  std::vector<const object*> matching;
  for (auto& [id, d] : docs)
    if (filter.matches(d)) matching.push_back(&d);
  std::sort(matching.begin(), matching.end(),
            [&](const object* a, const object* b) { return order.compare(*a, *b) < 0; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < matching.size() && i < q.size; ++i)
    out.push_back(to_json(value(keys.apply(*matching[i]))));
  return out;
}

std::string to_json(const std::vector<std::string>& docs) {
  std::string out = "[";
  for (auto& d : docs)
    out += (out.size() > 1 ? "," : "") + d;
  return out + "]";
}

/// A frame applied by the client: its token and the client's array after it (JSON texts).
struct applied_frame {
  std::string token;
  std::vector<std::string> docs;
  bool init = false;
};

/// A live query's client (WebSocket or SSE) applying the frames as section 10 says.
class live_client {
public:
  live_client(std::uint16_t port, const std::string& target, bool sse,
              std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (sse) {
      sse_ = std::make_unique<sse_client>(port, target, headers);
      status_ = sse_->status();
    } else {
      ws_ = std::make_unique<ws_client>(port, target, headers);
      status_ = ws_->upgrade_status();
    }
  }

  int status() const { return status_; }
  std::string error_body() const { return sse_ ? sse_->error_body() : ws_->error_body(); }
  const std::vector<applied_frame>& frames() const { return frames_; }
  const std::vector<object>& docs() const { return docs_; }
  std::vector<std::string> doc_texts() const {
    std::vector<std::string> out;
    for (auto& d : docs_)
      out.push_back(to_json(value(d)));
    return out;
  }
  /// Close code when the server closed a WebSocket (0: not closed).
  std::uint16_t close_code() const { return close_code_; }
  std::string close_reason() const { return close_reason_; }
  bool ended() const { return ended_; }
  /// SSE only: the types and ids of the events so far.
  const std::vector<std::pair<std::string, std::string>>& sse_events() const { return sse_events_; }

  /// Applies what has arrived, waiting up to `wait` for the first of it.
  void pump(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    if (ws_) {
      if (wait.count()) {
        auto f = ws_->next(wait);
        if (f.opcode == -1) return;
        handle(f);
      }
      std::vector<ws_client::frame> got;
      if (!ws_->poll_frames(got)) ended_ = true;
      for (auto& f : got)
        handle(f);
      return;
    }
    for (auto e = sse_->next(wait); !e.timed_out; e = sse_->next(std::chrono::milliseconds(0))) {
      if (e.ended) {
        ended_ = true;
        return;
      }
      sse_events_.emplace_back(e.type, e.id);
      apply(e.data, e.type);
      BOOST_TEST(e.id == frames_.back().token);
    }
  }

  /// Waits (with a deadline) until the client's array is `expected`.
  bool wait_for(const std::vector<std::string>& expected) {
    return eventually([&] {
      pump(std::chrono::milliseconds(20));
      return doc_texts() == expected;
    });
  }

private:
  void handle(const ws_client::frame& f) {
    if (f.opcode == 8) {
      close_code_ = f.close_code();
      close_reason_ = f.close_reason();
      ended_ = true;
      return;
    }
    if (f.opcode == -2) {
      ended_ = true;
      return;
    }
    BOOST_REQUIRE_EQUAL(f.opcode, 1);
    apply(f.payload, "");
  }

  void apply(const std::string& text, const std::string& sse_type) {
    object frame = parse_object(text);
    const value* token = find_field(frame, "token");
    BOOST_REQUIRE(token && token->is_string());
    applied_frame out;
    out.token = token->as_string();
    if (const value* init = find_field(frame, "init")) {
      BOOST_REQUIRE(init->is_array());
      BOOST_TEST((sse_type.empty() || sse_type == "init"));
      docs_.clear();
      for (auto& d : init->as_array())
        docs_.push_back(d.as_object());
      out.init = true;
    } else {
      const value* diff = find_field(frame, "diff");
      BOOST_REQUIRE_MESSAGE(diff && diff->is_array(), "not a frame: " << text);
      BOOST_TEST((sse_type.empty() || sse_type == "diff"));
      BOOST_TEST_REQUIRE(!frames_.empty(), "a diff before the init");
      BOOST_TEST(!diff->as_array().empty(), "an empty diff: " << text);
      for (auto& opv : diff->as_array()) {
        const object& op = opv.as_object();
        const std::string kind = find_field(op, "op")->as_string();
        const auto at = static_cast<std::size_t>(find_field(op, "at")->as_int64());
        if (kind == "add") {
          BOOST_REQUIRE_LE(at, docs_.size());
          docs_.insert(docs_.begin() + static_cast<std::ptrdiff_t>(at),
                       find_field(op, "doc")->as_object());
        } else if (kind == "remove") {
          BOOST_REQUIRE_LT(at, docs_.size());
          docs_.erase(docs_.begin() + static_cast<std::ptrdiff_t>(at));
        } else {
          BOOST_REQUIRE_EQUAL(kind, "update");
          const auto to = static_cast<std::size_t>(find_field(op, "to")->as_int64());
          BOOST_REQUIRE_LT(at, docs_.size());
          docs_.erase(docs_.begin() + static_cast<std::ptrdiff_t>(at));
          BOOST_REQUIRE_LE(to, docs_.size());
          docs_.insert(docs_.begin() + static_cast<std::ptrdiff_t>(to),
                       find_field(op, "doc")->as_object());
        }
      }
    }
    out.docs = doc_texts();
    frames_.push_back(std::move(out));
  }

  std::unique_ptr<ws_client> ws_;
  std::unique_ptr<sse_client> sse_;
  int status_ = 0;
  std::vector<object> docs_;
  std::vector<applied_frame> frames_;
  std::vector<std::pair<std::string, std::string>> sse_events_;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  bool ended_ = false;
};

/// One commit as the raw change stream told it.
struct model_event {
  std::string token;
  std::string id;            // encode_key of the _id
  std::optional<object> doc; // after the commit; nullopt: deleted
};

/// Follows db.coll's raw stream ("all", no stages) and keeps every event, in order.
class model_feed {
public:
  model_feed(std::uint16_t port, const std::string& coll)
      : ws_(port, "/" + coll + "/_streams/all") {
    BOOST_REQUIRE_EQUAL(ws_.upgrade_status(), 101);
  }
  void pump() {
    std::vector<ws_client::frame> got;
    ws_.poll_frames(got);
    for (auto& f : got) {
      BOOST_REQUIRE_EQUAL(f.opcode, 1);
      object ev = parse_object(f.payload);
      const std::string* token = event_token(ev);
      BOOST_REQUIRE(token);
      const object& key = find_field(ev, "documentKey")->as_object();
      model_event m{*token, encode_key(*find_field(key, "_id")), std::nullopt};
      if (find_field(ev, "operationType")->as_string() != "delete")
        m.doc = find_field(ev, "fullDocument")->as_object();
      events_.push_back(std::move(m));
    }
  }
  const std::vector<model_event>& events() const { return events_; }
  /// The collection after every event up to `token`.
  std::map<std::string, object> at(const std::string& token) const {
    std::map<std::string, object> docs;
    for (auto& e : events_) {
      if (token_before(token, e.token)) break;
      if (e.doc)
        docs[e.id] = *e.doc;
      else
        docs.erase(e.id);
    }
    return docs;
  }

private:
  ws_client ws_;
  std::vector<model_event> events_;
};

std::string doc_id(int k) {
  char b[8];
  std::snprintf(b, sizeof b, "k%02d", k);
  return b;
}

/// A document of the board: `a` (0-9, many ties), `b` a number or an array of them
/// (multikey sorts), `c` a short string, `team`, and now and then hidden.
std::string random_doc(std::mt19937& rng, int k) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::string b;
  if (pick(3) == 0)
    b = "[" + std::to_string(pick(20)) + "," + std::to_string(pick(20)) + "]";
  else
    b = std::to_string(pick(20));
  return "{\"_id\":\"" + doc_id(k) + "\",\"a\":" + std::to_string(pick(10)) + ",\"b\":" + b +
         ",\"c\":\"" + std::string(1, static_cast<char>('p' + pick(6))) + "\",\"team\":\"" +
         (pick(2) ? "red" : "blue") + "\"" + (pick(7) == 0 ? ",\"hidden\":true" : "") + "}";
}

/// One random write (or bulk write) to the board; `live` tells which ids exist now.
void random_write(std::uint16_t port, std::mt19937& rng, std::vector<bool>& live) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const int n = static_cast<int>(live.size());
  const int k = pick(n);
  const std::string id = doc_id(k);
  http_result r;
  switch (pick(10)) {
  case 0:
  case 1:
  case 2: // insert or replace one
    r = http(port, "PUT", "/board/" + id + "?wm=upsert", random_doc(rng, k));
    BOOST_REQUIRE_MESSAGE(r.status == 201 || r.status == 200, r.body);
    live[static_cast<std::size_t>(k)] = true;
    return;
  case 3:
  case 4: // move one: its sort keys change, often to a tie
    if (!live[static_cast<std::size_t>(k)]) return;
    r = http(port, "PATCH", "/board/" + id,
             pick(2) ? "{\"$set\":{\"a\":" + std::to_string(pick(10)) + "}}"
                     : "{\"$set\":{\"b\":" +
                           (pick(3) ? std::to_string(pick(20))
                                    : "[" + std::to_string(pick(20)) + "," +
                                          std::to_string(pick(20)) + "]") +
                           "}}");
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
    return;
  case 5: // hide or show one (the readFilter)
    if (!live[static_cast<std::size_t>(k)]) return;
    r = http(port, "PATCH", "/board/" + id,
             std::string("{\"$set\":{\"hidden\":") + (pick(2) ? "true" : "false") + "}}");
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
    return;
  case 6: // delete one
    if (!live[static_cast<std::size_t>(k)]) return;
    r = http(port, "DELETE", "/board/" + id);
    BOOST_REQUIRE_MESSAGE(r.status == 204, r.body);
    live[static_cast<std::size_t>(k)] = false;
    return;
  case 7: { // bulk insert of absent ones
    std::string body = "[";
    int added = 0;
    for (int j = 0; j < n && added < 6; ++j)
      if (!live[static_cast<std::size_t>((k + j) % n)] && pick(2)) {
        if (added++) body += ',';
        body += random_doc(rng, (k + j) % n);
        live[static_cast<std::size_t>((k + j) % n)] = true;
      }
    if (!added) return;
    r = http(port, "POST", "/board", body + "]");
    BOOST_REQUIRE_MESSAGE(r.status == 200 || r.status == 201, r.body);
    return;
  }
  case 8: { // bulk update: many documents move in one commit
    const int a = pick(10);
    r = http(port, "PATCH",
             "/board/*?filter=" + percent_encode("{\"a\":{\"$gte\":" + std::to_string(a) + "}}"),
             "{\"$set\":{\"a\":" + std::to_string(pick(10)) + "}}");
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
    return;
  }
  default: { // bulk delete
    const int a = pick(10);
    r = http(port, "DELETE",
             "/board/*?filter=" + percent_encode("{\"a\":" + std::to_string(a) + "}"));
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
    // Which ones went is for the model to know; refresh what exists.
    auto all = http(port, "GET", "/board?pagesize=1000&keys=" + percent_encode("{\"_id\":1}"));
    std::fill(live.begin(), live.end(), false);
    const value ids = parse_json(all.body, "ids");
    for (auto& d : ids.as_array()) {
      const std::string& s = find_field(d.as_object(), "_id")->as_string();
      live[static_cast<std::size_t>(std::stoi(s.substr(1)))] = true;
    }
    return;
  }
  }
}

/// The value of metric `name` (its first line, whatever its labels) in GET /_metrics of `port`;
/// -1 when absent.
double metric(std::uint16_t port, const std::string& name) {
  const std::string text = http(port, "GET", "/_metrics").body;
  std::size_t at = 0;
  while ((at = text.find(name, at)) != std::string::npos) {
    const bool line_start = at == 0 || text[at - 1] == '\n';
    const char next = at + name.size() < text.size() ? text[at + name.size()] : '\0';
    if (line_start && (next == ' ' || next == '{' || next == '}' || next == ',')) {
      const std::size_t space = text.find(' ', text.find_first_of(" }", at + name.size()));
      return std::stod(text.substr(space + 1));
    }
    at += name.size();
  }
  return -1;
}

/// The seed: RHEO_LIVE_SEED when set (to replay a failure), else `fallback`.
std::uint32_t seed_or(std::uint32_t fallback) {
  const char* s = std::getenv("RHEO_LIVE_SEED");
  return s ? static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10)) : fallback;
}

/// The model-based check: live queries of many shapes on `port` follow a seeded random
/// writer (writing to `write_port`); every frame of every client is checked against the model.
void check_against_the_model(std::uint16_t port, std::uint16_t write_port, std::uint32_t seed) {
  BOOST_TEST_MESSAGE("seed " << seed << " (RHEO_LIVE_SEED replays it)");
  std::mt19937 rng(seed);
  auto put = http(write_port, "PUT", "/board", R"({"streams":[{"uri":"all","stages":[]}]})");
  BOOST_REQUIRE_MESSAGE(put.status == 201 || put.status == 200, put.body);
  model_feed model(port, "board"); // from the first commit on
  std::vector<bool> live(60, false);
  for (int i = 0; i < 25; ++i)
    random_write(write_port, rng, live);

  const object read_filter = parse_object(R"({"hidden":{"$ne":true}})");
  const std::vector<query_shape> shapes = {
      {"", R"({"a":1})", "", 5},
      {"", R"({"a":-1})", "", 1},
      {R"({"a":{"$gte":3}})", R"({"a":1,"c":-1})", R"({"c":1})", 7}, // hides the sort key
      {"", R"({"b":1})", "", 10},                                    // multikey, ascending
      {R"({"team":"red"})", R"({"b":-1,"a":1})", R"({"a":0})", 3},   // multikey, descending
      {"", "", "", 50},                                              // GET's order
      {R"({"c":{"$in":["p","q","r"]}})", R"({"c":1})", "", 4},
      {R"({"a":{"$lt":5}})", R"({"a":-1,"b":1})", "", 20},
      {"", R"({"a":1})", "", 5},                   // the first one again: shares its evaluation
      {"", R"({"a":1})", R"({"_id":0,"c":1})", 5}, // the first one, projected otherwise
  };
  struct follower {
    query_shape shape;
    std::unique_ptr<live_client> client;
  };
  std::vector<follower> followers;
  auto open = [&](const query_shape& q, bool sse) {
    auto c = std::make_unique<live_client>(port, q.target("board"), sse);
    BOOST_REQUIRE_MESSAGE(c->status() == (sse ? 200 : 101), c->error_body());
    followers.push_back({q, std::move(c)});
  };
  for (std::size_t i = 0; i < shapes.size(); ++i)
    open(shapes[i], i % 3 == 1);

  const int writes = 400;
  for (int i = 0; i < writes; ++i) {
    random_write(write_port, rng, live);
    if (i == writes / 2) // late joiners: one new query, and one that joins a running one
      for (std::size_t j : {std::size_t{2}, std::size_t{5}}) {
        query_shape q = shapes[j];
        if (j == 5) q.size = 2;
        open(q, j == 2);
      }
    model.pump();
    for (auto& f : followers)
      f.client->pump();
  }

  // Everything arrives: the model has every commit the final GET reflects, and each client
  // holds what GET with its parameters answers now.
  auto everything = http(write_port, "GET", "/board?pagesize=1000");
  const std::string final_token = everything.header("resume-token");
  BOOST_REQUIRE(!final_token.empty());
  BOOST_REQUIRE(eventually([&] {
    model.pump();
    return !model.events().empty() && !token_before(model.events().back().token, final_token);
  }));
  const auto final_docs = model.at(final_token);
  BOOST_TEST(parse_json(everything.body, "all").as_array().size() == final_docs.size());
  for (auto& f : followers) {
    BOOST_TEST_CONTEXT("query " << f.shape.target("board")) {
      const auto expected = evaluate(f.shape, read_filter, final_docs);
      BOOST_TEST(f.client->wait_for(expected));
    }
  }

  // Every frame: the client's array then is the query on the model at the frame's token.
  std::size_t frames = 0, diffs = 0;
  for (auto& f : followers) {
    BOOST_TEST_CONTEXT("query " << f.shape.target("board")) {
      BOOST_TEST_REQUIRE(!f.client->frames().empty());
      BOOST_TEST(f.client->frames().front().init);
      std::string last;
      for (auto& fr : f.client->frames()) {
        BOOST_TEST_REQUIRE(is_event_token(fr.token));
        BOOST_TEST(!token_before(fr.token, last), "tokens go back: " << fr.token);
        BOOST_TEST(!token_before(final_token, fr.token));
        last = fr.token;
        const auto expected = evaluate(f.shape, read_filter, model.at(fr.token));
        BOOST_TEST_REQUIRE(fr.docs == expected, "frame at " << fr.token << ", frame " << frames
                                                            << ": got " << to_json(fr.docs)
                                                            << ", expected " << to_json(expected));
        ++frames;
        diffs += fr.init ? 0 : 1;
      }
    }
  }
  BOOST_TEST_MESSAGE(frames << " frames checked, " << diffs << " diffs, " << model.events().size()
                            << " commits");
  BOOST_TEST(diffs > 200u); // the writer did move the windows

  // Shared evaluations: 9 distinct queries among the first 10 clients (the 9th asks what the
  // first does), and one more late (the other late client joins a running one).
  BOOST_TEST(metric(port, "rheo_live_queries") == 10);
  BOOST_TEST(metric(port, "rheo_live_refills_total") > 0);
  BOOST_TEST(metric(port, "rheo_live_frames_total") > 0);
}

} // namespace

BOOST_AUTO_TEST_CASE(every_frame_leaves_each_client_equal_to_the_query_on_the_model) {
  rheo_process p({"--acl", board_acl});
  check_against_the_model(p.port(), p.port(), seed_or(20261207));
}

// An edge evaluates its live queries itself, from the feed it follows of the core: the
// same check with the clients on the edge and the writes on the core.
BOOST_AUTO_TEST_CASE(on_a_cluster_edge_every_frame_is_equal_to_the_query_on_the_model) {
  const std::string secret = "live-test-secret";
  const std::uint16_t cluster_port = free_port();
  const std::string core_address = "127.0.0.1:" + std::to_string(cluster_port);
  rheo_process core({"--acl", board_acl, "--cluster-listen", core_address, "--cluster-secret",
                     secret, "--node-name", "core"});
  rheo_process edge({"--acl", board_acl, "--cluster-join", core_address, "--cluster-secret", secret,
                     "--node-name", "edge"});
  BOOST_REQUIRE(eventually([&] { return http(edge.port(), "GET", "/_ping").status == 200; }));
  check_against_the_model(edge.port(), core.port(), seed_or(20261208));
  // Evaluated on the edge, not on the core.
  BOOST_TEST(metric(core.port(), "rheo_live_queries") == 0);
}

BOOST_AUTO_TEST_CASE(bad_parameters_are_answered_before_the_upgrade) {
  rheo_process p({"--live-query-max-window", "50"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/tasks").status, 201);
  struct refused {
    std::string query;
    int status;
    std::string says;
  };
  const std::vector<refused> cases = {
      {"pagesize=0", 400, "pagesize"},
      {"pagesize=51", 400, "live_query_max_window"},
      {"pagesize=ten", 400, "pagesize"},
      {"page=2", 400, "page 1"},
      {"filter=" + percent_encode(R"({"a":{"$bogus":1}})"), 400, "$bogus"},
      {"filter=" + percent_encode("{not json"), 400, "filter"},
      {"sort=" + percent_encode(R"({"a":"up"})"), 400, "a"},
      {"keys=" + percent_encode(R"({"a":1,"b":0})"), 400, "projection"},
      {"filter=" + percent_encode(R"({"a":{"$var":"x"}})"), 400, "x"},
      {"avars=" + percent_encode("[1]"), 400, "avars"},
  };
  for (auto& c : cases)
    for (bool sse : {false, true}) {
      BOOST_TEST_CONTEXT(c.query << (sse ? " (SSE)" : " (WebSocket)")) {
        live_client l(p.port(), "/tasks/_live?" + c.query, sse);
        BOOST_TEST(l.status() == c.status);
        BOOST_TEST(l.error_body().find(c.says) != std::string::npos, l.error_body());
      }
    }
  live_client missing(p.port(), "/nope/_live", false);
  BOOST_TEST(missing.status() == 404);
  BOOST_TEST(missing.error_body().find("nope") != std::string::npos);
  // Not a WebSocket or an event stream.
  auto plain = http(p.port(), "GET", "/tasks/_live");
  BOOST_TEST(plain.status == 400);
  BOOST_TEST(plain.body.find("WebSocket") != std::string::npos);
  // The refusals of the window's limit are counted.
  BOOST_TEST(metric(p.port(), R"(rheo_limit_refusals_total{limit="live_window")") == 2);
}

BOOST_AUTO_TEST_CASE(variables_bind_the_filter_and_frames_carry_their_token_over_sse) {
  rheo_process p;
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/tasks").status, 201);
  for (int i = 0; i < 4; ++i)
    BOOST_REQUIRE_EQUAL(http(p.port(), "POST", "/tasks",
                             "{\"_id\":" + std::to_string(i) + ",\"owner\":\"" +
                                 (i % 2 ? "ann" : "bob") + "\",\"rank\":" + std::to_string(i) + "}")
                            .status,
                        201);
  const std::string target =
      "/tasks/_live?sort=rank&pagesize=2&filter=" + percent_encode(R"({"owner":{"$var":"who"}})") +
      "&avars=" + percent_encode(R"({"who":"ann"})");
  live_client sse(p.port(), target, true);
  BOOST_REQUIRE_EQUAL(sse.status(), 200);
  const std::vector<std::string> first = {R"({"_id":1,"owner":"ann","rank":1})",
                                          R"({"_id":3,"owner":"ann","rank":3})"};
  auto strip_etags = [](std::vector<std::string> docs) {
    for (auto& d : docs) {
      object o = parse_object(d);
      object kept;
      for (auto& [k, v] : o)
        if (k != "_etag") kept.emplace_back(k, v);
      d = to_json(value(kept));
    }
    return docs;
  };
  BOOST_REQUIRE(eventually([&] {
    sse.pump(std::chrono::milliseconds(20));
    return strip_etags(sse.doc_texts()) == first;
  }));
  BOOST_REQUIRE_EQUAL(sse.sse_events().size(), 1u);
  BOOST_TEST(sse.sse_events()[0].first == "init");
  // bob's document does not concern ann's query: no frame. Hers moves to the front.
  BOOST_REQUIRE_EQUAL(
      http(p.port(), "PATCH", "/tasks/0?id_type=NUMBER", R"({"$set":{"rank":-1}})").status, 200);
  BOOST_REQUIRE_EQUAL(
      http(p.port(), "PATCH", "/tasks/3?id_type=NUMBER", R"({"$set":{"rank":0}})").status, 200);
  const std::vector<std::string> second = {R"({"_id":3,"owner":"ann","rank":0})",
                                           R"({"_id":1,"owner":"ann","rank":1})"};
  BOOST_REQUIRE(eventually([&] {
    sse.pump(std::chrono::milliseconds(20));
    return strip_etags(sse.doc_texts()) == second;
  }));
  BOOST_REQUIRE_EQUAL(sse.sse_events().size(), 2u);
  BOOST_TEST(sse.sse_events()[1].first == "diff");
  // An EventSource that reconnects with the last id gets a fresh init (and the same array).
  live_client again(p.port(), target, true, {{"Last-Event-ID", sse.sse_events()[1].second}});
  BOOST_REQUIRE_EQUAL(again.status(), 200);
  BOOST_REQUIRE(eventually([&] {
    again.pump(std::chrono::milliseconds(20));
    return !again.frames().empty();
  }));
  BOOST_TEST(again.frames()[0].init);
  BOOST_TEST(again.frames()[0].token == sse.sse_events()[1].second);
  BOOST_TEST(strip_etags(again.doc_texts()) == second);
  // So does a WebSocket with resumeAfter.
  live_client ws(p.port(), target + "&resumeAfter=" + sse.sse_events()[0].second, false);
  BOOST_REQUIRE_EQUAL(ws.status(), 101);
  BOOST_REQUIRE(eventually([&] {
    ws.pump(std::chrono::milliseconds(20));
    return !ws.frames().empty();
  }));
  BOOST_TEST(ws.frames()[0].init);
  BOOST_TEST(strip_etags(ws.doc_texts()) == second);
}

BOOST_AUTO_TEST_CASE(a_collection_has_at_most_so_many_distinct_live_queries) {
  rheo_process p({"--max-live-queries-per-collection", "2"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/tasks").status, 201);
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/other").status, 201);
  auto a = std::make_unique<live_client>(p.port(), "/tasks/_live?sort=a", false);
  live_client b(p.port(), "/tasks/_live?sort=b", false);
  BOOST_REQUIRE_EQUAL(a->status(), 101);
  BOOST_REQUIRE_EQUAL(b.status(), 101);
  live_client c(p.port(), "/tasks/_live?sort=c", false);
  BOOST_TEST(c.status() == 503);
  BOOST_TEST(c.error_body().find("max_live_queries_per_collection") != std::string::npos,
             c.error_body());
  // The same query as a running one shares it; another collection has its own count.
  live_client a2(p.port(), "/tasks/_live?sort=a", true);
  BOOST_TEST(a2.status() == 200);
  live_client elsewhere(p.port(), "/other/_live?sort=c", false);
  BOOST_TEST(elsewhere.status() == 101);
  // Once both clients of one query have gone, there is room again.
  a.reset();
  a2.pump(); // (keeps reading; it stays)
  BOOST_TEST(live_client(p.port(), "/tasks/_live?sort=c", false).status() == 503);
  BOOST_TEST(metric(p.port(), R"(rheo_limit_refusals_total{limit="live_queries_per_collection")") ==
             2);
}

BOOST_AUTO_TEST_CASE(clients_are_closed_as_section_4_says) {
  rheo_process p({"--ws-queue-limit-bytes", "262144"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/tasks").status, 201);
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/big").status, 201);
  // A client that never reads: 1013 once its queue passes the limit. One that reads, on the
  // same query, gets every frame.
  ws_client stuck(p.port(), "/big/_live?sort=-i&pagesize=20", {}, 4096);
  BOOST_REQUIRE_EQUAL(stuck.upgrade_status(), 101);
  live_client healthy(p.port(), "/big/_live?sort=-i&pagesize=20", false);
  BOOST_REQUIRE_EQUAL(healthy.status(), 101);
  const std::string pad(8000, 'x');
  for (int i = 0; i < 800; ++i) {
    BOOST_REQUIRE_EQUAL(http(p.port(), "POST", "/big",
                             "{\"_id\":" + std::to_string(i) + ",\"i\":" + std::to_string(i) +
                                 ",\"pad\":\"" + pad + "\"}")
                            .status,
                        201);
    healthy.pump();
  }
  BOOST_TEST(eventually([&] {
    healthy.pump(std::chrono::milliseconds(20));
    return healthy.docs().size() == 20 && find_field(healthy.docs()[0], "i")->as_int64() == 799;
  }));
  ws_client::frame f;
  do {
    f = stuck.next();
  } while (f.opcode == 1);
  BOOST_TEST(f.opcode == 8);
  BOOST_TEST(f.close_code() == 1013);

  // The collection dropped: 1000.
  live_client ws(p.port(), "/tasks/_live", false);
  live_client sse(p.port(), "/tasks/_live", true);
  BOOST_REQUIRE_EQUAL(ws.status(), 101);
  BOOST_REQUIRE_EQUAL(sse.status(), 200);
  BOOST_REQUIRE(eventually([&] {
    ws.pump(std::chrono::milliseconds(20));
    sse.pump(std::chrono::milliseconds(20));
    return !ws.frames().empty() && !sse.frames().empty();
  }));
  const std::string etag = http(p.port(), "GET", "/tasks/_meta").header("etag");
  BOOST_REQUIRE_EQUAL(http(p.port(), "DELETE", "/tasks", "", {{"If-Match", etag}}).status, 204);
  BOOST_TEST(eventually([&] {
    ws.pump(std::chrono::milliseconds(20));
    sse.pump(std::chrono::milliseconds(20));
    return ws.ended() && sse.ended();
  }));
  BOOST_TEST(ws.close_code() == 1000);
  BOOST_TEST(ws.close_reason() == "collection dropped");

  // The server stops: 1001.
  live_client last(p.port(), "/big/_live", false);
  BOOST_REQUIRE_EQUAL(last.status(), 101);
  BOOST_REQUIRE(eventually([&] {
    last.pump(std::chrono::milliseconds(20));
    return !last.frames().empty();
  }));
  BOOST_TEST(p.stop() == 0);
  BOOST_TEST(eventually([&] {
    last.pump(std::chrono::milliseconds(20));
    return last.ended();
  }));
  BOOST_TEST(last.close_code() == 1001);
}

BOOST_AUTO_TEST_SUITE_END()
