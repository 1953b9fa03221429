#include "src/daemon/mount_services.hpp"

#include <syslog.h>

#include "src/base/control_xattrs.hpp"
#include "src/config/trusted_index.hpp"
#include "src/daemon/kernel_ima.hpp"

namespace digestfs {
namespace {

// A verified version's block tree, and whom to tell when a read does not match it.
class BlockGuard : public ContentGuard {
 public:
  BlockGuard(std::shared_ptr<const BlockTree> tree, IntegrityChecker& checker, std::string path,
             const ContentStamp& stamp)
      : tree_(std::move(tree)), checker_(checker), path_(std::move(path)), stamp_(stamp) {}

  size_t block_size() const override { return BlockTree::kBlockSize; }
  size_t memory_bytes() const override {
    return sizeof(*this) + path_.capacity() + tree_->memory_bytes();
  }

  int check(uint64_t offset, std::span<const unsigned char> bytes) override {
    const auto bad = tree_->first_mismatch(offset, bytes);
    if (!bad) return 0;
    const uint64_t at = *bad * BlockTree::kBlockSize - offset;
    const auto piece = at < bytes.size()
                           ? bytes.subspan(at, std::min(BlockTree::kBlockSize, bytes.size() - at))
                           : std::span<const unsigned char>();
    const Sha256 expected = *bad < tree_->blocks() ? tree_->block_hash(*bad) : Sha256{};
    return checker_.block_mismatch(path_, stamp_, *bad, expected, BlockTree::hash_of_block(piece))
               ? EIO
               : 0;
  }

 private:
  std::shared_ptr<const BlockTree> tree_;
  IntegrityChecker& checker_;
  std::string path_;
  ContentStamp stamp_;
};

}  // namespace

Result<std::unique_ptr<MountServices>> MountServices::start(const Settings& settings, int source_fd,
                                                            PathMapping paths, EventLog& log) {
  std::unique_ptr<MountServices> s(new MountServices(std::move(paths), log));
  s->status_.log = &log;
  if (settings.verify) {
    if (auto started = s->start_verification(settings, source_fd); !started) {
      return started.error();
    }
  }
  return s;
}

MountServices::~MountServices() = default;

Result<void> MountServices::start_verification(const Settings& settings, int source_fd) {
  auto loaded = load_trusted_index(settings);
  if (!loaded) return loaded.error();
  const DigestIndex& index = *loaded->index;
  report_index(index, log_);
  log_.notice(LOG_INFO, "index generation " + std::to_string(index.generation()) + ": " +
                            std::to_string(index.packages().size()) + " packages, " +
                            std::to_string(index.file_count()) + " files, " +
                            std::to_string(index.rejected().size()) + " rejected");
  // Every package rejected is a trust store or a database gone wrong (a wrong key, a damaged
  // file), not a tree to serve: a mount that refuses what no package vouches for would
  // refuse every file, and would replace a mount that works.
  const Policy& policy = settings.policy;
  const bool refuses_all = policy.mode == Mode::Enforce && policy.unknown == UnknownPolicy::Deny &&
                           policy.unknown_exceptions.empty();
  if (refuses_all && index.packages().empty() && !index.rejected().empty()) {
    return Error{EACCES, "no package is trusted: " + std::to_string(index.rejected().size()) +
                             " rejected (see the REJECTED lines)"};
  }
  checker_ = std::make_unique<IntegrityChecker>(settings.policy, log_, settings.block_checks);
  if (auto measuring = start_measurements(settings); !measuring) return measuring.error();
  checker_->set_index(loaded->index);
  status_.checker = checker_.get();
  reloader_ = std::make_unique<IndexReloader>(settings, std::move(loaded.value()), *checker_, log_);
  if (auto watching = reloader_->start(); !watching) {
    log_.notice(LOG_WARNING, "no automatic reload: " + watching.error().message);
    reloader_.reset();
  }
  status_.reloader = reloader_.get();
  reload_wait_ = std::chrono::milliseconds(settings.reload_wait_ms);
  if (reloader_ && reload_wait_.count() > 0) {
    checker_->set_catch_up(
        [this] { return reloader_->catch_up(IndexReloader::Clock::now() + reload_wait_); });
  }
  if (settings.prime) {
    primer_ = std::make_unique<Primer>(*checker_, source_fd, paths_, log_, settings.sources.jobs);
    status_.primer = primer_.get();
  }
  return {};
}

// The measurement log and the TPM, when asked for: both must work, or there is no mount.
Result<void> MountServices::start_measurements(const Settings& settings) {
  if (settings.measure_log.empty() && settings.tpm.empty()) return {};
  if (!settings.tpm.empty()) {
    if (auto free = check_pcr_unused_by_kernel(settings.pcr); !free) return free.error();
    auto opened = TpmExtender::open(settings.tpm, settings.pcr, log_);
    if (!opened) return opened.error();
    tpm_ = std::move(opened.value());
  }
  MeasurementFiles files;
  if (!settings.measure_log.empty()) {
    auto opened = open_measurement_files(settings.measure_log, settings.pcr, tpm_.get());
    if (!opened) return opened.error();
    files = std::move(opened.value());
    for (const auto& line : files.notices) log_.notice(LOG_NOTICE, line);
    if (files.pcr_out_of_step && tpm_) tpm_->started_out_of_step();
    ascii_log_ = std::move(files.ascii);
    binary_log_ = std::move(files.binary);
  }
  TpmExtender* t = tpm_.get();
  measurements_ = std::make_unique<MeasurementLog>(
      settings.pcr, ascii_log_.get(), binary_log_.get(),
      t ? MeasurementLog::Sink([t](const Measurement& m) { t->enqueue(m); }) : nullptr,
      [this](const std::string& why) { log_.notice(LOG_ERR, "measurement log: " + why); });
  measurements_->resume(files.resumed);
  if (tpm_) tpm_->resumed(files.resumed.size());
  if (files.boot_aggregate) measurements_->add(*files.boot_aggregate);
  checker_->set_measurements(measurements_.get());
  status_.measurements = measurements_.get();
  status_.tpm = tpm_.get();
  return {};
}

void MountServices::mounted() {
  if (primer_) primer_->start();
}

OpenDecision MountServices::judge_open(int fd, const struct stat& st) {
  if (!checker_) return OpenDecision{0, false, stamp_of(st), nullptr};
  std::string path = index_path_of(fd, paths_);
  Decision d = checker_->judge_open(fd, st, path);
  return decided(std::move(d), std::move(path));
}

std::optional<OpenDecision> MountServices::judge_without_waiting(int fd, const struct stat& st) {
  if (!checker_) return OpenDecision{0, false, stamp_of(st), nullptr};
  std::string path = index_path_of(fd, paths_);
  std::optional<Decision> d = checker_->judge_without_waiting(fd, st, path);
  if (!d) return std::nullopt;
  return decided(std::move(*d), std::move(path));
}

OpenDecision MountServices::decided(Decision d, std::string path) {
  OpenDecision out{d.allow ? 0 : d.error, d.verified, d.stamp, nullptr};
  if (d.tree)
    out.guard =
        std::make_shared<BlockGuard>(std::move(d.tree), *checker_, std::move(path), d.stamp);
  return out;
}

int MountServices::refuse_beside_writer(int fd) {
  return checker_ && checker_->refuse_served(index_path_of(fd, paths_), Reason::OpenForWriting)
             ? EACCES
             : 0;
}

int MountServices::refuse_changed(int fd) {
  return checker_ && checker_->refuse_served(index_path_of(fd, paths_), Reason::ChangedUnderHandle)
             ? EIO
             : 0;
}

int MountServices::judge_link(int fd, std::string_view target) {
  if (!checker_) return 0;
  const Decision d = checker_->judge_link(index_path_of(fd, paths_), target);
  return d.allow ? 0 : d.error;
}

bool MountServices::allows_link_without_waiting(int fd, std::string_view target) {
  return !checker_ || checker_->allows_link(index_path_of(fd, paths_), target);
}

std::optional<std::string> MountServices::read_control(std::string_view name) {
  if (name == kStatusXattr) return status_json(status_);
  if (name == kStatusTextXattr) return status_text(status_);
  return std::nullopt;
}

std::optional<int> MountServices::write_control(std::string_view name, std::string_view value) {
  if (name != kReloadXattr) return std::nullopt;
  if (!reloader_) return ENOTSUP;
  const uint64_t ticket = reloader_->request();
  // "wait" (the rpm plugin, at the end of a transaction): answered once the reload ran.
  if (value != "wait") return 0;
  const auto bound = std::max<std::chrono::milliseconds>(reload_wait_, std::chrono::seconds(1));
  return reloader_->wait_for(ticket, IndexReloader::Clock::now() + bound) ? 0 : ETIMEDOUT;
}

}  // namespace digestfs
