#include "src/daemon/daemon.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace digestfs {

Daemon::Daemon(bool foreground) : foreground_(foreground) {
  if (foreground_) return;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("digestfs: pipe");
    std::exit(1);
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("digestfs: fork");
    std::exit(1);
  }
  if (pid > 0) {
    write_end.reset();
    unsigned char code = 1;
    if (read(read_end.get(), &code, 1) != 1) code = 1;  // the child died before reporting
    std::string message;
    char buf[512];
    for (ssize_t n; (n = read(read_end.get(), buf, sizeof buf)) > 0;)
      message.append(buf, static_cast<size_t>(n));
    if (!message.empty()) std::fprintf(stderr, "digestfs: %s\n", message.c_str());
    std::_Exit(code);
  }
  report_ = std::move(write_end);
  setsid();
}

void Daemon::ready() {
  if (foreground_) return;
  unsigned char ok = 0;
  if (write(report_.get(), &ok, 1) != 1) std::perror("digestfs: report to parent");
  report_.reset();
  if (chdir("/") != 0) std::perror("digestfs: chdir /");
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null) {
    dup2(null.get(), 0);
    dup2(null.get(), 1);
    dup2(null.get(), 2);
  }
}

void Daemon::fail(const std::string& why, int code) {
  if (!foreground_) {
    unsigned char c = static_cast<unsigned char>(code);
    if (write(report_.get(), &c, 1) == 1) {
      [[maybe_unused]] ssize_t n = write(report_.get(), why.data(), why.size());
    }
  }
  std::exit(code);
}

}  // namespace digestfs
