#include "net/security/principal.hpp"

namespace rheo {

principal make_principal(const std::string& id, const std::vector<std::string>& roles,
                         const object& extra) {
  principal p;
  p.id = id;
  p.roles = roles;
  array r;
  for (auto& role : roles)
    r.emplace_back(role);
  p.document = object{{"_id", value(id)}, {"roles", value(std::move(r))}};
  for (auto& [k, v] : extra)
    if (k != "_id" && k != "roles") p.document.emplace_back(k, v);
  return p;
}

} // namespace rheo
