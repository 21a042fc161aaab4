// JWT verification (net/security/jwt.cpp) on its own: HS256 and RS256 signatures, the
// algorithm the configuration names and no other (no "none", no HS256 signed with an RS256
// public key), exp and nbf, issuer and audience when configured, the user and roles claims
// (also renamed), malformed tokens, and the configuration's errors.
#include <boost/test/unit_test.hpp>

#include "config/config.hpp"
#include "net/security/jwt.hpp"
#include "test/test_support.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <chrono>
#include <memory>
#include <string>

using namespace rheo;
using rheo::test::base64;
using rheo::test::hs256_jwt;

BOOST_AUTO_TEST_SUITE(jwt_test)

namespace {

const std::string secret = "a-shared-secret-of-some-length";

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hs256_config(const std::string& extra = "") {
  return R"({"algorithm": "HS256", "key": ")" + secret + "\"" + extra + "}";
}

/// An unsigned token with the header `header`.
std::string unsigned_jwt(const std::string& header, const std::string& payload) {
  return base64(header, true) + "." + base64(payload, true) + ".";
}

struct rsa_key {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  std::string public_pem;
  rsa_key() {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    public_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
  }
  ~rsa_key() { EVP_PKEY_free(key); }
  rsa_key(const rsa_key&) = delete;
  rsa_key& operator=(const rsa_key&) = delete;

  std::string rs256(const std::string& payload) const {
    std::string signing =
        base64(R"({"alg":"RS256","typ":"JWT"})", true) + "." + base64(payload, true);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    std::size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(signing.data()),
                   signing.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(signing.data()), signing.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    return signing + "." + base64(sig, true);
  }
};

/// One RSA key for the suite (generating one takes a while).
const rsa_key& rsa() {
  static rsa_key k;
  return k;
}

std::string rs256_config() {
  std::string pem;
  for (char c : rsa().public_pem)
    pem += c == '\n' ? std::string("\\n") : std::string(1, c);
  return R"({"algorithm": "RS256", "key": ")" + pem + "\"}";
}

/// What verify() says of `token`: the user's id, or "error: <message>".
std::string verdict(const jwt_verifier& v, const std::string& token) {
  std::string error;
  auto p = v.verify(token, error);
  if (!p) return "error: " + error;
  BOOST_TEST(error.empty());
  return p->id;
}

std::string config_error_of(const std::string& json) {
  try {
    jwt_verifier v(json);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

} // namespace

BOOST_AUTO_TEST_CASE(hs256_accepts_its_signature_and_nothing_else) {
  jwt_verifier v(hs256_config());
  const std::string payload = R"({"sub": "ann", "roles": ["user", 7, "editor"], "team": "red"})";
  std::string error;
  auto p = v.verify(hs256_jwt(payload, secret), error);
  BOOST_REQUIRE(p.has_value());
  BOOST_TEST(p->id == "ann");
  // Roles: the strings of the roles claim.
  BOOST_TEST(p->roles == (std::vector<std::string>{"user", "editor"}),
             boost::test_tools::per_element());
  // The claims join the user's document (@user.team).
  BOOST_TEST(find_field(p->document, "team")->as_string() == "red");
  BOOST_TEST(find_field(p->document, "_id")->as_string() == "ann");

  BOOST_TEST(verdict(v, hs256_jwt(payload, "another-secret")) == "error: invalid JWT signature");
  // A payload changed after signing.
  auto token = hs256_jwt(payload, secret);
  auto d1 = token.find('.'), d2 = token.rfind('.');
  auto forged = token.substr(0, d1 + 1) + base64(R"({"sub": "root", "roles": ["admin"]})", true) +
                token.substr(d2);
  BOOST_TEST(verdict(v, forged) == "error: invalid JWT signature");
}

BOOST_AUTO_TEST_CASE(only_the_configured_algorithm_is_accepted) {
  jwt_verifier hs(hs256_config());
  BOOST_TEST(verdict(hs, unsigned_jwt(R"({"alg":"none"})", R"({"sub":"root"})")) ==
             "error: JWT algorithm not accepted");
  BOOST_TEST(verdict(hs, unsigned_jwt(R"({"typ":"JWT"})", R"({"sub":"root"})")) ==
             "error: JWT algorithm not accepted");
  BOOST_TEST(verdict(hs, rsa().rs256(R"({"sub":"ann"})")) == "error: JWT algorithm not accepted");
  // The classic confusion: an HS256 token whose "secret" is the RS256 public key.
  jwt_verifier rs(rs256_config());
  BOOST_TEST(verdict(rs, hs256_jwt(R"({"sub":"root"})", rsa().public_pem)) ==
             "error: JWT algorithm not accepted");
}

BOOST_AUTO_TEST_CASE(rs256_verifies_with_the_public_key) {
  jwt_verifier v(rs256_config());
  BOOST_TEST(verdict(v, rsa().rs256(R"({"sub": "bob"})")) == "bob");
  // Another key's signature.
  rsa_key other;
  BOOST_TEST(verdict(v, other.rs256(R"({"sub": "bob"})")) == "error: invalid JWT signature");
  // One signature byte changed.
  auto token = rsa().rs256(R"({"sub": "bob"})");
  char& c = token[token.size() - 20];
  c = c == 'A' ? 'B' : 'A';
  BOOST_TEST(verdict(v, token) == "error: invalid JWT signature");
}

BOOST_AUTO_TEST_CASE(exp_and_nbf_bound_the_validity) {
  jwt_verifier v(hs256_config());
  auto with = [&](const std::string& claims) {
    return verdict(v, hs256_jwt(R"({"sub": "ann", )" + claims + "}", secret));
  };
  const auto now = now_s();
  BOOST_TEST(with(R"("exp": )" + std::to_string(now + 60)) == "ann");
  BOOST_TEST(with(R"("exp": )" + std::to_string(now - 60)) == "error: JWT expired");
  BOOST_TEST(with(R"("nbf": )" + std::to_string(now - 60)) == "ann");
  BOOST_TEST(with(R"("nbf": )" + std::to_string(now + 60)) == "error: JWT not yet valid");
  BOOST_TEST(with(R"("exp": )" + std::to_string(now + 60) + R"(, "nbf": )" +
                  std::to_string(now - 60)) == "ann");
}

BOOST_AUTO_TEST_CASE(issuer_and_audience_are_checked_when_configured) {
  jwt_verifier open(hs256_config());
  jwt_verifier strict(hs256_config(R"(, "issuer": "https://id.example", "audience": "rheo")"));
  auto token = [](const std::string& claims) {
    return hs256_jwt(R"({"sub": "ann")" + claims + "}", secret);
  };
  const std::string iss = R"(, "iss": "https://id.example")";
  BOOST_TEST(verdict(open, token("")) == "ann");
  BOOST_TEST(verdict(strict, token("")) == "error: JWT issuer not accepted");
  BOOST_TEST(verdict(strict, token(iss)) == "error: JWT audience not accepted");
  BOOST_TEST(verdict(strict, token(iss + R"(, "aud": "rheo")")) == "ann");
  BOOST_TEST(verdict(strict, token(iss + R"(, "aud": ["other", "rheo"])")) == "ann");
  BOOST_TEST(verdict(strict, token(iss + R"(, "aud": ["other"])")) ==
             "error: JWT audience not accepted");
  BOOST_TEST(verdict(strict, token(R"(, "iss": "https://evil.example", "aud": "rheo")")) ==
             "error: JWT issuer not accepted");
}

BOOST_AUTO_TEST_CASE(the_user_and_roles_claims_can_be_renamed) {
  jwt_verifier v(hs256_config(R"(, "userClaim": "email", "rolesClaim": "groups")"));
  std::string error;
  auto p = v.verify(hs256_jwt(R"({"sub": "x", "email": "ann@example.com", "roles": ["admin"],
                    "groups": ["readers"]})",
                              secret),
                    error);
  BOOST_REQUIRE(p.has_value());
  BOOST_TEST(p->id == "ann@example.com");
  BOOST_TEST(p->roles == (std::vector<std::string>{"readers"}), boost::test_tools::per_element());
  BOOST_TEST(verdict(v, hs256_jwt(R"({"sub": "ann"})", secret)) ==
             "error: JWT has no \"email\" claim");
  jwt_verifier plain(hs256_config());
  BOOST_TEST(verdict(plain, hs256_jwt(R"({"sub": 42})", secret)) ==
             "error: JWT has no \"sub\" claim");
}

BOOST_AUTO_TEST_CASE(malformed_tokens_are_refused) {
  jwt_verifier v(hs256_config());
  const std::vector<std::string> tokens{"",
                                        "abc",
                                        "abc.def",
                                        "!!!.e30.sig",
                                        base64("[1]", true) + "." + base64("{}", true) + ".",
                                        base64(R"({"alg":"HS256"})", true) + "." +
                                            base64("not json", true) + ".x"};
  for (const auto& token : tokens)
    BOOST_TEST(verdict(v, token) == "error: malformed JWT", token);
}

BOOST_AUTO_TEST_CASE(the_configuration_is_checked_when_read) {
  BOOST_TEST(config_error_of(R"({"algorithm": "HS512", "key": "k"})") ==
             "config key 'jwt': \"algorithm\" must be HS256 or RS256");
  BOOST_TEST(config_error_of(R"({"algorithm": "RS256", "key": "not a pem"})") ==
             "config key 'jwt': \"key\" is not a PEM public key");
  BOOST_TEST(config_error_of(R"({"algorithm": "HS256"})") == "config key 'jwt': missing \"key\"");
  BOOST_TEST(config_error_of(R"([])") == "config key 'jwt' must be an object");
  BOOST_TEST(config_error_of(hs256_config()).empty());
}

BOOST_AUTO_TEST_SUITE_END()
