#include "net/ws_frame.hpp"

namespace rheo::ws {

void append_frame(std::string& out, opcode op, std::string_view payload) {
  out += static_cast<char>(0x80 | static_cast<std::uint8_t>(op));
  std::size_t n = payload.size();
  if (n < 126) {
    out += static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(126);
    out += static_cast<char>((n >> 8) & 0xFF);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(127);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF);
  }
  out.append(payload.data(), payload.size());
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xFF);
  if (reason.size() > 123) reason = reason.substr(0, 123);
  payload.append(reason.data(), reason.size());
  std::string out;
  append_frame(out, opcode::close, payload);
  return out;
}

frame_parser::status frame_parser::fail(std::uint16_t code, std::string reason) {
  error_code_ = code;
  error_reason_ = std::move(reason);
  return status::error;
}

frame_parser::status frame_parser::parse(std::string_view& data, frame& out) {
  if (error_code_) return status::error;
  // Header: 2 bytes, then extended length (0, 2 or 8), then the 4-byte mask.
  while (header_len_ == 0 || header_.size() < header_len_) {
    if (data.empty()) return status::need_more;
    header_ += data.front();
    data.remove_prefix(1);
    if (header_.size() == 2) {
      auto b0 = static_cast<std::uint8_t>(header_[0]);
      auto b1 = static_cast<std::uint8_t>(header_[1]);
      if (b0 & 0x70) return fail(close_code::protocol_error, "reserved bits set");
      auto op = b0 & 0x0F;
      bool control = op & 0x8;
      if (op != 0x0 && op != 0x1 && op != 0x2 && op != 0x8 && op != 0x9 && op != 0xA)
        return fail(close_code::protocol_error, "unknown opcode");
      if (!(b1 & 0x80)) return fail(close_code::protocol_error, "client frames must be masked");
      std::uint8_t len7 = b1 & 0x7F;
      if (control && (!(b0 & 0x80) || len7 > 125))
        return fail(close_code::protocol_error, "invalid control frame");
      if (!control) {
        if (op == 0x0 && !in_fragmented_message_)
          return fail(close_code::protocol_error, "unexpected continuation frame");
        if (op != 0x0 && in_fragmented_message_)
          return fail(close_code::protocol_error, "expected a continuation frame");
      }
      header_len_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
      payload_len_ = len7 < 126 ? len7 : 0;
    }
    if (header_len_ && header_.size() == header_len_) {
      auto len7 = static_cast<std::uint8_t>(header_[1]) & 0x7F;
      if (len7 == 126)
        payload_len_ =
            (static_cast<std::uint8_t>(header_[2]) << 8) | static_cast<std::uint8_t>(header_[3]);
      else if (len7 == 127) {
        payload_len_ = 0;
        for (int i = 0; i < 8; ++i)
          payload_len_ = (payload_len_ << 8) | static_cast<std::uint8_t>(header_[2 + i]);
      }
      bool control = static_cast<std::uint8_t>(header_[0]) & 0x8;
      if (!control && (payload_len_ > max_message_ || message_bytes_ + payload_len_ > max_message_))
        return fail(close_code::too_big, "message too big");
    }
  }
  std::size_t want = static_cast<std::size_t>(payload_len_) - payload_.size();
  std::size_t take = std::min(want, data.size());
  payload_.append(data.data(), take);
  data.remove_prefix(take);
  if (payload_.size() < payload_len_) return status::need_more;

  const char* mask = header_.data() + header_len_ - 4;
  for (std::size_t i = 0; i < payload_.size(); ++i)
    payload_[i] = static_cast<char>(payload_[i] ^ mask[i & 3]);
  auto b0 = static_cast<std::uint8_t>(header_[0]);
  out.op = static_cast<opcode>(b0 & 0x0F);
  out.fin = b0 & 0x80;
  out.payload = std::move(payload_);
  if (!(b0 & 0x08)) {
    message_bytes_ = out.fin ? 0 : message_bytes_ + out.payload.size();
    in_fragmented_message_ = !out.fin;
  }
  if (out.op == opcode::close && out.payload.size() == 1)
    return fail(close_code::protocol_error, "invalid close payload");
  header_.clear();
  header_len_ = 0;
  payload_len_ = 0;
  payload_.clear();
  return status::frame_ready;
}

} // namespace rheo::ws
