// digestfs-run: runs a command inside a container rootfs while every file it opens is
// checked by digestfs against that rootfs's own package headers, signed by keys of the host.
//
// The supervisor (this process) unshares a mount namespace, mounts digestfs over the rootfs
// there (so the host never sees the mount), and forks the command in a new PID namespace and
// a mount namespace of its own, where /proc, a minimal /dev, a read-only /sys and a tmpfs
// /tmp are mounted and the root is pivoted into the verified tree. When the command ends (or
// the daemon dies), everything goes with the namespaces.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/base/control_xattrs.hpp"
#include "src/base/unique_fd.hpp"
#include "src/config/command_line.hpp"
#include "src/config/trusted_index.hpp"

namespace digestfs {
namespace {

// Our own failures, as container runtimes report them; the command's status otherwise.
constexpr int kRunError = 125;
constexpr int kCannotExecute = 126;
constexpr int kNotFound = 127;

constexpr const char* kUsage =
    "usage: digestfs-run --rootfs DIR --keys KEYDIR [OPTIONS] -- COMMAND [ARGS...]\n"
    "       digestfs-run --rootfs DIR --keys KEYDIR [OPTIONS] --mount-only MOUNTPOINT\n"
    "  --rootfs DIR              the container tree; its own rpm database describes it\n"
    "  --mount-only MOUNTPOINT   mount the verified tree there and stay in the foreground\n"
    "                            (for bwrap --bind, systemd-nspawn -D, podman --rootfs)\n"
    "  --no-pid-namespace        run COMMAND in the host's PID namespace\n"
    "  --allow-unpackaged-rootfs run even if no package of the rootfs's rpm database is\n"
    "                            signed by a trusted key (its files then follow unknown=)\n"
    "  --verbose                 also show digestfs's notices (index, mount), not only its\n"
    "                            refusals\n"
    "exit status: COMMAND's; 125 digestfs-run failed (or the daemon died), 126 COMMAND could\n"
    "not be executed, 127 COMMAND was not found\n"
    "options (any key of digestfs.conf(5)):\n";

std::atomic<pid_t> g_child{0};

void forward_signal(int sig) {
  if (pid_t c = g_child.load(); c > 0) kill(c, sig);
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

// The digestfs binary beside this one (an installed or a build tree), else from PATH.
std::string digestfs_binary() {
  std::string beside = self_dir() + "/digestfs";
  if (access(beside.c_str(), X_OK) == 0) return beside;
  std::string build_tree = self_dir() + "/../digestfs";
  if (access(build_tree.c_str(), X_OK) == 0) return build_tree;
  return "digestfs";
}

[[noreturn]] void exec_argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "digestfs-run: cannot execute %s: %s\n", argv[0], std::strerror(errno));
  _exit(kRunError);
}

// In the child: its own mounts, then the verified tree as its root. Returns why not.
std::string enter_container(const std::string& rootfs) {
  if (unshare(CLONE_NEWNS) != 0) return std::string("unshare: ") + std::strerror(errno);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("making mounts private: ") + std::strerror(errno);
  }
  if (chdir(rootfs.c_str()) != 0) return "chdir " + rootfs + ": " + std::strerror(errno);
  for (const char* dir : {"proc", "dev", "sys", "tmp"}) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
      return std::string("mkdir /") + dir + ": " + std::strerror(errno);
    }
  }
  struct Mount {
    const char *source, *target, *type;
    unsigned long flags;
    const char* data;
  };
  const Mount mounts[] = {
      {"proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
      {"tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=64k"},
      {"sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
      {"tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
  };
  for (const auto& m : mounts) {
    if (mount(m.source, m.target, m.type, m.flags, m.data) != 0) {
      return std::string("mount /") + m.target + ": " + std::strerror(errno);
    }
  }
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    const std::string target = std::string("dev/") + node;
    UniqueFd placeholder(open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
    const std::string host = std::string("/dev/") + node;
    if (!placeholder || mount(host.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return "bind " + host + ": " + std::strerror(errno);
    }
  }
  for (auto [link, target] : {std::pair{"dev/fd", "/proc/self/fd"},
                              {"dev/stdin", "/proc/self/fd/0"},
                              {"dev/stdout", "/proc/self/fd/1"},
                              {"dev/stderr", "/proc/self/fd/2"}}) {
    if (symlink(target, link) != 0)
      return std::string("symlink /") + link + ": " + std::strerror(errno);
  }
  // pivot_root(".", "."): the old root ends up under the new one and is detached at once.
  if (syscall(SYS_pivot_root, ".", ".") != 0)
    return std::string("pivot_root: ") + std::strerror(errno);
  if (umount2(".", MNT_DETACH) != 0)
    return std::string("detaching the host root: ") + std::strerror(errno);
  if (chdir("/") != 0) return std::string("chdir /: ") + std::strerror(errno);
  return {};
}

struct Report {  // child -> supervisor, through a close-on-exec pipe
  int code;
  int err;
  char message[256];
};

// The daemon's pid as the mount at `path` states it in its status, or -1 when nothing (or a
// dead mount) answers there.
pid_t daemon_answering(const std::string& path) {
  char buf[65536];
  const ssize_t n = getxattr(path.c_str(), kStatusXattr, buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "\"pid\":");
  return at ? static_cast<pid_t>(std::atol(at + 6)) : -1;
}

// Starts digestfs over the rootfs and waits until that daemon itself answers on it. Returns
// its pid, or -1 (with the reason printed).
pid_t start_daemon(const std::string& rootfs, const std::vector<std::string>& daemon_args) {
  pid_t daemon = fork();
  if (daemon == 0) exec_argv(daemon_args);
  if (daemon < 0) return -1;
  for (int i = 0; i < 6000 && daemon_answering(rootfs) != daemon; ++i) {
    int status;
    if (waitpid(daemon, &status, WNOHANG) == daemon) {
      std::fprintf(stderr, "digestfs-run: digestfs could not mount %s (see above)\n",
                   rootfs.c_str());
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (daemon_answering(rootfs) != daemon) {
    kill(daemon, SIGTERM);
    waitpid(daemon, nullptr, 0);
    std::fprintf(stderr, "digestfs-run: digestfs did not mount %s in time\n", rootfs.c_str());
    return -1;
  }
  return daemon;
}

// Forks the command into the container; returns its pid. What went wrong before exec
// reaches the supervisor through `report`.
pid_t start_command(const std::string& rootfs, const std::vector<std::string>& command,
                    UniqueFd& report_read, UniqueFd& report_write) {
  pid_t child = fork();
  if (child != 0) return child;
  report_read.reset();
  Report r{kRunError, 0, {}};
  std::string why = enter_container(rootfs);
  if (why.empty()) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(sig, SIG_DFL);
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    r.err = errno;
    r.code = errno == ENOENT ? kNotFound : kCannotExecute;
    why = "cannot execute " + command[0] + ": " + std::strerror(errno);
    if (errno == EACCES) why += " (refused by digestfs: see its log line above)";
  }
  std::snprintf(r.message, sizeof r.message, "%s", why.c_str());
  [[maybe_unused]] ssize_t n = write(report_write.get(), &r, sizeof r);
  _exit(r.code);
}

// Waits for the command; returns its exit status. Should the daemon die first, the container
// fails closed: every read in it fails (ENOTCONN); it gets a moment to notice and end, and is
// then stopped. `daemon` is set to -1 once it has died.
int wait_for_command(pid_t child, pid_t& daemon) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (pid < 0) return kRunError;
    if (pid != daemon) continue;
    std::fprintf(stderr,
                 "digestfs-run: the digestfs daemon died; the container cannot read anything "
                 "more\n");
    daemon = -1;
    bool ended = false;
    for (int i = 0; i < 100 && !ended; ++i) {
      ended = waitpid(child, nullptr, WNOHANG) == child;
      if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!ended) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
    }
    return kRunError;
  }
}

int supervise(const std::string& rootfs, const std::vector<std::string>& daemon_args,
              const std::vector<std::string>& command, bool pid_namespace) {
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::fprintf(stderr, "digestfs-run: cannot make a private mount namespace: %s\n",
                 std::strerror(errno));
    return kRunError;
  }
  pid_t daemon = start_daemon(rootfs, daemon_args);
  if (daemon < 0) return kRunError;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return kRunError;
  UniqueFd report_read(fds[0]), report_write(fds[1]);
  if (pid_namespace && unshare(CLONE_NEWPID) != 0) {
    std::fprintf(stderr, "digestfs-run: cannot make a PID namespace: %s\n", std::strerror(errno));
    return kRunError;
  }
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(sig, forward_signal);
  const pid_t child = start_command(rootfs, command, report_read, report_write);
  report_write.reset();
  g_child = child;
  const int code = wait_for_command(child, daemon);
  g_child = 0;
  Report r{};
  if (read(report_read.get(), &r, sizeof r) == static_cast<ssize_t>(sizeof r)) {
    std::fprintf(stderr, "digestfs-run: %s\n", r.message);
  }
  if (daemon > 0) {
    umount2(rootfs.c_str(), MNT_DETACH);  // ends the daemon's session
    kill(daemon, SIGTERM);
    waitpid(daemon, nullptr, 0);
  }
  return code;
}

int run(int argc, char** argv) {
  std::string rootfs, mount_only;
  bool pid_namespace = true, allow_unpackaged = false, verbose = false;
  std::vector<std::string> registry_args, command;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "digestfs-run: %s needs a value\n%s", what, kUsage);
        std::exit(kRunError);
      }
      return argv[++i];
    };
    if (a == "--") {
      command.assign(argv + i + 1, argv + argc);
      break;
    } else if (a == "--rootfs") {
      rootfs = value("--rootfs");
    } else if (a == "--mount-only") {
      mount_only = value("--mount-only");
    } else if (a == "--no-pid-namespace") {
      pid_namespace = false;
    } else if (a == "--allow-unpackaged-rootfs") {
      allow_unpackaged = true;
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--help") {
      std::printf("%s%s", kUsage, options_help(true).c_str());
      return 0;
    } else {
      registry_args.push_back(a);
    }
  }
  char real[PATH_MAX];
  if (rootfs.empty() || !realpath(rootfs.c_str(), real)) {
    std::fprintf(stderr, "digestfs-run: %s\n%s",
                 rootfs.empty() ? "--rootfs is required"
                                : ("rootfs " + rootfs + ": " + std::strerror(errno)).c_str(),
                 kUsage);
    return kRunError;
  }
  rootfs = real;
  if (command.empty() == mount_only.empty()) {
    std::fprintf(stderr, "digestfs-run: give either -- COMMAND or --mount-only MOUNTPOINT\n%s",
                 kUsage);
    return kRunError;
  }
  // The rootfs's own database describes it; keys come only from the host (--keys).
  registry_args.insert(registry_args.begin(), {"--root", rootfs});
  std::vector<char*> parse_argv{argv[0]};
  for (auto& a : registry_args) parse_argv.push_back(a.data());
  auto cl =
      parse_command_line(static_cast<int>(parse_argv.size()), parse_argv.data(), {}, true);
  if (!cl || !cl->positional.empty()) {
    std::fprintf(
        stderr, "digestfs-run: %s\n%s",
        cl ? ("unexpected argument " + cl->positional[0]).c_str() : cl.error().message.c_str(),
        kUsage);
    return kRunError;
  }
  // The daemon would refuse a rootfs without a readable database too; saying it here names
  // the rootfs and the way out.
  auto loaded = load_trusted_index(cl->settings);
  if (!loaded) {
    std::fprintf(stderr, "digestfs-run: refusing %s: %s\n", rootfs.c_str(),
                 loaded.error().message.c_str());
    return kRunError;
  }
  if (loaded->index->packages().empty() && !allow_unpackaged) {
    std::fprintf(stderr,
                 "digestfs-run: refusing %s: no package in its rpm database is signed by a "
                 "trusted key (--allow-unpackaged-rootfs runs it anyway)\n",
                 rootfs.c_str());
    return kRunError;
  }

  // As container runtimes do: the command's output and digestfs's refusals; the daemon's
  // own notices go to syslog, or here too with --verbose.
  std::vector<std::string> daemon_args{digestfs_binary(), "-f"};
  if (!verbose) daemon_args.push_back("-q");
  daemon_args.insert(daemon_args.end(), registry_args.begin(), registry_args.end());
  if (!mount_only.empty()) {
    daemon_args.insert(daemon_args.end(), {rootfs, mount_only});
    exec_argv(daemon_args);
  }
  daemon_args.insert(daemon_args.end(), {rootfs, rootfs});
  return supervise(rootfs, daemon_args, command, pid_namespace);
}

}  // namespace
}  // namespace digestfs

int main(int argc, char** argv) { return digestfs::run(argc, argv); }
