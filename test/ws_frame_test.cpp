// WebSocket framing: server frames, and the parser of client frames with its limits.
#define BOOST_TEST_MODULE ws_frame
#include <boost/test/unit_test.hpp>

#include "net/ws_frame.hpp"
#include "test/test_support.hpp"

#include <random>

using namespace rheo::ws;

using rheo::test::client_frame;

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

BOOST_AUTO_TEST_CASE(protocol_violations_are_errors_with_close_codes) {
  auto error_of = [](const std::string& bytes, std::size_t max = 1024) {
    frame_parser p(max);
    frame_parser::frame f;
    std::string_view v(bytes);
    while (!v.empty()) {
      auto st = p.parse(v, f);
      if (st == frame_parser::status::error) return p.error_code();
      if (st == frame_parser::status::need_more) break;
    }
    return std::uint16_t{0};
  };
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
