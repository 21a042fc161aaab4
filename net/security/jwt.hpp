// Verification of JWT bearer tokens: HS256 with a shared secret or RS256 with a PEM public
// key (OpenSSL); the signature, exp and nbf, the issuer and audience when configured, and
// the principal from the user and roles claims.
//
// Thread-safety: immutable after construction; verify() may be called concurrently from
// any thread.
#pragma once

#include "net/security/principal.hpp"

#include <memory>
#include <optional>
#include <string>

struct evp_pkey_st; // OpenSSL's EVP_PKEY

namespace rheo {

class jwt_verifier {
public:
  /// Reads config key 'jwt' ({algorithm, key, issuer?, audience?, userClaim?, rolesClaim?});
  /// throws config_error.
  explicit jwt_verifier(const std::string& config_json);

  /// The principal of a valid token; nullopt with `error` set otherwise.
  std::optional<principal> verify(const std::string& token, std::string& error) const;

private:
  struct key_free {
    void operator()(evp_pkey_st* key) const;
  };

  std::string algorithm_; // HS256 | RS256
  std::string key_;       // secret, or PEM public key
  std::string issuer_;
  std::string audience_;
  std::string user_claim_ = "sub";
  std::string roles_claim_ = "roles";
  std::unique_ptr<evp_pkey_st, key_free> public_key_; // RS256
};

} // namespace rheo
