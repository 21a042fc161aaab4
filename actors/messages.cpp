#include "actors/actors.hpp"
#include "actors/cluster_wire.hpp"
#include "actors/sink_support.hpp"

#include "storage/document/bson_codec.hpp"

#include <caf/actor_system_config.hpp>

namespace rheo {

const std::vector<std::string>& event_batch::encoded() const {
  static const std::vector<std::string> none;
  if (!events) return none;
  if (!wire) {
    // A batch made without to_batch(): encoded for this one use.
    wire = std::make_shared<wire_form>();
  }
  std::call_once(wire->once, [&] {
    wire->bson.reserve(events->size());
    for (auto& e : *events) {
      wire->bson.push_back(encode_bson(e));
      wire->bytes += wire->bson.back().size();
    }
  });
  return wire->bson;
}

std::size_t event_batch::encoded_bytes() const {
  encoded();
  return wire ? wire->bytes : 0;
}

namespace {

/// Whether the last of `events` is an "invalidate" event.
bool ends_with_invalidate(const std::vector<object>& events) {
  if (events.empty()) return false;
  const value* op = find_field(events.back(), "operationType");
  return op && op->is_string() && op->as_string() == to_string(operation_type::invalidate);
}

} // namespace

void event_batch::decode(const std::vector<std::string>& encoded) {
  auto v = std::make_shared<std::vector<object>>();
  v->reserve(encoded.size());
  for (auto& e : encoded)
    v->push_back(decode_bson(e));
  invalidates = ends_with_invalidate(*v);
  events = std::move(v);
  wire.reset();
}

event_batch to_batch(std::vector<change_event>&& events) {
  auto objects = std::make_shared<std::vector<object>>();
  objects->reserve(events.size());
  bool invalidates = false;
  for (auto& e : events) {
    objects->push_back(std::move(e).to_object());
    // As a feed does: nothing after the collection is gone.
    if (e.operation == operation_type::invalidate) {
      invalidates = true;
      break;
    }
  }
  return event_batch{std::move(objects), std::make_shared<event_batch::wire_form>(), invalidates};
}

event_batch to_batch(std::shared_ptr<const std::vector<object>> events) {
  const bool invalidates = events && ends_with_invalidate(*events);
  return event_batch{std::move(events), std::make_shared<event_batch::wire_form>(), invalidates};
}

std::uint16_t close_reason::code() const {
  switch (cause) {
  case close_cause::collection_dropped:
  case close_cause::stream_redefined:
    return 1000;
  case close_cause::history_lost:
    return 4410;
  case close_cause::slow_consumer:
    return 1013;
  case close_cause::feed_ended:
  case close_cause::feed_invalidated:
  case close_cause::cannot_resume:
    break;
  }
  return 1011;
}

std::string close_reason::text() const {
  switch (cause) {
  case close_cause::collection_dropped:
    return "collection dropped";
  case close_cause::stream_redefined:
    return "stream definition changed";
  case close_cause::history_lost:
    return std::string(history_lost_reason);
  case close_cause::slow_consumer:
    return "slow consumer: " + detail;
  case close_cause::cannot_resume:
    return "cannot resume: " + detail;
  case close_cause::feed_ended:
  case close_cause::feed_invalidated:
    break;
  }
  return "change feed ended: " + detail;
}

close_reason close_reason::of(const feed_end& end) {
  switch (end.cause) {
  case feed_end_cause::history_lost:
    return {close_cause::history_lost, {}};
  case feed_end_cause::invalidated:
    return {close_cause::feed_invalidated, end.reason};
  case feed_end_cause::failed:
    break;
  }
  return {close_cause::feed_ended, end.reason};
}

feed_end close_reason::as_feed_end() const {
  switch (cause) {
  case close_cause::history_lost:
    return {feed_end_cause::history_lost, std::string(history_lost_reason) + ": " + text()};
  case close_cause::feed_invalidated:
    return {feed_end_cause::invalidated, text()};
  default:
    return {feed_end_cause::failed, text()};
  }
}

std::string metadata_change::encode() const {
  return metadata ? encode_bson(*metadata) : std::string();
}

void metadata_change::decode(const std::string& encoded) {
  metadata = std::make_shared<const object>(encoded.empty() ? object{} : decode_bson(encoded));
}

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<event_batch>("rheo.event_batch");
  cfg.add_message_type<metadata_change>("rheo.metadata_change");
  cfg.add_message_type<feed_end>("rheo.feed_end");
  cfg.add_message_type<close_reason>("rheo.close_reason");
  cfg.add_message_type<store_request>("rheo.store_request");
  cfg.add_message_type<session_actor>("rheo.session_actor");
  cfg.add_message_type<subscription_actor>("rheo.subscription_actor");
  cfg.add_message_type<watcher_actor>("rheo.watcher_actor");
  cfg.add_message_type<broker_actor>("rheo.broker_actor");
  cfg.add_message_type<feed_listener_actor>("rheo.feed_listener_actor");
  cfg.add_message_type<feed_receiver_actor>("rheo.feed_receiver_actor");
  cfg.add_message_type<edge_node_actor>("rheo.edge_node_actor");
  cfg.add_message_type<edge_presence_actor>("rheo.edge_presence_actor");
  cfg.add_message_type<core_peer_actor>("rheo.core_peer_actor");
  cfg.add_message_type<gatekeeper_actor>("rheo.gatekeeper_actor");
}

} // namespace rheo
