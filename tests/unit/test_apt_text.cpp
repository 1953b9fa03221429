// deb822 text held in memory is scanned stanza by stanza where it lies; libapt-pkg's own
// pkgTagFile, reading the same bytes from a file, is the peer that decides what the stanzas
// are and which texts are unparsable.
#include <apt-pkg/error.h>
#include <apt-pkg/fileutl.h>
#include <apt-pkg/tagfile.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/debian/apt_text.hpp"
#include "src/base/unique_fd.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {
namespace {

// A stanza as the tests compare it: every field that the indices and status use.
std::string summary(const pkgTagSection& s) {
  return s.FindS("Package") + "|" + s.FindS("Version") + "|" + s.FindS("SHA256") + "|" +
         s.FindS("Description") + "|" + std::to_string(s.Count());
}

std::optional<std::vector<std::string>> scanned(const std::string& text) {
  std::vector<std::string> out;
  auto done = for_each_stanza(text, "test text",
                              [&](const pkgTagSection& s) { out.push_back(summary(s)); });
  if (!done) return std::nullopt;
  return out;
}

// What pkgTagFile reads from `fd`; nothing when it reports an error.
std::optional<std::vector<std::string>> by_libapt_tag_file(FileFd& fd) {
  pkgTagFile tags(&fd);
  pkgTagSection section;
  std::vector<std::string> out;
  while (tags.Step(section)) out.push_back(summary(section));
  if (_error->PendingError()) {
    _error->Discard();
    return std::nullopt;
  }
  return out;
}

std::optional<std::vector<std::string>> by_libapt_tag_file(const std::string& text) {
  UniqueFd memory(::memfd_create("peer", MFD_CLOEXEC));
  EXPECT_TRUE(memory);
  EXPECT_EQ(::write(memory.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  EXPECT_EQ(::lseek(memory.get(), 0, SEEK_SET), 0);
  FileFd fd;
  EXPECT_TRUE(fd.OpenDescriptor(memory.release(), FileFd::ReadOnly, FileFd::None, true));
  return by_libapt_tag_file(fd);
}

const std::string kStanzas =
    "Package: alpha\nVersion: 1.0-1\nSHA256: aa\nDescription: first\n continued line\n .\n"
    " after a paragraph\n\n"
    "Package: beta\nVersion: 2:3.4\nSHA256: bb\n\n\n\n"
    "Package: gamma\nVersion: 5\nDescription: last\n";

TEST(AptText, StanzasAreTheOnesLibaptsTagFileReads) {
  const std::vector<std::string> texts = {
      kStanzas,                                 // the last stanza ends with one newline
      kStanzas + "\n",                          // ... with a blank line
      kStanzas + "\n\n\n",                      // ... with several
      kStanzas.substr(0, kStanzas.size() - 1),  // ... with none
      "\n\n" + kStanzas,                        // blank lines before the first
      "\n" + kStanzas,
      "Package: alpha\n\n continuation with no field\nPackage: beta\n",
      "Package: alpha\n\nno field at all\n\nPackage: beta\n",  // libapt-pkg skips that line
      "Package: only\n",
      "",
      "\n\n",
      "\n",
  };
  for (const auto& text : texts) {
    auto ours = scanned(text);
    auto peer = by_libapt_tag_file(text);
    ASSERT_TRUE(peer) << "libapt-pkg refused a text the test takes as valid: " << text;
    ASSERT_TRUE(ours) << text;
    EXPECT_EQ(*ours, *peer) << text;
  }
  auto ours = scanned(kStanzas);
  ASSERT_TRUE(ours);
  ASSERT_EQ(ours->size(), 3u);
  EXPECT_EQ((*ours)[0], "alpha|1.0-1|aa|first\n continued line\n .\n after a paragraph|4");
  EXPECT_EQ((*ours)[2], "gamma|5||last|3");
}

// This machine's own Packages indices, read whole and scanned in memory, against
// pkgTagFile reading the same files itself.
TEST(AptText, TheMachinesIndicesScanAsLibaptReadsThem) {
  std::vector<std::filesystem::path> indices;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/var/lib/apt/lists", ec))
    if (e.path().filename().string().find("_Packages") != std::string::npos)
      indices.push_back(e.path());
  DIGESTFS_REQUIRE(!indices.empty(), "apt lists with a Packages index (apt-get update)");
  for (const auto& index : indices) {
    auto text = read_apt_file(index.string());
    ASSERT_TRUE(text) << text.error().message;
    auto ours = scanned(*text);
    ASSERT_TRUE(ours) << index;
    FileFd fd;
    ASSERT_TRUE(fd.Open(index.string(), FileFd::ReadOnly, FileFd::Extension)) << index;
    auto peer = by_libapt_tag_file(fd);
    ASSERT_TRUE(peer) << "libapt-pkg refused " << index;
    EXPECT_GT(peer->size(), 0u) << index;
    EXPECT_TRUE(*ours == *peer) << index << ": " << ours->size() << " stanzas scanned, "
                                << peer->size() << " read by pkgTagFile, or some differ";
  }
}

TEST(AptText, ATextLibaptCannotParseIsAnErrorAndSoIsItHere) {
  for (const std::string text : {"no field at all\n", "Package: alpha\n\nno field at all\n"}) {
    EXPECT_FALSE(by_libapt_tag_file(text)) << "libapt-pkg now parses: " << text;
    EXPECT_FALSE(scanned(text)) << text;
    _error->Discard();
  }
}

}  // namespace
}  // namespace digestfs::test
