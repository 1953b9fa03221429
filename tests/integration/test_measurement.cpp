// Measurements against a real TPM simulator (swtpm, started here): the PCR read from the TPM
// equals the replay of the log, the log is IMA ima-ng, and the state does not depend on the
// order of opens.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <regex>

#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

class Swtpm {
 public:
  Swtpm(const std::filesystem::path& state) {
    port_ = 20000 + static_cast<int>(getpid() % 20000);
    pid_ = fork();
    if (pid_ == 0) {
      const std::string server = "type=tcp,port=" + std::to_string(port_) + ",bindaddr=127.0.0.1";
      const std::string ctrl = "type=tcp,port=" + std::to_string(port_ + 1) + ",bindaddr=127.0.0.1";
      const std::string dir = "dir=" + state.string();
      execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", dir.c_str(), "--server",
             server.c_str(), "--ctrl", ctrl.c_str(), "--flags", "not-need-init,startup-clear",
             nullptr);
      _exit(127);
    }
    // Ready once its TPM port takes connections.
    for (int i = 0; i < 3000 && !accepts(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Swtpm() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string tcti() const { return "swtpm:port=" + std::to_string(port_); }
  // PCR 11 of a bank, as tpm2_pcrread prints it, lower-case hex.
  std::string pcr(const std::string& bank, const std::filesystem::path& scratch) const {
    const auto out = scratch / "pcr.txt";
    run_shell("TPM2TOOLS_TCTI=" + tcti() + " tpm2_pcrread " + bank + ":11 >" + out.string() +
              " 2>&1");
    std::string text = slurp(out);
    auto at = text.find("0x");
    if (at == std::string::npos) return text;
    std::string hex = text.substr(at + 2, bank == "sha1" ? 40 : 64);
    for (auto& c : hex) c = static_cast<char>(std::tolower(c));
    return hex;
  }

 private:
  static bool accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }
  int port_ = 0;
  pid_t pid_ = -1;
};

class Measure : public MountFixture {
 protected:
  std::string json_field(const std::string& doc, const std::string& key) {
    auto at = doc.find("\"" + key + "\":");
    if (at == std::string::npos) return {};
    at += key.size() + 3;
    if (doc[at] == '"') return doc.substr(at + 1, doc.find('"', at + 1) - at - 1);
    return doc.substr(at, doc.find_first_of(",}", at) - at);
  }
  void open_some(const std::vector<std::string>& paths) {
    for (const auto& p : paths) read_file(mnt / p);
  }
};

TEST_F(Measure, ThePcrInTheTpmEqualsTheReplayOfTheLog) {
  DIGESTFS_REQUIRE(
      run_shell("command -v swtpm >/dev/null && command -v tpm2_pcrread >/dev/null") == 0,
      "swtpm and tpm2-tools");
  std::filesystem::create_directories(work.path() / "tpm");
  Swtpm tpm(work.path() / "tpm");
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered data, version 1\n"));
  ASSERT_TRUE(write_text(root / "usr/share/dfs/extra.txt", "served without an entry\n"));
  const auto log = work.path() / "measurements.log";
  mount(",measure-log=" + log.string() + ",tpm=" + tpm.tcti() +
        ",unknown-allow=/usr/share/dfs/extra.txt");
  open_some(
      {"usr/bin/hello", "usr/share/dfs/data.txt", "usr/share/dfs/extra.txt", "usr/bin/dfs-hello"});
  // Extends run in the background: wait until every measurement reached the TPM.
  for (int i = 0; i < 100; ++i) {
    const std::string s = status();
    if (!json_field(s, "measurements").empty() &&
        json_field(s, "measurements") == json_field(s, "pcr_extends"))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string s = status();
  EXPECT_EQ(json_field(s, "pcr_in_step"), "true") << s;

  const std::regex ima_ng(R"(^11 [0-9a-f]{40} ima-ng (sha256|sha512):[0-9a-f]+ \S.*$)");
  size_t lines = 0;
  std::istringstream in(slurp(log));
  for (std::string line; std::getline(in, line);) {
    EXPECT_TRUE(std::regex_match(line, ima_ng)) << line;
    ++lines;
  }
  EXPECT_EQ(std::to_string(lines), json_field(s, "measurements"));
  const std::string log_text_all = slurp(log);
  EXPECT_NE(log_text_all.find(" rpm:dfs-base-1.0-1.noarch\n"), std::string::npos);
  EXPECT_NE(log_text_all.find(" rpm-rejected:dfs-foreign-1.0-1.noarch:untrusted-key\n"),
            std::string::npos);
  EXPECT_NE(log_text_all.find(" /usr/share/dfs/data.txt\n"), std::string::npos) << "the refusal";
  EXPECT_NE(log_text_all.find(" /usr/share/dfs/extra.txt\n"), std::string::npos)
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
  EXPECT_EQ(std::filesystem::file_size(log.string() + ".bin") > 0, true) << "the binary form";
}

TEST_F(Measure, ATpmThatFailsLeavesThePcrOutOfStepAndSaysSo) {
  DIGESTFS_REQUIRE(run_shell("command -v swtpm >/dev/null") == 0, "swtpm");
  std::filesystem::create_directories(work.path() / "tpm");
  auto tpm = std::make_unique<Swtpm>(work.path() / "tpm");
  const std::string tcti = tpm->tcti();
  mount(",measure-log=" + (work.path() / "m.log").string() + ",tpm=" + tcti);
  tpm.reset();  // the TPM goes away under the running mount
  ASSERT_TRUE(write_text(root / "usr/share/dfs/data.txt", "tampered data, version 1\n"));
  EXPECT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, EACCES) << "opens go on";
  for (int i = 0; i < 100 && json_field(status(), "pcr_in_step") != "false"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(json_field(status(), "pcr_in_step"), "false") << status();
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
  auto packages = [](const std::string& log) {
    std::string out;
    for (std::istringstream in(log); std::getline(in, out);) {
      if (out.find(" rpm") == std::string::npos) break;
    }
    return log.substr(0, log.find(out));
  };
  EXPECT_EQ(packages(logs[0]), packages(logs[1]));
  EXPECT_NE(packages(logs[0]).find("rpm:"), std::string::npos);
}

}  // namespace
}  // namespace digestfs::test
