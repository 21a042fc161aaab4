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

bool utf8_validator::feed(std::string_view bytes) {
  for (char ch : bytes) {
    if (!valid_) return false;
    auto b = static_cast<std::uint8_t>(ch);
    if (needed_ == 0) {
      // Lead bytes and, for E0/ED/F0/F4, the range of the second byte that keeps the code
      // point out of overlongs, surrogates and beyond U+10FFFF (the WHATWG decoder's table).
      if (b <= 0x7F) continue;
      if (b >= 0xC2 && b <= 0xDF) {
        needed_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower_ = 0xA0;
        if (b == 0xED) upper_ = 0x9F;
        needed_ = 2;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower_ = 0x90;
        if (b == 0xF4) upper_ = 0x8F;
        needed_ = 3;
      } else {
        valid_ = false;
      }
      continue;
    }
    if (b < lower_ || b > upper_) {
      valid_ = false;
      continue;
    }
    lower_ = 0x80;
    upper_ = 0xBF;
    --needed_;
  }
  return valid_;
}

bool is_valid_utf8(std::string_view bytes) {
  utf8_validator v;
  return v.feed(bytes) && v.complete();
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
    if (out.op == opcode::text) {
      in_text_message_ = true;
      text_utf8_.reset();
    }
    // RFC 6455 8.1: a text message that is not UTF-8 fails the connection, as soon as
    // the fragments so far cannot be the start of UTF-8.
    if (in_text_message_) {
      if (!text_utf8_.feed(out.payload) || (out.fin && !text_utf8_.complete()))
        return fail(close_code::invalid_payload, "text message is not valid UTF-8");
      if (out.fin) in_text_message_ = false;
    }
  }
  if (out.op == opcode::close && out.payload.size() == 1)
    return fail(close_code::protocol_error, "invalid close payload");
  if (out.op == opcode::close && out.payload.size() > 2 &&
      !is_valid_utf8(std::string_view(out.payload).substr(2)))
    return fail(close_code::invalid_payload, "close reason is not valid UTF-8");
  header_.clear();
  header_len_ = 0;
  payload_len_ = 0;
  payload_.clear();
  return status::frame_ready;
}

} // namespace rheo::ws
