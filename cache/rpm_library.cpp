#include "cache/rpm_library.hpp"

#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmmacro.h>

namespace digestfs::rpm {
namespace {

thread_local std::string thread_log;

// librpm would print to stderr; the library's callers decide what the user sees.
int capture_log(rpmlogRec rec, rpmlogCallbackData) {
  if (rpmlogRecPriority(rec) <= RPMLOG_WARNING) {
    thread_log += rpmlogRecMessage(rec);
  }
  return 0;
}

std::mutex& macro_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void ensure_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    rpmlogSetCallback(capture_log, nullptr);
    rpmReadConfigFiles(nullptr, nullptr);
  });
}

std::string take_thread_log() {
  std::string out;
  out.swap(thread_log);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  // One line per report: librpm's lines become "; "-separated clauses.
  for (size_t pos = 0; (pos = out.find('\n', pos)) != std::string::npos;) out.replace(pos, 1, "; ");
  return out;
}

TsPtr make_ts(rpmKeyring keyring, rpmVSFlags vsflags) {
  ensure_initialized();
  TsPtr ts(rpmtsCreate());
  // Setting the keyring up front stops librpm from loading gpg-pubkey headers out of the
  // database it reads: keys inside the protected tree are never trusted implicitly.
  rpmtsSetKeyring(ts.get(), keyring);
  rpmtsSetVSFlags(ts.get(), vsflags);
  return ts;
}

ScopedDbPath::ScopedDbPath(const std::filesystem::path& dbpath) : lock_(macro_mutex()) {
  ensure_initialized();
  rpmPushMacro(nullptr, "_dbpath", nullptr, dbpath.c_str(), RMIL_CMDLINE);
}

ScopedDbPath::~ScopedDbPath() { rpmPopMacro(nullptr, "_dbpath"); }

}  // namespace digestfs::rpm
