// digestfs: mounts SOURCE at MOUNTPOINT and serves each regular file only when its content
// matches a digest that a trusted package signed for its path.
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <optional>

#include "fs/lower_watcher.hpp"
#include "fs/mount_context.hpp"
#include "fs/request_loop.hpp"
#include "src/config/command_line.hpp"
#include "src/daemon/daemon.hpp"
#include "src/daemon/fd_limit.hpp"
#include "src/daemon/heap_policy.hpp"
#include "src/daemon/mount_args.hpp"
#include "src/daemon/mount_point.hpp"
#include "src/daemon/mount_services.hpp"
#include "src/daemon/read_ahead.hpp"

namespace digestfs {
namespace {

// How long the kernel may cache names, attributes and missing names: a day while the
// watcher tells it of every change beneath the mount; otherwise a second, so that changes
// behind it are seen that soon.
constexpr double kWatchedCacheSeconds = 86400;
constexpr double kUnwatchedCacheSeconds = 1;

constexpr const char* kUsage =
    "usage: digestfs [-f] [-q] [-d] [-o OPTION[,OPTION...]] SOURCE MOUNTPOINT\n"
    "       digestfs [-o OPTION[,OPTION...]] --print-config\n"
    "  -f   stay in the foreground, log to stderr as well as syslog\n"
    "  -d   foreground with FUSE debug output\n"
    "  -q   in the foreground, only refusals on stderr (all else goes to syslog)\n"
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

// Every file the settings name inside a source that the mount hides is read through the
// source's bind (see MountPoint::reach).
void reach_through_the_bind(Settings& settings, const MountPoint& point) {
  auto reach = [&](std::filesystem::path& p) { p = point.reach(p); };
  reach(settings.keys);
  reach(settings.measure_log);
  SourceOptions& sources = settings.sources;
  reach(sources.root);
  for (auto& p : sources.packages) reach(p);
  DebianSourceOptions& debian = sources.debian;
  for (auto* p : {&debian.lists, &debian.status, &debian.cache, &debian.cache_key}) reach(*p);
  for (auto& p : debian.debs) reach(p);
}

// The nodes may hold all fds but a reserve for open files, directories, the database. Nodes
// kept as file handles hold none (hard-linked files aside): then the limit is no concern.
size_t node_budget(EventLog& log, bool by_handle) {
  const rlim_t fd_limit = raise_open_file_limit();
  const size_t budget = fd_limit - std::min<rlim_t>(1024, fd_limit / 4);
  if (fd_limit < 262144 && !by_handle) {
    log.notice(LOG_WARNING, "open-file limit " + std::to_string(fd_limit) + ": past " +
                                std::to_string(budget / 4 * 3) +
                                " files looked up, the kernel is asked to drop cached entries");
  }
  return budget;
}

// How many verified files may stay open for reopening (fs/warm_opens.hpp): as asked, within
// half of what nodes kept as handles leave of the open-file limit; by default a quarter, and
// one per 64 KiB of memory at most: each pins an inode and a dentry in the kernel (about
// 1.5 KiB) that memory pressure cannot reclaim.
size_t warm_capacity(const std::optional<unsigned>& asked, size_t node_budget) {
  if (asked) return std::min<size_t>(*asked, node_budget / 2);
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  const size_t by_limit = node_budget / 4;
  if (pages <= 0 || page_size <= 0) return by_limit;
  return std::min(by_limit, static_cast<size_t>(pages) * static_cast<size_t>(page_size) / 65536);
}

// fsname: the source as the mount table is to name it (MountPoint::source_named).
SessionPtr new_session(const MountArgs& args, const std::string& fsname, fs::MountContext& ctx,
                       const char* argv0) {
  FuseArgs fargs;
  fuse_opt_add_arg(&fargs.args, argv0);
  if (args.debug) fuse_opt_add_arg(&fargs.args, "-d");
  std::string opts = "default_permissions,fsname=" + fsname + ",subtype=digestfs";
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

std::atomic<fuse_session*> g_session{nullptr};
std::atomic<int> g_stop_signal{0};
pthread_t g_loop_thread;  // set before the handler is

// SIGTERM and SIGINT end the loop; which one it was decides what the mount is left as. Called
// on the thread that serves requests.
void stop_on_signals(fuse_session* se) {
  g_session = se;
  g_loop_thread = pthread_self();
  struct sigaction stop {};
  stop.sa_handler = [](int sig) {
    g_stop_signal = sig;
    if (fuse_session* s = g_session.load()) fuse_session_exit(s);
    // The loop sees that at its next request, or when a signal ends its wait for one: taken
    // by another thread (the kernel picks one when the main thread has a signal pending
    // already), the signal is sent on, or an idle mount would not stop.
    if (!pthread_equal(pthread_self(), g_loop_thread)) pthread_kill(g_loop_thread, sig);
  };
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

MountPoint::Ending ending() {
  switch (g_stop_signal.load()) {
    case SIGTERM: return MountPoint::Ending::Stop;
    case SIGINT: return MountPoint::Ending::Interrupt;
    default: return MountPoint::Ending::Unmounted;
  }
}

// Why the mount on `mountpoint` was not made. Root refused a mount call is missing
// CAP_SYS_ADMIN (a unit's or a container's capability bounding set): that is said too.
std::string not_mounted(const std::string& mountpoint, const Error& why) {
  std::string said = "cannot mount on " + mountpoint + ": " + why.message;
  if (why.code == EPERM && geteuid() == 0) said += " (mounting takes CAP_SYS_ADMIN)";
  return said;
}

// Gives up on mounting: said once, to syslog and (in the foreground) stderr, and by the
// parent that waits for the daemon.
[[noreturn]] void give_up(Daemon& daemon, EventLog& log, const std::string& why) {
  log.failure(why);
  daemon.fail(why, 1);
}

// Mounts the session: as root through the kernel's mount API (so that the new instance can go
// beneath the mount it replaces), else through fusermount3 as libfuse does.
Result<void> mount_session(fuse_session* se, MountPoint& point, const MountArgs& args) {
  if (geteuid() != 0) {
    if (fuse_session_mount(se, args.mountpoint.c_str()) != 0) {
      return Error{EIO, "fusermount3 did not mount it"};
    }
    return {};
  }
  auto options = kernel_options(args.kernel_options);
  if (!options) return options.error();
  UniqueFd fuse(open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fuse) return errno_error("/dev/fuse");
  if (auto attached = point.attach(fuse.get(), *options); !attached) {
    return attached.error();
  }
  // libfuse takes the fd as that of a mount made by someone else (and closes it at the end).
  if (fuse_session_mount(se, ("/dev/fd/" + std::to_string(fuse.get())).c_str()) != 0) {
    return Error{EIO, "libfuse does not take the mounted /dev/fuse"};
  }
  fuse.release();
  return {};
}

int run(int argc, char** argv) {
  auto parsed = parse_mount_args(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "digestfs: %s\n%s%s", parsed.error().message.c_str(), kUsage,
                 options_help(true).c_str());
    return 2;
  }
  MountArgs& args = *parsed;
  if (args.help) {
    std::printf("%s%s", kUsage, options_help(true).c_str());
    return 0;
  }
  if (args.print_config) {
    std::fputs(print_config(args.settings).c_str(), stdout);
    return 0;
  }
  openlog("digestfs", LOG_PID, LOG_DAEMON);
  // Detach first: oneTBB's threads and the reloader's must be born in the daemon itself.
  Daemon daemon(args.foreground);
  EventLog log(args.foreground, true, !args.quiet);

  keep_large_blocks_off_the_heap();
  // The source is opened before mounting: the mount may hide it (digestfs /usr /usr).
  auto prepared = MountPoint::prepare(args.source, args.mountpoint, log);
  if (!prepared) give_up(daemon, log, not_mounted(args.mountpoint, prepared.error()));
  MountPoint point = std::move(prepared.value());
  fs::MountContext ctx{.nodes = fs::NodeTable(point.take_source_fd(), args.settings.file_handles),
                       .read_only = args.read_only};
  const size_t budget = node_budget(log, ctx.nodes.by_handle());
  const PathMapping paths{point.source_path(),
                          args.settings.prefix.empty()
                              ? default_prefix(point.source_named(), args.settings)
                              : args.settings.prefix};
  reach_through_the_bind(args.settings, point);
  // Fail closed: without a trusted index there is no mount at all, and whatever mount is
  // there (a dead one) stays.
  auto started = MountServices::start(args.settings, ctx.nodes.root_fd(), paths, log);
  if (!started) give_up(daemon, log, "not mounting: " + started.error().message);
  const std::unique_ptr<MountServices> services = std::move(started.value());
  ctx.core = services.get();

  SessionPtr se = new_session(args, point.source_named(), ctx, argv[0]);
  if (!se) give_up(daemon, log, "cannot start a FUSE session");
  ctx.session = se.get();
  // Long caching, kept true by the watcher's invalidations; without a watcher, short expiry.
  std::unique_ptr<fs::LowerWatcher> watcher;
  if (args.settings.watch_source) {
    auto watching = fs::LowerWatcher::start(ctx.nodes.root_fd(), ctx.nodes, se.get());
    if (watching) {
      watcher = std::move(watching.value());
    } else {
      log.notice(LOG_WARNING,
                 "names and attributes cached for 1 s only: cannot watch the "
                 "source (" +
                     watching.error().message + ")");
    }
  }
  ctx.timeout = watcher ? kWatchedCacheSeconds : kUnwatchedCacheSeconds;
  ctx.cache_listings = watcher != nullptr;
  ctx.cache_links = watcher != nullptr;
  ctx.watcher = watcher.get();
  if (watcher && ctx.nodes.by_handle()) {
    // The verdicts past the kept fds hold block trees too: no more than the memo may.
    ctx.nodes.warm().set_capacity(warm_capacity(args.settings.keep_open, budget),
                                  args.settings.block_checks.memory_bytes);
  }
  if (watcher) services->on_new_index([&w = *watcher] { w.drop_links_soon(); });
  // The services' reloader outlives the watcher (it was made first): stop telling it first.
  struct StopTelling {
    MountServices& services;
    ~StopTelling() { services.on_new_index({}); }
  } stop_telling{*services};
  services->set_kernel_cache(watcher ? "fanotify" : "timeout 1 s",
                             watcher ? &watcher->invalidations() : nullptr);
  services->set_nodes(ctx.nodes.by_handle() ? "file handles" : "fds", &ctx.nodes.size_counter(),
                      &ctx.nodes.fds_counter(), &ctx.nodes.warm().size_counter(),
                      &ctx.nodes.warm().verdict_counter());
  fs::NodeReclaimer reclaimer(ctx.nodes, se.get(), budget);
  ctx.reclaimer = &reclaimer;
  stop_on_signals(se.get());
  reload_on_sighup(services->reloader());
  if (auto mounted = mount_session(se.get(), point, args); !mounted) {
    give_up(daemon, log, not_mounted(args.mountpoint, mounted.error()));
  }
  // What ends the connection at a stop while a drop of kept symlink targets is under way.
  UniqueFd connection_abort;
  if (ctx.cache_links && !point.device().empty()) {
    connection_abort = point.connection_abort();
    if (!connection_abort) {
      log.notice(LOG_WARNING, "no fusectl abort file for " + point.device() + " (" +
                                  std::strerror(errno) +
                                  "): a stop during a drop of kept symlink targets may hang");
    }
    ctx.connection_abort = connection_abort.get();
  }
  // Set before the loop answers INIT, whose reply offers the same (see MountContext).
  if (!point.device().empty() && args.settings.read_ahead_kib) {
    if (auto set = set_read_ahead(point.device(), args.settings.read_ahead_kib); !set) {
      log.notice(LOG_WARNING, "read-ahead left as the kernel has it: " + set.error().message);
    } else {
      ctx.read_ahead_kib = args.settings.read_ahead_kib;
    }
  }
  log.notice(LOG_INFO, "mounted " + point.source_named() + " on " + point.path() +
                           " (mode=" + std::string(to_string(args.settings.policy.mode)) +
                           (args.settings.verify ? "" : ", verification off") + ")");
  daemon.ready();
  services->mounted();
  const int rc = fs::serve_requests(se.get(), ctx);
  fuse_session_unmount(se.get());
  point.leave(ending());
  log.notice(LOG_INFO, "ended on " + point.path());
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace digestfs

int main(int argc, char** argv) { return digestfs::run(argc, argv); }
