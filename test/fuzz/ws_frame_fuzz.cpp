// Fuzzes the WebSocket frame parser (net/ws_frame.hpp) as a ws_connection feeds it: the
// bytes arrive in reads of arbitrary sizes. Input: byte 0 picks the read size (1..256), the
// rest is what the client sends. The parser must answer need_more, a frame, or an error
// with a close code; frames it returns obey RFC 6455 (control frames final and at most 125
// bytes, text messages valid UTF-8, no message beyond the limit).
#include "fuzz_support.hpp"
#include "net/ws_frame.hpp"

#include <string>

using namespace rheo;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t read_size = std::size_t(data[0]) + 1;
  std::string_view input = fuzz::as_text(data + 1, size - 1);
  constexpr std::size_t max_message = 4096;
  ws::frame_parser parser(max_message);
  ws::frame_parser::frame f;
  std::string text_message; // the fragmented text message under way
  bool in_text = false;
  while (!input.empty()) {
    std::string_view chunk = input.substr(0, read_size);
    input.remove_prefix(chunk.size());
    while (!chunk.empty()) {
      auto st = parser.parse(chunk, f);
      if (st == ws::frame_parser::status::need_more) {
        if (!chunk.empty()) fuzz::fail("need_more with bytes left");
        break;
      }
      if (st == ws::frame_parser::status::error) {
        if (parser.error_code() < 1000 || parser.error_reason().empty())
          fuzz::fail("an error without a close code or reason");
        // The connection sends its close frame: the reason must fit one.
        (void)ws::close_frame(parser.error_code(), parser.error_reason());
        return 0;
      }
      const bool control = (static_cast<int>(f.op) & 0x8) != 0;
      if (control) {
        if (!f.fin || f.payload.size() > 125) fuzz::fail("bad control frame passed");
        std::string pong;
        ws::append_frame(pong, ws::opcode::pong, f.payload);
        continue;
      }
      if (f.op == ws::opcode::text) {
        in_text = true;
        text_message.clear();
      }
      if (f.op == ws::opcode::text || (f.op == ws::opcode::continuation && in_text))
        text_message += f.payload;
      if (text_message.size() > max_message) fuzz::fail("message beyond the limit passed");
      if (f.fin) {
        if (in_text && !ws::is_valid_utf8(text_message)) fuzz::fail("invalid UTF-8 text passed");
        in_text = false;
        text_message.clear();
      }
    }
  }
  return 0;
}
