#include "net/security/codec.hpp"

#include <openssl/crypto.h>
#include <sodium.h>

#include <cstring>

namespace rheo {

std::optional<std::string> base64_decode(std::string_view in, bool url) {
  std::string out;
  std::string s(in);
  if (url) {
    for (auto& c : s)
      c = c == '-' ? '+' : (c == '_' ? '/' : c);
    while (s.size() % 4)
      s += '=';
  }
  out.resize(s.size() / 4 * 3 + 3);
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(),
                        s.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string base64_encode(std::string_view in) {
  std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                    in.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace rheo
