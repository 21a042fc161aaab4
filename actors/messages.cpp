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

void event_batch::decode(const std::vector<std::string>& encoded) {
  auto v = std::make_shared<std::vector<object>>();
  v->reserve(encoded.size());
  for (auto& e : encoded)
    v->push_back(decode_bson(e));
  events = std::move(v);
  wire.reset();
}

event_batch to_batch(const std::vector<change_event>& events) {
  auto objects = std::make_shared<std::vector<object>>();
  objects->reserve(events.size());
  for (auto& e : events)
    objects->push_back(e.to_object());
  return event_batch{std::move(objects), std::make_shared<event_batch::wire_form>()};
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
  cfg.add_message_type<session_actor>("rheo.session_actor");
  cfg.add_message_type<subscription_actor>("rheo.subscription_actor");
  cfg.add_message_type<watcher_actor>("rheo.watcher_actor");
  cfg.add_message_type<broker_actor>("rheo.broker_actor");
  cfg.add_message_type<feed_listener_actor>("rheo.feed_listener_actor");
  cfg.add_message_type<feed_receiver_actor>("rheo.feed_receiver_actor");
  cfg.add_message_type<edge_node_actor>("rheo.edge_node_actor");
  cfg.add_message_type<core_peer_actor>("rheo.core_peer_actor");
  cfg.add_message_type<gatekeeper_actor>("rheo.gatekeeper_actor");
}

} // namespace rheo
