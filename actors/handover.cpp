#include "actors/handover.hpp"

#include "storage/document/change_event.hpp"
#include "storage/store.hpp"

namespace rheo {

handover::handover(const std::string& token, std::optional<std::string> boundary)
    : boundary_(std::move(boundary)) {
  if (is_event_token(token)) last_ = token; // the consumer has everything up to it
}

bool handover::given(const std::string& token) const {
  return last_ && !token_before(*last_, token);
}

const std::string* handover::first_held() const {
  for (auto& b : held_)
    if (!b->empty()) return event_token(b->front());
  return nullptr;
}

bool handover::hold(batch live) {
  if (live && !live->empty()) {
    held_events_ += live->size();
    held_.push_back(std::move(live));
  }
  return ready();
}

bool handover::live_position(const std::string& token) {
  if (boundary_ || !held_.empty() || token.empty()) return false;
  boundary_ = token;
  return ready();
}

handover::replay_step handover::replayed(const std::vector<object>& events) {
  confirmed_ = true;
  const std::string* first = first_held();
  replay_step step;
  for (auto& ev : events) {
    const std::string* t = event_token(ev);
    if (!t || given(*t)) continue; // before the token, or given already
    // Past the boundary, or at the first held event: this one and the rest come live (held
    // already, or still on their way).
    if ((boundary_ && token_before(*boundary_, *t)) || (first && !token_before(*t, *first))) {
      step.ready = true;
      return step;
    }
    step.send.push_back(&ev);
    last_ = *t;
  }
  step.ready = ready();
  return step;
}

bool handover::replay_position(const std::string& token) {
  if (token.empty()) return false;
  confirmed_ = true;
  if (!given(token)) last_ = token;
  return ready();
}

bool handover::ready() const {
  if (!confirmed_ || !last_) return false; // the store may yet refuse the token
  if (boundary_ && given(*boundary_)) return true;
  const std::string* first = first_held();
  return first && given(*first);
}

std::vector<const object*> handover::rest() const {
  std::vector<const object*> out;
  for (auto& b : held_)
    for (auto& ev : *b)
      if (const std::string* t = event_token(ev); !t || !given(*t)) out.push_back(&ev);
  return out;
}

} // namespace rheo
