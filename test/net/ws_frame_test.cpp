// WebSocket framing: server frames, and the parser of client frames with its limits.
#include <boost/test/unit_test.hpp>

#include "net/ws_frame.hpp"
#include "test/test_support.hpp"

#include <random>

using namespace rheo::ws;

using rheo::test::client_frame;

BOOST_AUTO_TEST_SUITE(ws_frame_test)

BOOST_AUTO_TEST_CASE(server_frames_use_the_shortest_length_encoding) {
  std::string small, mid, big;
  append_frame(small, opcode::text, std::string(125, 'a'));
  append_frame(mid, opcode::text, std::string(126, 'a'));
  append_frame(big, opcode::text, std::string(70000, 'a'));
  BOOST_TEST(small.size() == 127u);
  BOOST_TEST(static_cast<unsigned char>(small[0]) == 0x81);
  BOOST_TEST(static_cast<unsigned char>(small[1]) == 125);
  BOOST_TEST(mid.size() == 126u + 4);
  BOOST_TEST(static_cast<unsigned char>(mid[1]) == 126);
  BOOST_TEST(big.size() == 70000u + 10);
  BOOST_TEST(static_cast<unsigned char>(big[1]) == 127);
}

BOOST_AUTO_TEST_CASE(close_frames_carry_code_and_a_truncated_reason) {
  auto f = close_frame(1013, std::string(300, 'r'));
  BOOST_TEST(static_cast<unsigned char>(f[0]) == 0x88);
  BOOST_TEST(static_cast<unsigned char>(f[1]) == 125);
  BOOST_TEST(static_cast<unsigned char>(f[2]) == 1013 >> 8);
  BOOST_TEST(static_cast<unsigned char>(f[3]) == (1013 & 0xFF));
}

BOOST_AUTO_TEST_CASE(masked_frames_parse_across_arbitrary_splits) {
  std::string stream = client_frame(0x81, "hello") + client_frame(0x89, "p") +
                       client_frame(0x82, std::string(300, 'z')) + client_frame(0x01, "frag") +
                       client_frame(0x80, "ment");
  for (std::size_t step : {1u, 2u, 3u, 7u, 1000u}) {
    frame_parser p(1024);
    std::vector<frame_parser::frame> frames;
    for (std::size_t i = 0; i < stream.size(); i += step) {
      std::string_view chunk(stream.data() + i, std::min(step, stream.size() - i));
      frame_parser::frame f;
      while (!chunk.empty()) {
        auto st = p.parse(chunk, f);
        BOOST_REQUIRE(st != frame_parser::status::error);
        if (st == frame_parser::status::frame_ready) frames.push_back(f);
      }
    }
    BOOST_REQUIRE(frames.size() == 5u);
    BOOST_TEST(frames[0].payload == "hello");
    BOOST_TEST((frames[1].op == opcode::ping));
    BOOST_TEST(frames[2].payload == std::string(300, 'z'));
    BOOST_TEST(!frames[3].fin);
    BOOST_TEST((frames[4].op == opcode::continuation));
  }
}

namespace {
/// The close code the parser fails `bytes` with (0: none).
std::uint16_t error_of(const std::string& bytes, std::size_t max = 1024) {
  frame_parser p(max);
  frame_parser::frame f;
  std::string_view v(bytes);
  while (!v.empty()) {
    auto st = p.parse(v, f);
    if (st == frame_parser::status::error) return p.error_code();
    if (st == frame_parser::status::need_more) break;
  }
  return 0;
}
} // namespace

BOOST_AUTO_TEST_CASE(protocol_violations_are_errors_with_close_codes) {
  BOOST_TEST(error_of(std::string("\x81\x02hi", 4)) == close_code::protocol_error); // unmasked
  BOOST_TEST(error_of(client_frame(0xC1, "x")) == close_code::protocol_error);      // RSV1
  BOOST_TEST(error_of(client_frame(0x83, "x")) == close_code::protocol_error);      // opcode 3
  BOOST_TEST(error_of(client_frame(0x80, "x")) == close_code::protocol_error); // stray continuation
  BOOST_TEST(error_of(client_frame(0x09, "x")) == close_code::protocol_error); // fragmented ping
  BOOST_TEST(error_of(client_frame(0x89, std::string(126, 'x'))) == close_code::protocol_error);
  BOOST_TEST(error_of(client_frame(0x01, "a") + client_frame(0x81, "b")) ==
             close_code::protocol_error); // new message inside a fragmented one
  BOOST_TEST(error_of(client_frame(0x81, std::string(2000, 'x'))) == close_code::too_big);
  BOOST_TEST(error_of(client_frame(0x01, std::string(600, 'x')) +
                      client_frame(0x80, std::string(600, 'x'))) == close_code::too_big);
  BOOST_TEST(error_of(client_frame(0x88, "x")) == close_code::protocol_error); // 1-byte close
  BOOST_TEST(error_of(client_frame(0x81, "fine")) == 0);
}

BOOST_AUTO_TEST_CASE(random_bytes_never_crash_the_parser) {
  std::mt19937 rng(42);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (auto& b : bytes)
      b = static_cast<char>(rng());
    frame_parser p(256);
    frame_parser::frame f;
    std::string_view v(bytes);
    while (!v.empty()) {
      auto st = p.parse(v, f);
      if (st == frame_parser::status::error) {
        // An error always names a close code for the client.
        BOOST_REQUIRE(p.error_code() >= 1000);
        break;
      }
      if (st == frame_parser::status::frame_ready) BOOST_REQUIRE(f.payload.size() <= 256u);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_utf8_check_accepts_every_valid_form_up_to_the_boundaries) {
  const std::string good[] = {
      "",
      "plain ASCII \x7F",
      "\xC2\x80",                                   // U+0080, the first 2-byte code point
      "\xDF\xBF",                                   // U+07FF
      "\xE0\xA0\x80",                               // U+0800, the first 3-byte code point
      "\xED\x9F\xBF",                               // U+D7FF, just below the surrogates
      "\xEE\x80\x80",                               // U+E000, just above them
      "\xEF\xBF\xBF",                               // U+FFFF
      "\xF0\x90\x80\x80",                           // U+10000, the first 4-byte code point
      "\xF4\x8F\xBF\xBF",                           // U+10FFFF, the last code point
      "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", // é, €, 😀
  };
  for (const auto& s : good)
    BOOST_TEST(is_valid_utf8(s), "rejected valid UTF-8 of " << s.size() << " bytes");
}

BOOST_AUTO_TEST_CASE(the_utf8_check_rejects_each_kind_of_invalid_sequence) {
  const std::pair<const char*, std::string> bad[] = {
      {"lone continuation byte", "\x80"},
      {"overlong 2-byte NUL", "\xC0\x80"},
      {"overlong 2-byte 'A'", "\xC1\x81"},
      {"overlong 3-byte", "\xE0\x9F\xBF"},
      {"overlong 4-byte", "\xF0\x8F\xBF\xBF"},
      {"high surrogate U+D800", "\xED\xA0\x80"},
      {"low surrogate U+DFFF", "\xED\xBF\xBF"},
      {"U+110000", "\xF4\x90\x80\x80"},
      {"lead byte F5", "\xF5\x80\x80\x80"},
      {"byte FF", "\xFF"},
      {"truncated 2-byte at the end", "ab\xC3"},
      {"truncated 3-byte at the end", "\xE2\x82"},
      {"truncated 4-byte at the end", "\xF0\x9F\x98"},
      {"truncated sequence before ASCII", "\xE2\x82z"},
      {"two lead bytes", "\xC3\xC3\xA9"},
  };
  for (const auto& [what, s] : bad)
    BOOST_TEST(!is_valid_utf8(s), "accepted " << what);
}

BOOST_AUTO_TEST_CASE(the_utf8_check_accepts_a_code_point_split_between_feeds) {
  const std::string s = "a\xF0\x9F\x98\x80z";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    utf8_validator v;
    BOOST_TEST(v.feed(s.substr(0, cut)));
    BOOST_TEST(v.complete() == (cut < 2 || cut >= 5), "cut at " << cut);
    BOOST_TEST(v.feed(s.substr(cut)));
    BOOST_TEST(v.complete());
  }
  utf8_validator v;
  BOOST_TEST(v.feed("\xED"));
  BOOST_TEST(!v.feed("\xA0\x80")); // a surrogate, split: still refused
  BOOST_TEST(!v.complete());
}

BOOST_AUTO_TEST_CASE(text_messages_and_close_reasons_that_are_not_utf8_fail_with_1007) {
  BOOST_TEST(error_of(client_frame(0x81, "caf\xC3\xA9")) == 0);
  BOOST_TEST(error_of(client_frame(0x81, "caf\xC3")) == close_code::invalid_payload);
  BOOST_TEST(error_of(client_frame(0x81, "\xED\xA0\x80")) == close_code::invalid_payload);
  // Binary messages carry any bytes.
  BOOST_TEST(error_of(client_frame(0x82, "\xFF\xC0")) == 0);
  // A code point split between fragments, with a ping between them, is valid.
  BOOST_TEST(error_of(client_frame(0x01, "a\xF0\x9F") + client_frame(0x89, "") +
                      client_frame(0x00, "\x98") + client_frame(0x80, "\x80z")) == 0);
  // A message whose last fragment leaves a sequence open is not.
  BOOST_TEST(error_of(client_frame(0x01, "a\xF0\x9F") + client_frame(0x80, "\x98")) ==
             close_code::invalid_payload);
  // Invalid bytes fail at the fragment that holds them, before the message ends.
  BOOST_TEST(error_of(client_frame(0x01, "ok") + client_frame(0x00, "\xC0\xAF")) ==
             close_code::invalid_payload);
  // Continuations of a binary message are not checked.
  BOOST_TEST(error_of(client_frame(0x02, "\xF0") + client_frame(0x80, "\xFF")) == 0);
  // After a binary message, a text message is checked again.
  BOOST_TEST(error_of(client_frame(0x82, "\xFF") + client_frame(0x81, "\xFF")) ==
             close_code::invalid_payload);

  auto close_with = [](std::string reason) { return client_frame(0x88, "\x03\xE8" + reason); };
  BOOST_TEST(error_of(close_with("bye \xE2\x9C\x8B")) == 0);
  BOOST_TEST(error_of(close_with("")) == 0);
  BOOST_TEST(error_of(client_frame(0x88, "")) == 0);
  BOOST_TEST(error_of(close_with("bye \xE2\x9C")) == close_code::invalid_payload);
}

BOOST_AUTO_TEST_SUITE_END()
