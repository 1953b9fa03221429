// The Debian source, end to end: a throwaway archive (InRelease -> Packages -> .deb) and a
// root installed from it by dpkg, mounted and read through digestfs; every broken link of the
// chain rejected with its reason and nothing of it trusted; the sealed cache of .deb lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/support/mount_fixture.hpp"
#include "tests/support/swtpm.hpp"

namespace digestfs::test {
namespace {

CommandOutput cache_tool(const std::string& args) {
  return run_captured(std::string(DIGESTFS_CACHE_BINARY) + " " + args);
}

class DebianSource : public MountFixture {
 protected:
  void SetUp() override {
    MountFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    DIGESTFS_REQUIRE(!built_debian_fixtures().empty(),
                     "Debian test fixtures (dpkg-deb, apt-ftparchive, gpg)");
    deb = built_debian_fixtures();
    // Each test damages its own copy of the root and the lists.
    root = work.path() / "deb-root";
    ASSERT_EQ(run_shell("cp -a " + (deb / "root").string() + " " + root.string()), 0);
    lists = work.path() / "lists";
    ASSERT_EQ(run_shell("cp -a " + (deb / "lists").string() + " " + lists.string()), 0);
    std::filesystem::remove_all(keys);
    std::filesystem::create_directories(keys);
    std::filesystem::copy(deb / "keys-binary/archive.gpg", keys / "archive.gpg");
  }

  std::string sources(const std::filesystem::path& with_lists) const {
    return "--keys " + keys.string() + " --root " + root.string() + " --apt-lists " +
           with_lists.string();
  }
  std::string sources() const { return sources(lists); }

  std::filesystem::path deb, lists;
};

TEST_F(DebianSource, MountServesPackagedFilesAndRefusesTamperedOnes) {
  mount(",apt-lists=" + lists.string() + ",unknown=deny");
  EXPECT_EQ(slurp(mnt / "usr/bin/dfs-deb-hello"), "#!/bin/sh\necho hello from a deb\n");
  EXPECT_EQ(slurp(mnt / "usr/share/dfs-deb/data-link.txt"), "packaged data\n") << "a hard link";
  EXPECT_EQ(std::filesystem::read_symlink(mnt / "usr/bin/dfs-deb-link"), "dfs-deb-hello");
  // Packaged as ./bin/dfs-deb-merged: on a merged-/usr root it stands at /usr/bin.
  EXPECT_EQ(slurp(mnt / "usr/bin/dfs-deb-merged"), "#!/bin/sh\necho merged\n");
  EXPECT_EQ(read_file(mnt / "usr/lib/dfs-deb/extra.bin").bytes.size(), 100000u)
      << "a .deb with a zstd data member, cached under its epoch's name";

  {
    std::ofstream behind(root / "usr/lib/dfs-deb/extra.bin", std::ios::in | std::ios::out);
    behind << "y";
  }
  ReadResult tampered = read_file(mnt / "usr/lib/dfs-deb/extra.bin");
  EXPECT_EQ(tampered.error, EACCES);
  EXPECT_TRUE(tampered.bytes.empty());
  std::ofstream(root / "usr/bin/dfs-deb-intruder") << "#!/bin/sh\n";
  EXPECT_EQ(read_file(mnt / "usr/bin/dfs-deb-intruder").error, EACCES) << "in no package";
  std::string log = log_text();
  EXPECT_NE(log.find("DENY path=/usr/lib/dfs-deb/extra.bin"), std::string::npos) << log;
  EXPECT_NE(log.find("DENY path=/usr/bin/dfs-deb-intruder"), std::string::npos) << log;
}

TEST_F(DebianSource, IndexesEveryInstalledFileWithConffilesMarked) {
  CommandOutput keys_out = cache_tool("--keys " + keys.string() + " keys");
  EXPECT_NE(keys_out.out.find("digestfs archive <archive@digestfs.invalid>"), std::string::npos)
      << "a binary keyring, as Debian ships its keys: " << keys_out.out << keys_out.err;
  CommandOutput list = cache_tool(sources() + " list");
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("/etc/dfs-deb.conf sha256:" + sha256_hex("setting = 1\n") +
                          " 12 100644 root root c dfs-deb-base_1.0-1_all"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("/usr/bin/dfs-deb-link - 13 120777 root root - dfs-deb-base_1.0-1_all -> "
                          "dfs-deb-hello"),
            std::string::npos);
  EXPECT_NE(list.out.find("dfs-deb-extra_2:1.0-1_amd64"), std::string::npos);
  EXPECT_EQ(list.out.find("/bin/dfs-deb-merged"), list.out.find("/usr/bin/dfs-deb-merged") + 4)
      << "only at its merged-/usr path";
  // Measured and exported by the .deb's own SHA-256, under a name that says it is one.
  CommandOutput policy = cache_tool(sources() + " export --format keylime");
  EXPECT_NE(policy.out.find("\"deb:dfs-deb-base_1.0-1_all\":[\"" +
                            sha256_hex(slurp(deb / "pool/dfs-deb-base_1.0-1_all.deb")) + "\"]"),
            std::string::npos)
      << policy.out.substr(0, 400);
  CommandOutput stats = cache_tool(sources() + " stats");
  EXPECT_NE(stats.out.find("packages accepted: 2"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("packages rejected: 0"), std::string::npos) << stats.out;
}

TEST_F(DebianSource, AnInReleaseSignedByAnotherKeyVouchesForNothing) {
  CommandOutput r = cache_tool(sources(deb / "other-lists") + " rejected");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("(index) untrusted-key " + (deb / "other-lists").string() +
                       "/test.invalid_debian_dists_stable_InRelease: no good signature by a key "
                       "of the trust store"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("dfs-deb-base_1.0-1_all unsigned"), std::string::npos) << r.out;
  EXPECT_EQ(cache_tool(sources(deb / "other-lists") + " lookup /usr/bin/dfs-deb-hello").status, 1);
}

TEST_F(DebianSource, AForgedPackagesIndexVouchesForNothing) {
  // The forger's Packages names another .deb hash for dfs-deb-base; the InRelease is intact.
  auto packages = lists / "test.invalid_debian_dists_stable_main_binary-amd64_Packages.xz";
  ASSERT_EQ(run_shell("xz -dc " + packages.string() + " | sed 's/^SHA256: ./SHA256: 0/' | xz > " +
                      packages.string() + ".new && mv " + packages.string() + ".new " +
                      packages.string()),
            0);
  CommandOutput r = cache_tool(sources() + " rejected");
  EXPECT_NE(r.out.find("(index) corrupted " + packages.string() +
                       ": index does not match its signed Release"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(cache_tool(sources() + " lookup /usr/bin/dfs-deb-hello").status, 1);
  EXPECT_EQ(cache_tool(sources() + " lookup /usr/lib/dfs-deb/extra.bin").status, 1);
}

TEST_F(DebianSource, ADebWhoseHashIsNotTheStanzasIsRejectedAndHidesNoOther) {
  // Same name, other content: a .deb built from a changed tree.
  auto tree = work.path() / "forged";
  auto cached = root / "var/cache/apt/archives/dfs-deb-base_1.0-1_all.deb";
  ASSERT_EQ(run_shell("dpkg-deb -R " + cached.string() + " " + tree.string() +
                      " && echo 'echo forged' >> " + (tree / "usr/bin/dfs-deb-hello").string() +
                      " && dpkg-deb --root-owner-group --build " + tree.string() + " " +
                      cached.string() + " >/dev/null"),
            0);
  CommandOutput r = cache_tool(sources() + " rejected");
  EXPECT_NE(r.out.find("dfs-deb-base_1.0-1_all corrupted " + cached.string() +
                       ": the .deb's SHA-256 is "),
            std::string::npos)
      << r.out;
  EXPECT_EQ(cache_tool(sources() + " lookup /usr/bin/dfs-deb-hello").status, 1);
  EXPECT_EQ(cache_tool(sources() + " lookup /usr/lib/dfs-deb/extra.bin").status, 0);
}

TEST_F(DebianSource, TheSealedCacheSparesTheDebsAndAChangedOneIsSetAside) {
  auto cache = work.path() / "deb-cache";
  auto key = work.path() / "deb-cache.key";
  std::string with_cache =
      sources() + " --deb-cache " + cache.string() + " --deb-cache-key " + key.string();
  ASSERT_EQ(cache_tool(with_cache + " stats").status, 0);
  ASSERT_TRUE(std::filesystem::exists(cache));
  EXPECT_EQ(std::filesystem::status(key).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // With no .deb left, the index comes from the cache alone.
  std::filesystem::remove_all(root / "var/cache/apt/archives");
  std::filesystem::create_directories(root / "var/cache/apt/archives");
  CommandOutput from_cache = cache_tool(with_cache + " lookup /usr/bin/dfs-deb-hello");
  EXPECT_EQ(from_cache.status, 0) << from_cache.err;

  // One byte changed by someone without the key: set aside, nothing of it trusted.
  std::string bytes = slurp(cache);
  bytes[bytes.size() - 40] ^= 1;
  std::ofstream(cache, std::ios::binary | std::ios::trunc) << bytes;
  CommandOutput r = cache_tool(with_cache + " rejected");
  EXPECT_NE(r.out.find("(cache) corrupted " + cache.string() +
                       ": sealed cache set aside: its seal does not verify"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("dfs-deb-base_1.0-1_all unsigned"), std::string::npos)
      << "with no .deb and no usable cache, nothing is known: " << r.out;
  EXPECT_EQ(cache_tool(with_cache + " lookup /usr/bin/dfs-deb-hello").status, 1);

  // A key others may read seals nothing: the cache is set aside, and says why.
  std::filesystem::permissions(key, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  CommandOutput loose = cache_tool(with_cache + " rejected");
  EXPECT_EQ(loose.status, 0) << loose.err;
  EXPECT_NE(loose.out.find("(cache) corrupted " + cache.string() +
                           ": sealed cache set aside: "
                           "cache key " +
                           key.string() +
                           " must be a regular file only its owner (root) can read or write"),
            std::string::npos)
      << loose.out;
}

// With a TPM configured, the cache's key is sealed by it: the key file is of no use without
// that TPM, a second mount unseals it and loads from the cache with no .deb at hand, and a
// command that does not name the TPM refuses the file rather than take it for a plain key.
TEST_F(DebianSource, WithATpmTheCacheKeyIsSealedByIt) {
  DIGESTFS_REQUIRE(installed({"swtpm"}), "swtpm");
  std::filesystem::create_directories(work.path() / "tpm");
  Swtpm tpm(work.path() / "tpm");
  auto cache = work.path() / "deb-cache";
  auto key = work.path() / "deb-cache.key";
  const std::string options = ",apt-lists=" + lists.string() + ",deb-cache=" + cache.string() +
                              ",deb-cache-key=" + key.string() + ",tpm=" + tpm.tcti();
  mount(options);
  unmount();
  EXPECT_EQ(slurp(key).rfind("digestfs-tpm-sealed 1\n", 0), 0u) << "the sealed object, not a key";
  std::filesystem::remove_all(root / "var/cache/apt/archives");
  std::filesystem::create_directories(root / "var/cache/apt/archives");
  mount(options);
  EXPECT_EQ(slurp(mnt / "usr/bin/dfs-deb-hello"), "#!/bin/sh\necho hello from a deb\n")
      << log_text();
  EXPECT_EQ(status_number("packages_accepted"), 2u);
  unmount();
  CommandOutput plain = cache_tool(sources() + " --deb-cache " + cache.string() +
                                   " --deb-cache-key " + key.string() + " rejected");
  EXPECT_NE(plain.out.find("is sealed by a TPM: name it (tpm=)"), std::string::npos) << plain.out;
}

// dpkg run on the mounted root (as apt runs it): the mount reloads from the new status.
TEST_F(DebianSource, ADpkgRunIsSeenByTheMount) {
  mount(",apt-lists=" + lists.string() + ",unknown=deny");
  ASSERT_EQ(status_number("packages_accepted"), 2u);
  const std::string dpkg = "dpkg --root=" + root.string() +
                           " --force-script-chrootless --force-not-root --force-bad-path "
                           "--log=/dev/null ";
  ASSERT_EQ(run_shell(dpkg + "-r dfs-deb-extra >/dev/null"), 0);
  EXPECT_TRUE(within(std::chrono::milliseconds(30000),
                     [&] { return status_number("packages_accepted") == 1; }))
      << status() << log_text();
  ASSERT_EQ(run_shell(dpkg + "-i " + (deb / "pool/dfs-deb-extra_1.0-1_amd64.deb").string() +
                      " >/dev/null"),
            0);
  EXPECT_TRUE(within(std::chrono::milliseconds(30000),
                     [&] { return status_number("packages_accepted") == 2; }))
      << status() << log_text();
  EXPECT_EQ(read_file(mnt / "usr/lib/dfs-deb/extra.bin").bytes.size(), 100000u);
}

// The same damage, reported by dpkg itself and by the rescan: the same lines. dpkg names a
// file by its packaged path (/bin/x), the rescan by where a merged-/usr root has it.
TEST_F(DebianSource, RescanReportsWhatDpkgVerifyReports) {
  std::ofstream(root / "usr/share/dfs-deb/data.txt", std::ios::app) << "x";
  std::ofstream(root / "etc/dfs-deb.conf", std::ios::app) << "changed = 2\n";
  std::filesystem::remove(root / "usr/bin/dfs-deb-merged");
  std::filesystem::remove(root / "usr/bin/dfs-deb-link");
  std::filesystem::permissions(root / "usr/bin/dfs-deb-hello", std::filesystem::perms::owner_all);
  CommandOutput dpkg = run_captured("dpkg --root=" + root.string() + " --verify");
  CommandOutput rescan = run_captured(std::string(DIGESTFS_RESCAN_BINARY) + " " + sources());
  EXPECT_EQ(rescan.status, 4) << rescan.err;
  auto lines = [](const std::string& text, bool merge) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (auto at = line.find(" /bin/"); merge && at != std::string::npos)
        line.replace(at, 5, " /usr/bin");
      out.push_back(line);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const std::vector<std::string> expected = {
      // sorted
      "??5??????   /usr/share/dfs-deb/data-link.txt", "??5??????   /usr/share/dfs-deb/data.txt",
      "??5?????? c /etc/dfs-deb.conf", "missing     /usr/bin/dfs-deb-link",
      "missing     /usr/bin/dfs-deb-merged"};
  EXPECT_EQ(lines(dpkg.out, true), expected) << dpkg.out << dpkg.err;
  EXPECT_EQ(lines(rescan.out, false), expected) << rescan.out;
}

}  // namespace
}  // namespace digestfs::test
