// Measurements against a real TPM simulator (swtpm, started here): the PCR read from the TPM
// equals the replay of the log, the log is IMA ima-ng, and the state does not depend on the
// order of opens.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <regex>

#include "tests/support/mount_fixture.hpp"
#include "tests/support/swtpm.hpp"

namespace digestfs::test {
namespace {

class Measure : public MountFixture {
 protected:
  std::string json_field(const std::string& doc, const std::string& key) {
    auto at = doc.find("\"" + key + "\":");
    if (at == std::string::npos) return {};
    at += key.size() + 3;
    if (doc[at] == '"') return doc.substr(at + 1, doc.find('"', at + 1) - at - 1);
    return doc.substr(at, doc.find_first_of(",}", at) - at);
  }
  // What a mount kept aside in place of work/measurements.log, sorted: LOG.SECONDS before
  // LOG.SECONDS.bin.
  std::vector<std::filesystem::path> kept_aside() {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(work.path())) {
      const std::string name = e.path().filename();
      if (name.starts_with("measurements.log.") && name != "measurements.log.bin") {
        out.push_back(e.path());
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  void open_some(const std::vector<std::string>& paths) {
    for (const auto& p : paths) read_file(mnt / p);
  }
};

// Every measurement so far has reached the TPM (extends run in the background).
#define WAIT_EXTENDED()                                                   \
  ASSERT_TRUE(within(std::chrono::seconds(30), [&] {                      \
    const std::string s = status();                                       \
    return !json_field(s, "measurements").empty() &&                      \
           json_field(s, "measurements") == json_field(s, "pcr_extends"); \
  })) << status()

TEST_F(Measure, ThePcrInTheTpmEqualsTheReplayOfTheLog) {
  DIGESTFS_REQUIRE(installed({"swtpm", "tpm2_pcrread"}), "swtpm and tpm2-tools");
  std::filesystem::create_directories(work.path() / "tpm");
  Swtpm tpm(work.path() / "tpm");
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered data, version 1\n"));
  ASSERT_TRUE(write_text(root / "usr/share/dfs/extra.txt", "served without an entry\n"));
  const auto log = work.path() / "measurements.log";
  mount(",measure-log=" + log.string() + ",tpm=\"" + tpm.tcti_with_host() + "\"" +
        ",unknown-allow=/usr/share/dfs/extra.txt");
  open_some(
      {"usr/bin/hello", "usr/share/dfs/data.txt", "usr/share/dfs/extra.txt", "usr/bin/dfs-hello"});
  WAIT_EXTENDED();
  const std::string s = status();
  EXPECT_EQ(json_field(s, "pcr_in_step"), "true") << s;

  const std::regex ima_ng(R"(^11 [0-9a-f]{40} ima-ng (sha256|sha512):[0-9a-f]+ \S+$)");
  size_t lines = 0;
  std::istringstream in(slurp(log));
  for (std::string line; std::getline(in, line);) {
    EXPECT_TRUE(std::regex_match(line, ima_ng)) << line;
    ++lines;
  }
  EXPECT_EQ(std::to_string(lines), json_field(s, "measurements"));
  const std::string log_text_all = slurp(log);
  // The first entry is the kernel's: SHA-256 over the SHA-256 bank's PCRs 0 to 9.
  std::string boot_pcrs;
  for (const auto& hex : tpm.pcrs("sha256", work.path())) {
    for (size_t i = 0; i + 1 < hex.size() && boot_pcrs.size() < 320; i += 2) {
      boot_pcrs.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
  }
  ASSERT_EQ(boot_pcrs.size(), 320u);
  EXPECT_EQ(log_text_all.substr(0, log_text_all.find('\n')).substr(44),
            "ima-ng sha256:" + sha256_hex(boot_pcrs) + " boot_aggregate");
  EXPECT_NE(log_text_all.find(" rpm:dfs-base-1.0-1.noarch\n"), std::string::npos);
  EXPECT_NE(log_text_all.find(" rpm-rejected:dfs-foreign-1.0-1.noarch:untrusted-key\n"),
            std::string::npos);
  // A refusal is named as one, with the digest of what was refused (not hashed to judge it:
  // the size told).
  EXPECT_NE(log_text_all.find(" ima-ng sha256:" + sha256_hex("tampered data, version 1\n") +
                              " refused:size-mismatch:/usr/share/dfs/data.txt\n"),
            std::string::npos)
      << log_text_all;
  EXPECT_NE(log_text_all.find(" ima-ng sha256:" + sha256_hex("served without an entry\n") +
                              " /usr/share/dfs/extra.txt\n"),
            std::string::npos)
      << "the unknown file served";
  EXPECT_EQ(log_text_all.find("/usr/bin/dfs-hello"), std::string::npos)
      << "verified opens are covered by their package";

  const auto replay_out = work.path() / "replay.json";
  ASSERT_EQ(run_shell(std::string(DIGESTFS_CACHE_BINARY) + " --json replay " + log.string() + " >" +
                      replay_out.string()),
            0);
  const std::string replayed = slurp(replay_out);
  EXPECT_EQ(json_field(replayed, "sha256"), tpm.pcr("sha256", work.path())) << replayed;
  EXPECT_EQ(json_field(replayed, "sha1"), tpm.pcr("sha1", work.path())) << replayed;
  const auto [rc, said] = tpm.evmctl(log.string() + ".bin", work.path());
  EXPECT_EQ(rc, 0) << said;
}

TEST_F(Measure, ARemountAndARestartContinueTheLogAndEvmctlAgreesWithTheTpm) {
  DIGESTFS_REQUIRE(installed({"swtpm", "tpm2_pcrread", "evmctl"}),
                   "swtpm, tpm2-tools and evmctl (ima-evm-utils)");
  std::filesystem::create_directories(work.path() / "tpm");
  Swtpm tpm(work.path() / "tpm");
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered data, version 1\n"));
  const auto log = work.path() / "measurements.log";
  const auto binary = work.path() / "measurements.log.bin";
  const std::string opts = ",measure-log=" + log.string() + ",tpm=" + tpm.tcti();
  mount(opts);
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES);
  WAIT_EXTENDED();
  const std::string first = slurp(log);
  unmount();

  mount(opts);
  ASSERT_TRUE(write_text(root / "usr/share/dfs/stray.txt", "not from any package\n"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray.txt").error, EACCES);
  WAIT_EXTENDED();
  EXPECT_EQ(json_field(status(), "pcr_in_step"), "true") << status();
  const std::string second = slurp(log);
  EXPECT_TRUE(second.starts_with(first)) << "the remount continued the log:\n" << second;
  EXPECT_NE(second.find("refused:no-entry:/usr/share/dfs/stray.txt\n"), std::string::npos);
  EXPECT_NE(log_text().find("continued ("), std::string::npos) << log_text();
  auto [rc, said] = tpm.evmctl(binary, work.path());
  EXPECT_EQ(rc, 0) << "after a remount: " << said;

  // Killed and restarted, as systemd's Restart= does.
  kill_daemon(SIGKILL);
  mount(opts);
  ASSERT_TRUE(write_text(root / "usr/share/dfs/stray2.txt", "not from any package either\n"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/stray2.txt").error, EACCES);
  WAIT_EXTENDED();
  EXPECT_EQ(json_field(status(), "pcr_in_step"), "true") << status();
  std::tie(rc, said) = tpm.evmctl(binary, work.path());
  EXPECT_EQ(rc, 0) << "after a kill and restart: " << said;
  unmount();

  // A flipped byte or a truncated log fails evmctl.
  const std::string whole = slurp(binary);
  std::string flipped = whole;
  flipped[flipped.size() - 3] ^= 1;
  ASSERT_TRUE(write_text(binary, flipped));
  EXPECT_NE(tpm.evmctl(binary, work.path()).first, 0) << "a flipped byte";
  ASSERT_TRUE(write_text(binary, whole.substr(0, whole.size() - 40)));
  EXPECT_NE(tpm.evmctl(binary, work.path()).first, 0) << "a truncated log";
}

TEST_F(Measure, ALogThatNoLongerReplaysToThePcrIsKeptAsideAndTheMountSaysItIsOutOfStep) {
  DIGESTFS_REQUIRE(installed({"swtpm", "tpm2_pcrread"}), "swtpm and tpm2-tools");
  std::filesystem::create_directories(work.path() / "tpm");
  Swtpm tpm(work.path() / "tpm");
  const auto log = work.path() / "measurements.log";
  const std::string opts = ",measure-log=" + log.string() + ",tpm=" + tpm.tcti();
  mount(opts);
  WAIT_EXTENDED();
  unmount();
  // Something else extended the PCR while no digestfs ran: the log, intact in both forms,
  // no longer replays to it.
  const std::string text = slurp(log);
  ASSERT_EQ(run_shell("TPM2TOOLS_TCTI=" + tpm.tcti() +
                      " tpm2_pcrextend 11:sha256=" + std::string(64, 'a') + " >/dev/null 2>&1"),
            0);
  mount(opts);
  EXPECT_EQ(json_field(status(), "pcr_in_step"), "false") << status();
  EXPECT_NE(log_text().find("not continued: it replays to sha256:"), std::string::npos)
      << log_text();
  const auto kept = kept_aside();
  ASSERT_EQ(kept.size(), 2u) << "the log and its binary form, kept aside";
  EXPECT_EQ(slurp(kept[0]), text) << "kept as it was";
  EXPECT_TRUE(slurp(log).starts_with("11 ")) << "a new log";
  EXPECT_NE(slurp(log).find(" boot_aggregate\n"), std::string::npos);
}

TEST_F(Measure, WithoutATpmALogIsContinuedOnlyWhenBothItsFormsHoldTheSameEntries) {
  const auto log = work.path() / "measurements.log";
  const auto binary = work.path() / "measurements.log.bin";
  mount(",measure-log=" + log.string());
  unmount();
  const std::string first = slurp(log), first_binary = slurp(binary);
  ASSERT_TRUE(first.starts_with("11 ")) << first;
  mount(",measure-log=" + log.string());
  unmount();
  EXPECT_EQ(slurp(log), first) << "continued: nothing new to log";
  EXPECT_EQ(slurp(binary), first_binary);
  EXPECT_NE(log_text().find("continued ("), std::string::npos) << log_text();

  // The binary form lost its last entry: neither form is continued, both are kept.
  ASSERT_TRUE(write_text(binary, first_binary.substr(0, first_binary.size() - 10)));
  mount(",measure-log=" + log.string());
  EXPECT_NE(log_text().find("not continued: its binary form does not hold the same entries"),
            std::string::npos)
      << log_text();
  unmount();
  EXPECT_EQ(kept_aside().size(), 2u) << "the log and its binary form, kept aside";
  EXPECT_EQ(slurp(log), first) << "the new log says the same as the first";
}

TEST_F(Measure, NoFileNameCanAddOrForgeALine) {
  DIGESTFS_REQUIRE(installed({"swtpm", "tpm2_pcrread", "evmctl"}),
                   "swtpm, tpm2-tools and evmctl (ima-evm-utils)");
  std::filesystem::create_directories(work.path() / "tpm");
  Swtpm tpm(work.path() / "tpm");
  const auto log = work.path() / "measurements.log";
  const std::vector<std::string> names = {
      "new\n10 0000000000000000000000000000000000000000 ima-ng sha256:00 forged", "with space",
      "back\\slash"};
  for (const auto& n : names) {
    ASSERT_TRUE(write_text(root / "usr/share/dfs" / n, "planted\n"));
  }
  mount(",measure-log=" + log.string() + ",tpm=" + tpm.tcti());
  for (const auto& n : names) {
    EXPECT_EQ(read_file(mnt / "usr/share/dfs" / n).error, EACCES) << n;
  }
  WAIT_EXTENDED();
  const std::string text = slurp(log);
  EXPECT_EQ(std::to_string(std::count(text.begin(), text.end(), '\n')),
            json_field(status(), "measurements"))
      << text;
  EXPECT_EQ(text.find(" forged\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find(" refused:no-entry:/usr/share/dfs/"
                "new\\01210_0000000000000000000000000000000000000000_ima-ng_sha256:00_forged\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(" refused:no-entry:/usr/share/dfs/with_space\n"), std::string::npos);
  EXPECT_NE(text.find(" refused:no-entry:/usr/share/dfs/back\\134slash\n"), std::string::npos);
  // The syslog lines too: one line each, the names escaped.
  const std::string said = log_text();
  EXPECT_NE(said.find("DENY path=/usr/share/dfs/new\\01210\\0400000"), std::string::npos) << said;
  EXPECT_NE(said.find("DENY path=/usr/share/dfs/with\\040space reason=no-entry"),
            std::string::npos);
  EXPECT_EQ(said.find("\n10 0000"), std::string::npos);

  const auto replay_out = work.path() / "replay.json";
  ASSERT_EQ(run_shell(std::string(DIGESTFS_CACHE_BINARY) + " --json replay " + log.string() + " >" +
                      replay_out.string()),
            0);
  EXPECT_EQ(json_field(slurp(replay_out), "sha256"), tpm.pcr("sha256", work.path()));
  const auto [rc, evm] = tpm.evmctl(log.string() + ".bin", work.path());
  EXPECT_EQ(rc, 0) << evm;
}

TEST_F(Measure, ATpmThatFailsLeavesThePcrOutOfStepAndSaysSo) {
  DIGESTFS_REQUIRE(installed({"swtpm"}), "swtpm");
  std::filesystem::create_directories(work.path() / "tpm");
  auto tpm = std::make_unique<Swtpm>(work.path() / "tpm");
  const std::string tcti = tpm->tcti();
  mount(",measure-log=" + (work.path() / "m.log").string() + ",tpm=" + tcti);
  tpm.reset();  // the TPM goes away under the running mount
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered data, version 1\n"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES) << "opens go on";
  EXPECT_TRUE(within(std::chrono::milliseconds(30000),
                     [&] { return json_field(status(), "pcr_in_step") == "false"; }))
      << status();
  EXPECT_NE(log_text().find("the PCR is no longer in step with the log"), std::string::npos)
      << log_text();
}

TEST_F(Measure, TwoMountsThatOpenInDifferentOrdersHaveOneState) {
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered data, version 1\n"));
  const std::vector<std::string> files = {"usr/bin/hello", "usr/share/dfs/data.txt",
                                          "usr/share/doc/hello-2.0/README", "usr/bin/dfs-hello",
                                          "usr/share/dfsforeign/file.txt"};
  std::string states[2], logs[2];
  for (int round = 0; round < 2; ++round) {
    const auto log = work.path() / ("m" + std::to_string(round) + ".log");
    mount(",measure-log=" + log.string());
    std::vector<std::string> order = files;
    if (round == 1) std::reverse(order.begin(), order.end());
    open_some(order);
    states[round] = json_field(status(), "state");
    const auto state_out = work.path() / "state.txt";
    ASSERT_EQ(run_shell(std::string(DIGESTFS_CACHE_BINARY) + " state " + mnt.string() + " >" +
                        state_out.string()),
              0);
    EXPECT_EQ(slurp(state_out), states[round] + "\n");
    unmount();
    logs[round] = slurp(log);
  }
  EXPECT_EQ(states[0].size(), 64u);
  EXPECT_EQ(states[0], states[1]);
  EXPECT_NE(logs[0], logs[1]) << "the logs differ in order";
  // The package part comes first and is identical: sorted by header digest.
  // (after the boot_aggregate entry, zeros on a machine without a TPM)
  auto packages = [](const std::string& log) {
    std::string out, line;
    std::istringstream in(log);
    std::getline(in, line);
    EXPECT_TRUE(line.ends_with(" boot_aggregate")) << line;
    while (std::getline(in, line) && line.find(" rpm") != std::string::npos) out += line + "\n";
    return out;
  };
  EXPECT_EQ(packages(logs[0]), packages(logs[1]));
  EXPECT_NE(packages(logs[0]).find("rpm:"), std::string::npos);
}

}  // namespace
}  // namespace digestfs::test
