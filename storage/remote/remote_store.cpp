#include "storage/remote/remote_store.hpp"

#include "storage/document/bson_codec.hpp"

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace rheo {

namespace {

// ---- reading what the other node sent ----

[[noreturn]] void malformed(std::string_view what) {
  throw std::runtime_error("store call: malformed " + std::string(what));
}

const value& field(const object& o, std::string_view key) {
  const value* v = find_field(o, key);
  if (!v) malformed(key);
  return *v;
}

template <class T> const T& as(const value& v, std::string_view what) {
  const T* p = v.get_if<T>();
  if (!p) malformed(what);
  return *p;
}

/// The error of a failed call's reply, {ok: false, status, message} and, for a 412 when the
/// resource exists, its current etag: as the core's store threw it.
[[noreturn]] void throw_error_of(const object& reply) {
  const auto status = as<std::int32_t>(field(reply, "status"), "status");
  std::string message = as<std::string>(field(reply, "message"), "message");
  if (status != 412) throw api_error(status, std::move(message));
  std::optional<object_id> current;
  if (const value* etag = find_field(reply, "etag")) current = as<object_id>(*etag, "etag");
  throw etag_mismatch(std::move(message), current);
}

// ---- codecs: each type that crosses the link, as a value ----

/// codec<T>::encode(const T&) -> value on the sending side, codec<T>::decode(const value&)
/// -> T on the receiving one.
template <class T> struct codec;

/// A type that is a value alternative as it is.
template <class T> struct plain_codec {
  static value encode(const T& v) { return value(v); }
  static T decode(const value& v) { return as<T>(v, "argument"); }
};
template <> struct codec<std::string> : plain_codec<std::string> {};
template <> struct codec<object> : plain_codec<object> {};
template <> struct codec<bool> : plain_codec<bool> {};
template <> struct codec<std::int64_t> : plain_codec<std::int64_t> {};
template <> struct codec<object_id> : plain_codec<object_id> {};

template <> struct codec<value> {
  static value encode(const value& v) { return v; }
  static value decode(const value& v) { return v; }
};

template <> struct codec<std::uint64_t> {
  static value encode(std::uint64_t n) { return value(static_cast<std::int64_t>(n)); }
  static std::uint64_t decode(const value& v) {
    return static_cast<std::uint64_t>(as<std::int64_t>(v, "count"));
  }
};

template <> struct codec<write_mode> {
  static value encode(write_mode m) { return value(static_cast<std::int32_t>(m)); }
  static write_mode decode(const value& v) {
    auto m = as<std::int32_t>(v, "write mode");
    if (m < 0 || m > static_cast<std::int32_t>(write_mode::upsert)) malformed("write mode");
    return static_cast<write_mode>(m);
  }
};

template <class T> struct codec<std::optional<T>> {
  static value encode(const std::optional<T>& o) { return o ? codec<T>::encode(*o) : value(); }
  static std::optional<T> decode(const value& v) {
    if (v.is_null()) return std::nullopt;
    return codec<T>::decode(v);
  }
};

template <class T> struct codec<std::vector<T>> {
  static value encode(const std::vector<T>& items) {
    array out;
    out.reserve(items.size());
    for (auto& item : items)
      out.push_back(codec<T>::encode(item));
    return value(std::move(out));
  }
  static std::vector<T> decode(const value& v) {
    std::vector<T> out;
    for (auto& item : as<array>(v, "list"))
      out.push_back(codec<T>::decode(item));
    return out;
  }
};

template <class S, class T> T member_of(T S::*);
template <auto M> using member_t = decltype(member_of(M));

/// A struct as the array of its members M..., in that order.
template <class S, auto... M> struct fields_codec {
  static value encode(const S& s) { return value(array{codec<member_t<M>>::encode(s.*M)...}); }
  static S decode(const value& v) {
    auto& fields = as<array>(v, "record");
    if (fields.size() != sizeof...(M)) malformed("record");
    S s;
    std::size_t i = 0;
    ((s.*M = codec<member_t<M>>::decode(fields[i++])), ...);
    return s;
  }
};
template <>
struct codec<collection_info>
    : fields_codec<collection_info, &collection_info::metadata, &collection_info::etag> {};
template <>
struct codec<index_info>
    : fields_codec<index_info, &index_info::name, &index_info::key, &index_info::options> {};
template <>
struct codec<query_plan> : fields_codec<query_plan, &query_plan::index, &query_plan::examined,
                                        &query_plan::bounds, &query_plan::in_memory_sort> {};
template <>
struct codec<write_result>
    : fields_codec<write_result, &write_result::id, &write_result::etag, &write_result::created> {};
template <>
struct codec<bulk_result>
    : fields_codec<bulk_result, &bulk_result::inserted, &bulk_result::deleted,
                   &bulk_result::modified, &bulk_result::matched, &bulk_result::ids> {};
template <>
struct codec<aggregation_limits>
    : fields_codec<aggregation_limits, &aggregation_limits::max_documents> {};

/// An update as its ops, in order: [[name, path, arg], ...].
template <> struct codec<update_spec> {
  static value encode(const update_spec& spec) {
    array ops;
    for (auto& o : spec.ops())
      ops.push_back(value(array{value(o.name), value(o.path), o.arg}));
    return value(std::move(ops));
  }
  static update_spec decode(const value& v) {
    std::vector<update_spec::op> ops;
    for (auto& item : as<array>(v, "update")) {
      auto& o = as<array>(item, "update operation");
      if (o.size() != 3) malformed("update operation");
      ops.push_back({as<std::string>(o[0], "operator"), as<std::string>(o[1], "path"), o[2]});
    }
    return update_spec::from_ops(std::move(ops));
  }
};

/// An aggregation as its resolved stages.
template <> struct codec<aggregation> {
  static value encode(const aggregation& a) { return value(a.stages()); }
  static aggregation decode(const value& v) {
    return aggregation::from_resolved(as<array>(v, "stages"));
  }
};

/// A query as the sources of its filter, sort and keys, its paging and which outputs the
/// caller wants: [filter_doc, sort_doc, keys_doc, skip, limit, explain?, position?].
template <> struct codec<find_query> {
  static value encode(const find_query& q) {
    if (q.filter_doc.empty() && !q.filter.matches_all())
      throw std::logic_error("remote_store: a find_query's filter needs its filter_doc");
    if (q.sort_doc.empty() && !q.sort.empty())
      throw std::logic_error("remote_store: a find_query's sort needs its sort_doc");
    if (q.keys_doc.empty() && !q.keys.empty())
      throw std::logic_error("remote_store: a find_query's keys need their keys_doc");
    return value(array{value(q.filter_doc), value(q.sort_doc), value(q.keys_doc), value(q.skip),
                       value(q.limit), value(q.explain != nullptr && !q.explain_if_free),
                       value(q.position != nullptr)});
  }
};

/// find_by_id's position: whether the caller wants it.
template <> struct codec<std::string*> {
  static value encode(const std::string* position) { return value(position != nullptr); }
};

// ---- the receiving end of one argument ----

/// An argument as the core's store receives it: get() is what the call is given, reply()
/// what goes back to the edge's argument (null unless it has outputs).
template <class T> struct received {
  T arg;
  explicit received(const value& v) : arg(codec<T>::decode(v)) {}
  T& get() { return arg; }
  value reply() const { return value(); }
};

template <> struct received<find_query> {
  find_query q;
  query_plan plan;
  std::string position;
  bool want_plan = false;
  bool want_position = false;

  explicit received(const value& v) {
    auto& a = as<array>(v, "query");
    if (a.size() != 7) malformed("query");
    q.filter_doc = as<object>(a[0], "filter");
    q.sort_doc = as<object>(a[1], "sort");
    q.keys_doc = as<object>(a[2], "keys");
    q.filter = matcher::compile(q.filter_doc);
    q.sort = sort_spec::parse(q.sort_doc);
    q.keys = projection::compile(q.keys_doc);
    q.skip = as<std::int64_t>(a[3], "skip");
    q.limit = as<std::int64_t>(a[4], "limit");
    want_plan = as<bool>(a[5], "explain");
    want_position = as<bool>(a[6], "position");
  }
  // The output pointers are set here, not when constructed: a received argument moves.
  find_query& get() {
    q.explain = want_plan ? &plan : nullptr;
    q.position = want_position ? &position : nullptr;
    return q;
  }
  value reply() const {
    return value(array{want_plan ? codec<query_plan>::encode(plan) : value(),
                       want_position ? value(position) : value()});
  }
};

template <> struct received<std::string*> {
  std::optional<std::string> position;
  explicit received(const value& v) {
    if (as<bool>(v, "position")) position.emplace();
  }
  std::string* get() { return position ? &*position : nullptr; }
  value reply() const { return position ? value(*position) : value(); }
};

// ---- the sending end: outputs back into the caller's arguments ----

template <class T> void take_reply(const T&, const value&) {}

void take_reply(const find_query& q, const value& out) {
  auto& a = as<array>(out, "query reply");
  if (a.size() != 2) malformed("query reply");
  if (q.explain) *q.explain = codec<query_plan>::decode(a[0]);
  if (q.position) *q.position = as<std::string>(a[1], "position");
}

void take_reply(std::string* position, const value& out) {
  if (position) *position = as<std::string>(out, "position");
}

// ---- the calls ----

/// Every store method that crosses the link, by name (watch() and close() do not).
#define RHEO_STORE_CALLS(X)                                                                        \
  X(collection_names)                                                                              \
  X(collection)                                                                                    \
  X(put_collection)                                                                                \
  X(patch_collection)                                                                              \
  X(drop_collection)                                                                               \
  X(find)                                                                                          \
  X(count_query)                                                                                   \
  X(find_by_id)                                                                                    \
  X(insert)                                                                                        \
  X(replace)                                                                                       \
  X(update)                                                                                        \
  X(remove)                                                                                        \
  X(insert_many)                                                                                   \
  X(update_many)                                                                                   \
  X(delete_many)                                                                                   \
  X(aggregate)                                                                                     \
  X(list_indexes)                                                                                  \
  X(create_index)                                                                                  \
  X(drop_index)                                                                                    \
  X(check_resume_token)

template <auto M> constexpr std::optional<store_method> call_id = std::nullopt;
#define RHEO_CALL_ID(method)                                                                       \
  template <> constexpr std::optional<store_method> call_id<&store::method> = store_method::method;
RHEO_STORE_CALLS(RHEO_CALL_ID)
#undef RHEO_CALL_ID

template <class M> struct signature_of;
template <class R, class... P> struct signature_of<R (store::*)(P...)> { using type = R(P...); };
template <class R, class... P> struct signature_of<R (store::*)(P...) const> {
  using type = R(P...);
};

/// Store method M as a call: the edge's forward() and the core's serve(), with the method's
/// own parameter types.
template <auto M, class = typename signature_of<decltype(M)>::type> struct store_call;
template <auto M, class R, class... P> struct store_call<M, R(P...)> {
  static R forward(const store_transport& transport, P... args) {
    static_assert(call_id<M>.has_value(), "a store method forwarded must be in RHEO_STORE_CALLS");
    object sent{{"a", value(array{codec<std::remove_cvref_t<P>>::encode(args)...})}};
    object reply = decode_bson(transport(*call_id<M>, encode_bson(sent)));
    if (!as<bool>(field(reply, "ok"), "ok")) throw_error_of(reply);
    auto& out = as<array>(field(reply, "out"), "out");
    if (out.size() != sizeof...(P)) malformed("out");
    std::size_t i = 0;
    (take_reply(args, out[i++]), ...);
    if constexpr (!std::is_void_v<R>)
      return codec<std::remove_cvref_t<R>>::decode(field(reply, "r"));
  }

  static object serve(store& db, const array& args) {
    return serve(db, args, std::index_sequence_for<P...>{});
  }

  template <std::size_t... I>
  static object serve(store& db, const array& args, std::index_sequence<I...>) {
    if (args.size() != sizeof...(P)) malformed("arguments");
    std::tuple<received<std::remove_cvref_t<P>>...> in{
        received<std::remove_cvref_t<P>>(args[I])...};
    auto run = [&] { return (db.*M)(static_cast<P&&>(std::get<I>(in).get())...); };
    object reply{{"ok", value(true)}};
    if constexpr (std::is_void_v<R>)
      run();
    else
      reply.emplace_back("r", codec<std::remove_cvref_t<R>>::encode(run()));
    reply.emplace_back("out", value(array{std::get<I>(in).reply()...}));
    return reply;
  }
};

using serve_fn = object (*)(store&, const array&);
struct served_call {
  store_method method;
  std::string_view name;
  serve_fn serve;
};
#define RHEO_SERVED_CALL(method)                                                                   \
  {store_method::method, #method, &store_call<&store::method>::serve},
/// Indexed by store_method.
constexpr served_call served_calls[] = {RHEO_STORE_CALLS(RHEO_SERVED_CALL)};
#undef RHEO_SERVED_CALL
#undef RHEO_STORE_CALLS

constexpr bool served_in_order() {
  std::size_t i = 0;
  for (auto& c : served_calls)
    if (static_cast<std::size_t>(c.method) != i++) return false;
  return i == static_cast<std::size_t>(last_store_method) + 1;
}
static_assert(served_in_order(), "RHEO_STORE_CALLS lists store_method's values, in order");

std::string error_reply(int status, const std::string& message,
                        const std::optional<object_id>& etag) {
  object reply{{"ok", value(false)},
               {"status", value(static_cast<std::int32_t>(status))},
               {"message", value(message)}};
  if (etag) reply.emplace_back("etag", value(*etag));
  return encode_bson(reply);
}

} // namespace

std::string_view to_string(store_method method) {
  return served_calls[static_cast<std::size_t>(method)].name;
}

std::string serve_store_call(store& db, std::string_view name, const std::string& args) {
  for (auto& c : served_calls)
    if (c.name == name) return serve_store_call(db, c.method, args);
  return error_reply(400, "unknown store call '" + std::string(name) + "'", std::nullopt);
}

std::string serve_store_call(store& db, store_method method, const std::string& args) {
  const std::string_view op = to_string(method);
  try {
    return encode_bson(served_calls[static_cast<std::size_t>(method)].serve(
        db, as<array>(field(decode_bson(args), "a"), "a")));
  } catch (const etag_mismatch& e) {
    return error_reply(e.status(), e.what(), e.current());
  } catch (const api_error& e) {
    return error_reply(e.status(), e.what(), std::nullopt);
  } catch (const std::exception& e) {
    return error_reply(500, e.what(), std::nullopt);
  } catch (...) {
    return error_reply(500, "store call '" + std::string(op) + "' failed", std::nullopt);
  }
}

remote_store::remote_store(store_transport transport, feed_opener opener,
                           std::shared_ptr<store> local)
    : transport_(std::move(transport)), opener_(std::move(opener)), local_(std::move(local)) {}

template <auto M, class... A> auto remote_store::call(A&&... args) const {
  if (local_) return ((*local_).*M)(std::forward<A>(args)...);
  return store_call<M>::forward(transport_, std::forward<A>(args)...);
}

std::vector<std::string> remote_store::collection_names(const std::string& db) {
  return call<&store::collection_names>(db);
}

std::optional<collection_info> remote_store::collection(const std::string& db,
                                                        const std::string& coll) {
  return call<&store::collection>(db, coll);
}

bool remote_store::put_collection(const std::string& db, const std::string& coll, object metadata,
                                  const std::optional<std::string>& if_match) {
  return call<&store::put_collection>(db, coll, std::move(metadata), if_match);
}

void remote_store::patch_collection(const std::string& db, const std::string& coll, object metadata,
                                    const std::optional<std::string>& if_match) {
  call<&store::patch_collection>(db, coll, std::move(metadata), if_match);
}

void remote_store::drop_collection(const std::string& db, const std::string& coll,
                                   const std::string& etag) {
  call<&store::drop_collection>(db, coll, etag);
}

std::vector<object> remote_store::find(const std::string& db, const std::string& coll,
                                       const find_query& q) {
  return call<&store::find>(db, coll, q);
}

std::int64_t remote_store::count_query(const std::string& db, const std::string& coll,
                                       const find_query& q) {
  return call<&store::count_query>(db, coll, q);
}

std::optional<object> remote_store::find_by_id(const std::string& db, const std::string& coll,
                                               const value& id, std::string* position) {
  return call<&store::find_by_id>(db, coll, id, position);
}

write_result remote_store::insert(const std::string& db, const std::string& coll, object doc) {
  return call<&store::insert>(db, coll, std::move(doc));
}

write_result remote_store::replace(const std::string& db, const std::string& coll, const value& id,
                                   object doc, write_mode mode,
                                   const std::optional<std::string>& if_match) {
  return call<&store::replace>(db, coll, id, std::move(doc), mode, if_match);
}

write_result remote_store::update(const std::string& db, const std::string& coll, const value& id,
                                  const update_spec& spec, write_mode mode,
                                  const std::optional<std::string>& if_match) {
  return call<&store::update>(db, coll, id, spec, mode, if_match);
}

void remote_store::remove(const std::string& db, const std::string& coll, const value& id,
                          const std::optional<std::string>& if_match) {
  call<&store::remove>(db, coll, id, if_match);
}

bulk_result remote_store::insert_many(const std::string& db, const std::string& coll,
                                      std::vector<object> docs) {
  return call<&store::insert_many>(db, coll, std::move(docs));
}

bulk_result remote_store::update_many(const std::string& db, const std::string& coll,
                                      const find_query& q, const update_spec& spec) {
  return call<&store::update_many>(db, coll, q, spec);
}

bulk_result remote_store::delete_many(const std::string& db, const std::string& coll,
                                      const find_query& q) {
  return call<&store::delete_many>(db, coll, q);
}

std::vector<object> remote_store::aggregate(const std::string& db, const std::string& coll,
                                            const aggregation& a,
                                            const aggregation_limits& limits) {
  return call<&store::aggregate>(db, coll, a, limits);
}

std::vector<index_info> remote_store::list_indexes(const std::string& db, const std::string& coll) {
  return call<&store::list_indexes>(db, coll);
}

void remote_store::create_index(const std::string& db, const std::string& coll,
                                const std::string& name, const object& key, const object& options) {
  call<&store::create_index>(db, coll, name, key, options);
}

void remote_store::drop_index(const std::string& db, const std::string& coll,
                              const std::string& name) {
  call<&store::drop_index>(db, coll, name);
}

void remote_store::check_resume_token(const std::string& token) const {
  call<&store::check_resume_token>(token);
}

std::unique_ptr<change_feed> remote_store::watch(const std::string& db, const std::string& coll,
                                                 const std::optional<std::string>& resume_after) {
  return opener_(db, coll, resume_after);
}

void remote_store::close() {
  if (local_) local_->close();
}

} // namespace rheo
