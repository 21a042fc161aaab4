// Who a request comes from once authenticated: the user's id, roles and the document
// @user stands for in ACL values and stream pipelines.
//
// Thread-safety: a plain value and a free function without shared state; safe from any
// thread.
#pragma once

#include "storage/document/value.hpp"

#include <string>
#include <vector>

namespace rheo {

/// An authenticated user as @user sees it: {_id, roles, ...JWT claims}.
struct principal {
  std::string id;
  std::vector<std::string> roles;
  object document;
};

/// The principal `id` with `roles`; the fields of `extra` (JWT claims) other than _id and
/// roles join its document.
principal make_principal(const std::string& id, const std::vector<std::string>& roles,
                         const object& extra = {});

} // namespace rheo
