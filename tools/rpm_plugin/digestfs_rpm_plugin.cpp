// digestfs's rpm plugin: at the end of every transaction, each running digestfs that trusts
// the database the transaction wrote is told to reload, and the transaction returns only once
// the new index is in force there, so that `rpm -i foo && foo` finds foo trusted. Bounded by
// the daemon (its reload-wait, at least a second); a dead or absent daemon is skipped; a
// transaction never fails because of it. (What bypasses the plugin is still seen by the
// daemon's watch on the database, and an open that races it waits for the reload.)
#include <limits.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmmacro.h>
#include <rpm/rpmts.h>
#include <stdlib.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "src/base/control_xattrs.hpp"
#include "src/base/mount_table.hpp"

namespace {

// The value of `key` in a status document: a JSON string, decoded; "" when absent.
std::string json_string(const std::string& doc, const std::string& key) {
  const std::string head = "\"" + key + "\":\"";
  size_t at = doc.find(head);
  if (at == std::string::npos) return {};
  std::string out;
  for (at += head.size(); at < doc.size() && doc[at] != '"'; ++at) {
    if (doc[at] == '\\' && at + 1 < doc.size()) ++at;
    out += doc[at];
  }
  return out;
}

std::string real(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// The database this transaction wrote, as the daemons name theirs.
std::string transaction_database(rpmts ts) {
  char* dbpath = rpmExpand("%{_dbpath}", nullptr);
  std::string root = rpmtsRootDir(ts) ? rpmtsRootDir(ts) : "/";
  std::string path = (root == "/" ? "" : root) + "/" + (dbpath ? dbpath : "");
  free(dbpath);
  return real(path);
}

rpmRC tsm_post(rpmPlugin, rpmts ts, int) {
  if (rpmtsFlags(ts) & RPMTRANS_FLAG_TEST) return RPMRC_OK;
  const std::string database = transaction_database(ts);
  for (const auto& m : digestfs::mounts()) {
    if (m.type != "fuse.digestfs") continue;
    char status[65536];
    const ssize_t n = getxattr(m.point.c_str(), digestfs::kStatusXattr, status, sizeof status);
    if (n <= 0) continue;  // dead, or another namespace's view: nothing to wait for
    if (real(json_string(std::string(status, static_cast<size_t>(n)), "database")) != database) {
      continue;
    }
    if (setxattr(m.point.c_str(), digestfs::kReloadXattr, "wait", 4, 0) != 0) {
      rpmlog(RPMLOG_WARNING, "digestfs on %s: the new packages are not trusted there yet (%s)\n",
             m.point.c_str(), errno == ETIMEDOUT ? "its reload is late" : std::strerror(errno));
    }
  }
  return RPMRC_OK;
}

}  // namespace

// rpm's plugin interface (rpm/rpmplugin.h, which Debian's librpm-dev does not ship): rpm finds
// the struct of hook pointers named <plugin>_hooks. init, cleanup, tsm_pre and tsm_post come
// first in every rpm since 4.12; the later hooks (8 in rpm 4.18, 10 in later ones) stay null.
struct DigestfsHooks {
  rpmRC (*init)(rpmPlugin, rpmts);
  void (*cleanup)(rpmPlugin);
  rpmRC (*tsm_pre)(rpmPlugin, rpmts);
  rpmRC (*tsm_post)(rpmPlugin, rpmts, int);
  void* later_hooks[16];
};

extern "C" {
DigestfsHooks digestfs_hooks = {nullptr, nullptr, nullptr, tsm_post, {}};
}
