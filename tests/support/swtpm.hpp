// A real TPM simulator for a test: swtpm on a port of its own, started and stopped with the
// object, and what the tests ask of it (PCR values, evmctl against them).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/files.hpp"
#include "tests/support/test_env.hpp"

namespace digestfs::test {

// Whether every one of these commands is on the PATH.
inline bool installed(std::initializer_list<const char*> commands) {
  std::string check = "true";
  for (const char* c : commands) check += std::string(" && command -v ") + c + " >/dev/null";
  return run_shell(check) == 0;
}

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
  // The same TPM named with a comma in the TCTI, as a -o list must quote it.
  std::string tcti_with_host() const {
    return "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
  }
  // Every PCR of a bank, as tpm2_pcrread prints them, lower-case hex (empty: unreadable).
  std::vector<std::string> pcrs(const std::string& bank,
                                const std::filesystem::path& scratch) const {
    const auto out = scratch / "pcrs.txt";
    run_shell("TPM2TOOLS_TCTI=" + tcti() + " tpm2_pcrread " + bank + " >" + out.string() + " 2>&1");
    std::vector<std::string> values(24);
    const std::regex line(R"(^\s*([0-9]+)\s*:\s*0x([0-9A-Fa-f]+)\s*$)");
    std::istringstream in(slurp(out));
    for (std::string l; std::getline(in, l);) {
      std::smatch m;
      if (!std::regex_match(l, m, line)) continue;
      std::string hex = m[2];
      for (auto& c : hex) c = static_cast<char>(std::tolower(c));
      if (const int i = std::stoi(m[1]); i < 24) values[static_cast<size_t>(i)] = hex;
    }
    return values;
  }
  std::string pcr(const std::string& bank, const std::filesystem::path& scratch,
                  unsigned index = 11) const {
    return pcrs(bank, scratch)[index];
  }
  // evmctl ima_measurement on a binary log against this TPM's PCRs (both banks), as a
  // verifier runs it: its exit code, and what it printed after it.
  std::pair<int, std::string> evmctl(const std::filesystem::path& binary_log,
                                     const std::filesystem::path& scratch) const {
    std::string args;
    for (const std::string bank : {"sha256", "sha1"}) {
      const auto file = scratch / ("pcrs-" + bank);
      std::string text;
      const auto values = pcrs(bank, scratch);
      for (size_t i = 0; i < values.size(); ++i) {
        text += (i < 10 ? "PCR-0" : "PCR-") + std::to_string(i) + ": " + values[i] + "\n";
      }
      EXPECT_TRUE(write_text(file, text));
      args += " --pcrs " + bank + "," + file.string();
    }
    const auto out = scratch / "evmctl.txt";
    const int rc = run_shell("evmctl ima_measurement" + args + " " + binary_log.string() + " >" +
                             out.string() + " 2>&1");
    return {rc, slurp(out)};
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

}  // namespace digestfs::test
