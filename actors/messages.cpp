#include "actors/actors.hpp"
#include "actors/sink_support.hpp"

#include "storage/document/bson_codec.hpp"

#include <caf/actor_system_config.hpp>

namespace rheo {

std::vector<std::string> event_batch::encode() const {
  std::vector<std::string> out;
  if (!events) return out;
  out.reserve(events->size());
  for (auto& e : *events)
    out.push_back(encode_bson(e));
  return out;
}

void event_batch::decode(const std::vector<std::string>& encoded) {
  auto v = std::make_shared<std::vector<object>>();
  v->reserve(encoded.size());
  for (auto& e : encoded)
    v->push_back(decode_bson(e));
  events = std::move(v);
}

event_batch to_batch(const std::vector<change_event>& events) {
  auto objects = std::make_shared<std::vector<object>>();
  objects->reserve(events.size());
  for (auto& e : events)
    objects->push_back(e.to_object());
  return event_batch{std::move(objects)};
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
}

} // namespace rheo
