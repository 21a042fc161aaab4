#include "net/security/jwt.hpp"

#include "config/config.hpp"
#include "net/security/codec.hpp"
#include "net/security/config_json.hpp"
#include "storage/document/json.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>

namespace rheo {

jwt_verifier::jwt_verifier(const std::string& config_json) {
  auto j = parse_config_object(config_json, "jwt");
  const std::string where = "config key 'jwt'";
  algorithm_ = string_field(j, "algorithm", where);
  key_ = string_field(j, "key", where);
  issuer_ = string_field(j, "issuer", where, false);
  audience_ = string_field(j, "audience", where, false);
  if (auto uc = string_field(j, "userClaim", where, false); !uc.empty()) user_claim_ = uc;
  if (auto rc = string_field(j, "rolesClaim", where, false); !rc.empty()) roles_claim_ = rc;
  if (algorithm_ == "RS256") {
    BIO* bio = BIO_new_mem_buf(key_.data(), static_cast<int>(key_.size()));
    public_key_.reset(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!public_key_) throw config_error(where + ": \"key\" is not a PEM public key");
  } else if (algorithm_ != "HS256") {
    throw config_error(where + ": \"algorithm\" must be HS256 or RS256");
  }
}

void jwt_verifier::key_free::operator()(evp_pkey_st* key) const {
  EVP_PKEY_free(key);
}

std::optional<principal> jwt_verifier::verify(const std::string& token, std::string& error) const {
  auto d1 = token.find('.');
  auto d2 = token.find('.', d1 == std::string::npos ? d1 : d1 + 1);
  if (d1 == std::string::npos || d2 == std::string::npos) {
    error = "malformed JWT";
    return std::nullopt;
  }
  auto header = base64_decode(std::string_view(token).substr(0, d1), true);
  auto payload = base64_decode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1), true);
  auto signature = base64_decode(std::string_view(token).substr(d2 + 1), true);
  if (!header || !payload || !signature) {
    error = "malformed JWT";
    return std::nullopt;
  }
  object h, claims;
  try {
    value hv = parse_json(*header, "JWT header"), pv = parse_json(*payload, "JWT payload");
    if (!hv.is_object() || !pv.is_object()) throw api_error(400, "not objects");
    h = hv.as_object();
    claims = pv.as_object();
  } catch (const api_error&) {
    error = "malformed JWT";
    return std::nullopt;
  }
  const value* alg = find_field(h, "alg");
  if (!alg || !alg->is_string() || alg->as_string() != algorithm_) {
    error = "JWT algorithm not accepted";
    return std::nullopt;
  }
  std::string_view signed_part = std::string_view(token).substr(0, d2);
  bool ok = false;
  if (algorithm_ == "HS256") {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
         &mac_len);
    ok = constant_time_equal(std::string_view(reinterpret_cast<char*>(mac), mac_len), *signature);
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, public_key_.get()) == 1 &&
         EVP_DigestVerify(
             ctx, reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
  }
  if (!ok) {
    error = "invalid JWT signature";
    return std::nullopt;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (const value* exp = find_field(claims, "exp");
      exp && exp->is_number() && exp->as_int64() < now) {
    error = "JWT expired";
    return std::nullopt;
  }
  if (const value* nbf = find_field(claims, "nbf");
      nbf && nbf->is_number() && nbf->as_int64() > now) {
    error = "JWT not yet valid";
    return std::nullopt;
  }
  if (!issuer_.empty()) {
    const value* iss = find_field(claims, "iss");
    if (!iss || !iss->is_string() || iss->as_string() != issuer_) {
      error = "JWT issuer not accepted";
      return std::nullopt;
    }
  }
  if (!audience_.empty()) {
    const value* aud = find_field(claims, "aud");
    bool match = aud && aud->is_string() && aud->as_string() == audience_;
    if (aud && aud->is_array())
      for (auto& a : aud->as_array())
        match = match || (a.is_string() && a.as_string() == audience_);
    if (!match) {
      error = "JWT audience not accepted";
      return std::nullopt;
    }
  }
  const value* sub = find_field(claims, user_claim_);
  if (!sub || !sub->is_string()) {
    error = "JWT has no \"" + user_claim_ + "\" claim";
    return std::nullopt;
  }
  std::vector<std::string> roles;
  if (const value* r = find_field(claims, roles_claim_); r && r->is_array())
    for (auto& e : r->as_array())
      if (e.is_string()) roles.push_back(e.as_string());
  return make_principal(sub->as_string(), roles, claims);
}

} // namespace rheo
