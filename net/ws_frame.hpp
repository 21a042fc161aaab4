// WebSocket framing (RFC 6455) for the server side: building unmasked frames that can
// be written straight to the socket (and shared between many sessions), and parsing
// the masked frames clients send.
//
// Thread-safety: free functions are stateless; a frame_parser is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rheo::ws {

enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// Close codes rheo uses (RFC 6455 section 7.4).
namespace close_code {
constexpr std::uint16_t normal = 1000;
constexpr std::uint16_t going_away = 1001;
constexpr std::uint16_t protocol_error = 1002;
constexpr std::uint16_t unsupported_data = 1003;
constexpr std::uint16_t invalid_payload = 1007;
constexpr std::uint16_t too_big = 1009;
constexpr std::uint16_t internal_error = 1011;
constexpr std::uint16_t try_again_later = 1013;
} // namespace close_code

/// Appends one complete unmasked frame (FIN set) to `out`.
void append_frame(std::string& out, opcode op, std::string_view payload);
/// A close frame with `code` and `reason` (reason truncated to fit 125 bytes).
std::string close_frame(std::uint16_t code, std::string_view reason);

/// Incremental check of strict UTF-8 (RFC 3629): overlong forms, surrogates
/// (U+D800..U+DFFF), code points above U+10FFFF and truncated sequences are invalid. A
/// sequence may be split between two feed() calls (as between two WebSocket fragments).
class utf8_validator {
public:
  /// Consumes `bytes`; false as soon as the input so far cannot be the start of valid UTF-8.
  bool feed(std::string_view bytes);
  /// Whether everything fed so far is valid UTF-8 that ends on a code point boundary.
  bool complete() const { return valid_ && needed_ == 0; }
  void reset() { *this = utf8_validator(); }

private:
  bool valid_ = true;
  int needed_ = 0;            // continuation bytes still expected
  std::uint8_t lower_ = 0x80; // allowed range of the next continuation byte
  std::uint8_t upper_ = 0xBF;
};

/// Whether `bytes` is complete, strict UTF-8.
bool is_valid_utf8(std::string_view bytes);

/// Incremental parser of client frames. Enforces: client frames are masked, reserved
/// bits clear (no extensions are negotiated), known opcodes, control frames <= 125
/// bytes and not fragmented, continuation only inside a fragmented message, a maximum
/// message size, and valid UTF-8 in text messages (checked fragment by fragment, so a
/// code point may straddle two fragments) and in close reasons (1007 otherwise).
class frame_parser {
public:
  explicit frame_parser(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

  struct frame {
    opcode op = opcode::text;
    bool fin = true;
    std::string payload; // unmasked
  };

  enum class status { need_more, frame_ready, error };

  /// Consumes bytes from `data` (advancing it) until one frame is complete, more data is
  /// needed, or the input is invalid. On error, error_code()/error_reason() say why.
  status parse(std::string_view& data, frame& out);
  std::uint16_t error_code() const { return error_code_; }
  const std::string& error_reason() const { return error_reason_; }

private:
  status fail(std::uint16_t code, std::string reason);

  std::size_t max_message_;
  std::string header_; // bytes of the header read so far
  std::uint64_t payload_len_ = 0;
  std::size_t header_len_ = 0; // full header length once known
  std::string payload_;
  bool in_fragmented_message_ = false;
  bool in_text_message_ = false; // the fragmented message under way is text
  utf8_validator text_utf8_;
  std::size_t message_bytes_ = 0;
  std::uint16_t error_code_ = 0;
  std::string error_reason_;
};

} // namespace rheo::ws
