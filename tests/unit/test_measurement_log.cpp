// The ima-ng template and its hashes (known answers computed independently with Python's
// hashlib and struct), replay, the ASCII form, and the order-independent state.
#include <gtest/gtest.h>

#include <cstdio>

#include "src/base/escape.hpp"
#include "src/base/hex.hpp"
#include "src/daemon/kernel_ima.hpp"
#include "src/daemon/measurement_log.hpp"
#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

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
  // Found by fuzzing: a digest that is not hex is a parse error, not an exception.
  EXPECT_FALSE(parse_ascii_log("11 " + std::string(40, '0') + " ima-ng sha256:zz /x\n").ok());
  EXPECT_FALSE(parse_ascii_log("11 " + std::string(40, '0') + " ima-ng sha256:abc /x\n").ok());
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

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}

TEST(MeasurementLog, TheBinaryFormIsImasBinaryRuntimeMeasurements) {
  std::FILE* binary = std::tmpfile();
  ASSERT_NE(binary, nullptr);
  auto a = make_measurement("sha256", std::string(32, '\xaa'), "/usr/bin/x");
  auto b = make_measurement("sha512", std::string(64, '\x01'), "rpm:b-1-1");
  {
    MeasurementLog log(11, nullptr, binary, nullptr);
    log.add(a);
    log.add(b);
  }
  std::rewind(binary);
  std::string bytes;
  for (int c; (c = std::fgetc(binary)) != EOF;) bytes.push_back(static_cast<char>(c));
  std::fclose(binary);
  // Each entry: le32 PCR, SHA-1 template hash, le32 name length, "ima-ng", le32 data
  // length, the template data; the data hashes to the template hash.
  size_t at = 0;
  for (const Measurement* m : {&a, &b}) {
    ASSERT_LE(at + 4 + 20 + 4 + 6 + 4, bytes.size());
    EXPECT_EQ(le32(bytes, at), 11u);
    EXPECT_EQ(to_hex(reinterpret_cast<const unsigned char*>(bytes.data() + at + 4), 20),
              hex(m->template_sha1));
    EXPECT_EQ(le32(bytes, at + 24), 6u);
    EXPECT_EQ(bytes.substr(at + 28, 6), "ima-ng");
    const uint32_t len = le32(bytes, at + 34);
    EXPECT_EQ(bytes.substr(at + 38, len), ima_ng_template(m->algo, m->digest, m->name));
    at += 38 + len;
  }
  EXPECT_EQ(at, bytes.size());
}

TEST(MeasurementLog, NamesAreEscapedSoThatNoNameCanAddOrSplitALine) {
  EXPECT_EQ(ima_event_name("/usr/bin/hello"), "/usr/bin/hello");
  // The kernel's rule for spaces, and octal escapes for what the kernel writes raw.
  EXPECT_EQ(ima_event_name("/a b"), "/a_b");
  EXPECT_EQ(ima_event_name("/a\nb\tc\x7f"), "/a\\012b\\011c\\177");
  EXPECT_EQ(ima_event_name("/back\\012slash"), "/back\\134012slash") << "no escape is ambiguous";
  const std::string forged = "/x\n10 " + std::string(40, '0') + " ima-ng sha256:00 /y";
  const Measurement m = make_measurement("sha256", std::string(32, '\1'), ima_event_name(forged));
  const std::string line = ascii_line(10, m);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto parsed = parse_ascii_log(line + "\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].name, ima_event_name(forged));
  EXPECT_EQ((*parsed)[0].template_sha256, m.template_sha256);
}

TEST(MeasurementLog, ALogFieldValueEndsAtTheFirstSpaceWhateverTheNameHolds) {
  EXPECT_EQ(field_value("/usr/bin/hello"), "/usr/bin/hello");
  EXPECT_EQ(field_value("/a b\"c\\d\ne"), "/a\\040b\\042c\\134d\\012e");
  EXPECT_EQ(control_escaped("DENY path=/a\\040b\nforged"), "DENY path=/a\\040b\\012forged");
}

TEST(MeasurementLog, Pcr10IsTakenOnlyWhenTheKernelsImaMeasuresNothingIntoIt) {
  TempDir securityfs;
  EXPECT_FALSE(check_pcr_unused_by_kernel(10, securityfs.path()).ok()) << "not mounted: unknown";
  EXPECT_TRUE(check_pcr_unused_by_kernel(11, securityfs.path()).ok());
  ASSERT_TRUE(write_text(securityfs.path() / "lsm", "capability\n"));
  EXPECT_TRUE(check_pcr_unused_by_kernel(10, securityfs.path()).ok()) << "a kernel without IMA";
  std::filesystem::create_directories(securityfs.path() / "ima");
  ASSERT_TRUE(write_text(securityfs.path() / "ima/ascii_runtime_measurements",
                         "10 " + std::string(40, '1') + " ima-ng sha256:" + std::string(64, '2') +
                             " boot_aggregate\n"));
  auto taken = check_pcr_unused_by_kernel(10, securityfs.path());
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, EBUSY);
  EXPECT_NE(taken.error().message.find("1 entries"), std::string::npos) << taken.error().message;
  EXPECT_TRUE(check_pcr_unused_by_kernel(11, securityfs.path()).ok());
}

}  // namespace
}  // namespace digestfs::test
