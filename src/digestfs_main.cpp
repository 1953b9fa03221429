// digestfs: mounts SOURCE at MOUNTPOINT and serves each regular file only when its content
// matches a digest that a trusted package signed for its path.
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "fs/mount_context.hpp"
#include "src/config/command_line.hpp"
#include "src/daemon/daemon.hpp"
#include "src/daemon/dead_mount.hpp"
#include "src/daemon/fd_limit.hpp"
#include "src/daemon/heap_policy.hpp"
#include "src/daemon/mount_args.hpp"
#include "src/daemon/mount_services.hpp"
#include "src/daemon/read_ahead.hpp"

namespace digestfs {
namespace {

constexpr const char* kUsage =
    "usage: digestfs [-f] [-d] [-o OPTION[,OPTION...]] SOURCE MOUNTPOINT\n"
    "       digestfs [-o OPTION[,OPTION...]] --print-config\n"
    "  -f   stay in the foreground, log to stderr as well as syslog\n"
    "  -d   foreground with FUSE debug output\n"
    "  -o ro, allow_other, nosuid, nodev, noexec, ...: generic mount options\n"
    "options (as -o NAME=VALUE, or --NAME VALUE):\n";

std::atomic<IndexReloader*> g_reloader{nullptr};

struct FuseArgs {
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  ~FuseArgs() { fuse_opt_free_args(&args); }
};
struct SessionFree {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
using SessionPtr = std::unique_ptr<fuse_session, SessionFree>;

// What SOURCE stands for when prefix= is not given: its path inside the root whose database
// describes it ("/" for a rootfs mounted with root= itself, "/usr" for /usr over /usr).
std::string default_prefix(const std::string& source, const Settings& settings) {
  char root[PATH_MAX];
  if (!realpath(settings.sources.root.c_str(), root)) return source;
  std::string r = root;
  if (r == "/") return source;
  if (source == r) return "/";
  if (source.starts_with(r + "/")) return source.substr(r.size());
  return source;
}

// The nodes may hold all fds but a reserve for open files, directories, the database.
size_t node_budget(EventLog& log) {
  const rlim_t fd_limit = raise_open_file_limit();
  const size_t budget = fd_limit - std::min<rlim_t>(1024, fd_limit / 4);
  if (fd_limit < 262144) {
    log.notice(LOG_WARNING, "open-file limit " + std::to_string(fd_limit) + ": past " +
                                std::to_string(budget / 4 * 3) +
                                " files looked up, the kernel is asked to drop cached entries");
  }
  return budget;
}

SessionPtr new_session(const MountArgs& args, fs::MountContext& ctx, const char* argv0) {
  FuseArgs fargs;
  fuse_opt_add_arg(&fargs.args, argv0);
  if (args.debug) fuse_opt_add_arg(&fargs.args, "-d");
  std::string opts = "default_permissions,fsname=" + args.source + ",subtype=digestfs";
  if (geteuid() == 0) opts += ",allow_other";
  for (const auto& o : args.kernel_options) opts += "," + o;
  fuse_opt_add_arg(&fargs.args, "-o");
  fuse_opt_add_arg(&fargs.args, opts.c_str());
  return SessionPtr(
      fuse_session_new(&fargs.args, &fs::operations(), sizeof(fuse_lowlevel_ops), &ctx));
}

// libfuse ends the session on SIGHUP; here it means "reload the trusted index".
void reload_on_sighup(IndexReloader* reloader) {
  if (!reloader) return;
  g_reloader = reloader;
  struct sigaction hup {};
  hup.sa_handler = [](int) { g_reloader.load()->request(); };
  sigemptyset(&hup.sa_mask);
  hup.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &hup, nullptr);
}

int run(int argc, char** argv) {
  auto parsed = parse_mount_args(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "digestfs: %s\n%s%s", parsed.error().message.c_str(), kUsage,
                 options_help().c_str());
    return 2;
  }
  MountArgs& args = *parsed;
  if (args.help) {
    std::printf("%s%s", kUsage, options_help().c_str());
    return 0;
  }
  if (args.print_config) {
    std::fputs(print_config(args.settings).c_str(), stdout);
    return 0;
  }
  openlog("digestfs", LOG_PID, LOG_DAEMON);
  // Detach first: oneTBB's threads and the reloader's must be born in the daemon itself.
  Daemon daemon(args.foreground);
  EventLog log(args.foreground, true);

  keep_large_blocks_off_the_heap();
  const size_t budget = node_budget(log);
  if (auto detached = detach_dead_mount(args.mountpoint); !detached) {
    daemon.fail(detached.error().message, 1);
  } else if (*detached) {
    log.notice(LOG_WARNING,
               "detached the dead digestfs mount on " + args.mountpoint + " (its daemon had died)");
  }
  // Opened before mounting: the mount may hide SOURCE (digestfs /usr /usr).
  UniqueFd source_fd(open(args.source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  char source_real[PATH_MAX];
  if (!source_fd || !realpath(args.source.c_str(), source_real)) {
    daemon.fail("source " + args.source + ": " + std::strerror(errno), 1);
  }
  fs::MountContext ctx{.nodes = fs::NodeTable(std::move(source_fd)), .read_only = args.read_only};
  const PathMapping paths{source_real, args.settings.prefix.empty()
                                           ? default_prefix(source_real, args.settings)
                                           : args.settings.prefix};
  // Fail closed: without a trusted index there is no mount at all.
  auto started = MountServices::start(args.settings, ctx.nodes.root().fd.get(), paths, log);
  if (!started) daemon.fail(started.error().message, 1);
  const std::unique_ptr<MountServices> services = std::move(started.value());
  ctx.core = services.get();

  SessionPtr se = new_session(args, ctx, argv[0]);
  if (!se || fuse_set_signal_handlers(se.get()) != 0) daemon.fail("cannot start a FUSE session", 1);
  ctx.session = se.get();
  fs::NodeReclaimer reclaimer(ctx.nodes, se.get(), budget);
  ctx.reclaimer = &reclaimer;
  reload_on_sighup(services->reloader());
  if (fuse_session_mount(se.get(), args.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se.get());
    daemon.fail("cannot mount on " + args.mountpoint, 1);
  }
  if (args.settings.read_ahead_kib && geteuid() == 0) {
    if (auto set = set_read_ahead(args.mountpoint, args.settings.read_ahead_kib); !set) {
      log.notice(LOG_WARNING, "read-ahead left as the kernel has it: " + set.error().message);
    }
  }
  log.notice(LOG_INFO, "mounted " + std::string(source_real) + " on " + args.mountpoint +
                           " (mode=" + std::string(to_string(args.settings.policy.mode)) +
                           (args.settings.verify ? "" : ", verification off") + ")");
  daemon.ready();
  services->mounted();
  fuse_loop_config config{};
  config.clone_fd = 0;
  config.max_idle_threads = 16;
  int rc = fuse_session_loop_mt(se.get(), &config);
  fuse_session_unmount(se.get());
  fuse_remove_signal_handlers(se.get());
  log.notice(LOG_INFO, "unmounted " + args.mountpoint);
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace digestfs

int main(int argc, char** argv) { return digestfs::run(argc, argv); }
