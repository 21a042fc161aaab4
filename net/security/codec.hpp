// The encodings credentials and JWTs are written in: base64 and base64url (libsodium), and
// a comparison of secrets in constant time (OpenSSL). Private to rheo_security.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rheo {

/// Decodes standard base64, or base64url (unpadded) when `url`; nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view in, bool url);
/// Encodes standard base64, padded.
std::string base64_encode(std::string_view in);
/// Compares two secrets in time independent of where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

} // namespace rheo
