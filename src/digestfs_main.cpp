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

#include "fs/mount_context.hpp"
#include "src/command_line.hpp"
#include "src/daemon.hpp"
#include "src/dead_mount.hpp"
#include "src/fd_limit.hpp"
#include "src/heap_policy.hpp"
#include "src/measurement_log.hpp"
#include "src/mount_args.hpp"
#include "src/tpm_extender.hpp"
#include "src/trusted_index.hpp"

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

// Everything verification needs while mounted: the checker, the reloader and the primer.
struct FileClose {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileClose>;

struct Verification {
  std::unique_ptr<TpmExtender> tpm;
  FilePtr ascii_log, binary_log;
  std::unique_ptr<MeasurementLog> measurements;
  std::unique_ptr<IntegrityChecker> checker;
  std::unique_ptr<IndexReloader> reloader;
  std::unique_ptr<Primer> primer;

  // Loads the trusted index and wires the parts into ctx.
  static Result<std::unique_ptr<Verification>> start(const Settings& settings,
                                                     fs::MountContext& ctx, EventLog& log) {
    auto loaded = load_trusted_index(settings);
    if (!loaded) {
      log.notice(LOG_ERR, "not mounting: " + loaded.error().message);
      return loaded.error();
    }
    report_index(*loaded->index, log);
    log.notice(LOG_INFO, "index generation " + std::to_string(loaded->index->generation()) + ": " +
                             std::to_string(loaded->index->packages().size()) + " packages, " +
                             std::to_string(loaded->index->file_count()) + " files, " +
                             std::to_string(loaded->index->rejected().size()) + " rejected");
    auto v = std::make_unique<Verification>();
    v->checker = std::make_unique<IntegrityChecker>(settings.policy, log);
    if (auto measuring = v->start_measurements(settings, log); !measuring) return measuring.error();
    ctx.status.measurements = v->measurements.get();
    ctx.status.tpm = v->tpm.get();
    v->checker->set_index(loaded->index);
    ctx.checker = v->checker.get();
    ctx.status.checker = v->checker.get();
    v->reloader =
        std::make_unique<IndexReloader>(settings, std::move(loaded.value()), *v->checker, log);
    if (auto watching = v->reloader->start(); !watching) {
      log.notice(LOG_WARNING, "no automatic reload: " + watching.error().message);
    } else {
      ctx.reloader = v->reloader.get();
      ctx.status.reloader = v->reloader.get();
    }
    if (settings.prime) {
      v->primer = std::make_unique<Primer>(*v->checker, ctx.nodes.root().fd.get(), ctx.paths, log,
                                           settings.sources.jobs);
      ctx.status.primer = v->primer.get();
    }
    return v;
  }

  // The measurement log and the TPM, when asked for: both must work, or there is no mount.
  Result<void> start_measurements(const Settings& settings, EventLog& log) {
    if (settings.measure_log.empty() && settings.tpm.empty()) return {};
    if (!settings.tpm.empty()) {
      auto opened = TpmExtender::open(settings.tpm, settings.pcr, log);
      if (!opened) return opened.error();
      tpm = std::move(opened.value());
    }
    if (!settings.measure_log.empty()) {
      ascii_log.reset(std::fopen(settings.measure_log.c_str(), "w"));
      binary_log.reset(std::fopen((settings.measure_log.string() + ".bin").c_str(), "wb"));
      if (!ascii_log || !binary_log)
        return errno_error("measurement log " + settings.measure_log.string());
    }
    TpmExtender* t = tpm.get();
    measurements = std::make_unique<MeasurementLog>(
        settings.pcr, ascii_log.get(), binary_log.get(),
        t ? MeasurementLog::Sink([t](const Measurement& m) { t->enqueue(m); }) : nullptr);
    checker->set_measurements(measurements.get());
    return {};
  }
};

struct FuseArgs {
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  ~FuseArgs() { fuse_opt_free_args(&args); }
};
struct SessionFree {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

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
  // The nodes may hold all fds but a reserve for open files, directories, the database.
  const rlim_t fd_limit = raise_open_file_limit();
  const size_t node_budget = fd_limit - std::min<rlim_t>(1024, fd_limit / 4);
  if (fd_limit < 262144) {
    log.notice(LOG_WARNING, "open-file limit " + std::to_string(fd_limit) + ": past " +
                                std::to_string(node_budget / 4 * 3) +
                                " files looked up, the kernel is asked to drop cached entries");
  }
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
  fs::MountContext ctx{fs::NodeTable(std::move(source_fd)),
                       nullptr,
                       StatusSources{nullptr, &log, nullptr, nullptr},
                       nullptr,
                       PathMapping{source_real, args.settings.prefix.empty()
                                                    ? default_prefix(source_real, args.settings)
                                                    : args.settings.prefix},
                       args.read_only,
                       1.0};

  std::unique_ptr<Verification> verification;
  if (args.settings.verify) {
    auto started = Verification::start(args.settings, ctx, log);
    // Fail closed: without a trusted index there is no mount at all.
    if (!started) daemon.fail(started.error().message, 1);
    verification = std::move(started.value());
  }

  FuseArgs fargs;
  fuse_opt_add_arg(&fargs.args, argv[0]);
  if (args.debug) fuse_opt_add_arg(&fargs.args, "-d");
  std::string opts = "default_permissions,fsname=" + args.source + ",subtype=digestfs";
  if (geteuid() == 0) opts += ",allow_other";
  for (const auto& o : args.kernel_options) opts += "," + o;
  fuse_opt_add_arg(&fargs.args, "-o");
  fuse_opt_add_arg(&fargs.args, opts.c_str());

  std::unique_ptr<fuse_session, SessionFree> se(
      fuse_session_new(&fargs.args, &fs::operations(), sizeof(fuse_lowlevel_ops), &ctx));
  if (!se || fuse_set_signal_handlers(se.get()) != 0) daemon.fail("cannot start a FUSE session", 1);
  ctx.session = se.get();
  fs::NodeReclaimer reclaimer(ctx.nodes, se.get(), node_budget);
  ctx.reclaimer = &reclaimer;
  // libfuse ends the session on SIGHUP; here it means "reload the trusted index".
  if (ctx.reloader) {
    g_reloader = ctx.reloader;
    struct sigaction hup {};
    hup.sa_handler = [](int) { g_reloader.load()->request(); };
    sigemptyset(&hup.sa_mask);
    hup.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &hup, nullptr);
  }
  if (fuse_session_mount(se.get(), args.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se.get());
    daemon.fail("cannot mount on " + args.mountpoint, 1);
  }
  log.notice(LOG_INFO, "mounted " + std::string(source_real) + " on " + args.mountpoint +
                           " (mode=" + std::string(to_string(args.settings.policy.mode)) +
                           (args.settings.verify ? "" : ", verification off") + ")");
  daemon.ready();
  if (verification && verification->primer) verification->primer->start();
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
