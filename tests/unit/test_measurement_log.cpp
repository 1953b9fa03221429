// The ima-ng template and its hashes (known answers computed independently with Python's
// hashlib and struct), replay, the ASCII form, and the order-independent state.
#include <gtest/gtest.h>

#include <cstdio>

#include "cache/trust_store.hpp"
#include "src/measurement_log.hpp"

namespace digestfs::test {
namespace {

template <size_t N>
std::string hex(const std::array<unsigned char, N>& a) {
  return to_hex(a.data(), a.size());
}

TEST(MeasurementLog, ImaNgTemplateHashesAreKnownAnswers) {
  Measurement m = make_measurement("sha256", std::string(32, '\xaa'), "/usr/bin/x");
  EXPECT_EQ(hex(m.template_sha1), "1dd9a93cf3b056bfee73fd33b485127710cf1a42");
  EXPECT_EQ(hex(m.template_sha256),
            "0e08f7a5fee419cde73a4993a1256736a08d54f4e1a712a435d296f98be1874c");
  EXPECT_EQ(ascii_line(11, m), "11 1dd9a93cf3b056bfee73fd33b485127710cf1a42 ima-ng sha256:" +
                                   std::string(64, 'a') + " /usr/bin/x");
}

TEST(MeasurementLog, AnAsciiLogParsesAndReplaysToTheExtendChain) {
  std::vector<Measurement> log = {make_measurement("sha256", std::string(32, '\x01'), "rpm:a-1-1"),
                                  make_measurement("sha512", std::string(64, '\x02'), "/etc/x y")};
  std::string text;
  for (const auto& m : log) text += ascii_line(11, m) + "\n";
  auto parsed = parse_ascii_log(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].name, "/etc/x y") << "names may hold spaces";
  auto [a1, a256] = replay(log);
  auto [b1, b256] = replay(*parsed);
  EXPECT_EQ(hex(a1), hex(b1));
  EXPECT_EQ(hex(a256), hex(b256));
  EXPECT_NE(hex(a256), std::string(64, '0'));
}

TEST(MeasurementLog, ALineWhoseHashDoesNotMatchItsFieldsIsRejected) {
  std::string line = ascii_line(11, make_measurement("sha256", std::string(32, '\x01'), "/x"));
  line[3] = line[3] == '0' ? '1' : '0';
  auto parsed = parse_ascii_log(line + "\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("line 1"), std::string::npos);
  EXPECT_FALSE(parse_ascii_log("10 abc ima 1 2\n").ok());
}

TEST(MeasurementLog, TheStateDoesNotDependOnOrderAndRepeatsAreLoggedOnce) {
  auto a = make_measurement("sha256", std::string(32, '\x01'), "/a");
  auto b = make_measurement("sha256", std::string(32, '\x02'), "/b");
  std::vector<std::string> forwarded;
  MeasurementLog first(11, nullptr, nullptr,
                       [&](const Measurement& m) { forwarded.push_back(m.name); });
  MeasurementLog second(11, nullptr, nullptr, nullptr);
  first.add(a);
  first.add(b);
  first.add(a);
  second.add(b);
  second.add(a);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_EQ(forwarded, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(hex(first.state()), hex(second.state()));
}

}  // namespace
}  // namespace digestfs::test
