// Ops on names and attributes: lookup, attributes, links, directory entries, xattrs, statfs.
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <optional>
#include <string_view>
#include <vector>

#include "fs/ops_common.hpp"
#include "fs/ops_table.hpp"

namespace digestfs::fs {
namespace {

int ok_or_errno(int rc) { return rc == 0 ? 0 : errno; }

// Answers a readlink with the lower's target once judged, or its error; or, unless `may_wait`,
// leaves it unanswered when the target is not plainly allowed: false then.
bool answer_readlink(fuse_req_t req, fuse_ino_t ino, bool may_wait) {
  MountContext& ctx = context(req);
  const NodeFd fd = ctx.nodes.path_fd(ctx.nodes.node(ino));
  char buf[PATH_MAX + 1];
  ssize_t n = fd ? readlinkat(fd.get(), "", buf, sizeof buf - 1) : -1;
  if (n < 0) {
    fuse_reply_err(req, errno);
    return true;
  }
  buf[n] = '\0';
  const std::string_view target(buf, size_t(n));
  if (!may_wait) {
    if (!ctx.core->allows_link_without_waiting(fd.get(), target)) return false;
  } else if (int refused = ctx.core->judge_link(fd.get(), target)) {
    fuse_reply_err(req, refused);
    return true;
  }
  fuse_reply_readlink(req, buf);
  return true;
}

}  // namespace

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  MountContext& ctx = context(req);
  fuse_entry_param e;
  const uint64_t moves = ctx.nodes.moves();
  int err = lookup_entry(ctx, ctx.nodes.node(parent), name, &e);
  if (!err) {
    answer_entries(req, moves, [req, e] { fuse_reply_entry(req, &e); });
  } else if (err == ENOENT) {
    e = fuse_entry_param{};
    e.entry_timeout = ctx.timeout;  // a cached negative entry
    fuse_reply_entry(req, &e);
  } else {
    fuse_reply_err(req, err);
  }
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  context(req).nodes.forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) context(req).nodes.forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  MountContext& ctx = context(req);
  struct stat st;
  const NodeFd fd = ctx.nodes.path_fd(ctx.nodes.node(ino));
  if (!fd || fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_reply_attr(req, &st, attr_timeout(ctx, st));
}

namespace {

void set_attributes(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid,
                    fuse_file_info* fi) {
  MountContext& ctx = context(req);
  const NodeFd fd = ctx.nodes.path_fd(ctx.nodes.node(ino));
  if (!fd) {
    fuse_reply_err(req, errno);
    return;
  }
  const std::string path = proc_path(fd.get());
  int err = 0;
  if (!err && (valid & FUSE_SET_ATTR_MODE)) {
    err = ok_or_errno(chmod(path.c_str(), attr->st_mode));
  }
  if (!err && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    err = ok_or_errno(fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
  }
  if (!err && (valid & FUSE_SET_ATTR_SIZE)) {
    if (fi) {
      err = ok_or_errno(ftruncate(open_file_fd(fi), attr->st_size));
    } else {
      err = ok_or_errno(truncate(path.c_str(), attr->st_size));
    }
  }
  if (!err && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    struct timespec tv[2];
    tv[0].tv_sec = 0;
    tv[1].tv_sec = 0;
    tv[0].tv_nsec = UTIME_OMIT;
    tv[1].tv_nsec = UTIME_OMIT;
    if (valid & FUSE_SET_ATTR_ATIME_NOW)
      tv[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME)
      tv[0] = attr->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW)
      tv[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME)
      tv[1] = attr->st_mtim;
    err =
        ok_or_errno(fi ? futimens(open_file_fd(fi), tv) : utimensat(AT_FDCWD, path.c_str(), tv, 0));
  }
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  op_getattr(req, ino, fi);
}

}  // namespace

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid, fuse_file_info* fi) {
  if (!(valid & FUSE_SET_ATTR_SIZE)) {
    set_attributes(req, ino, attr, valid, fi);
    return;
  }
  // A size change may write to the disk, and a truncate by path breaks any lease on the
  // file, waiting for its holder (see open_lower): never on the request loop.
  std::optional<fuse_file_info> opened;
  if (fi) opened = *fi;
  answer_off_loop(req, [req, ino, changed = *attr, valid, opened]() mutable {
    set_attributes(req, ino, &changed, valid, opened ? &*opened : nullptr);
  });
}

// An allowed target needs no waiting: answered on the request loop. Anything else goes to a
// thread that may wait (a refusal waits for a reload that could allow it, see
// judged_up_to_date) and logs a refusal.
void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  if (answer_readlink(req, ino, false)) return;
  answer_off_loop(req, [req, ino] { answer_readlink(req, ino, true); });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  make_in(req, parent, name, [&](int dir) { return mknodat(dir, name, mode, rdev); });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  make_in(req, parent, name, [&](int dir) { return mkdirat(dir, name, mode); });
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  make_in(req, parent, name, [&](int dir) { return symlinkat(target, dir, name); });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  MountContext& ctx = context(req);
  Node& p = ctx.nodes.node(parent);
  const NodeFd from = ctx.nodes.path_fd(ctx.nodes.node(ino));
  const NodeFd dir = from ? ctx.nodes.path_fd(p) : NodeFd();
  int err = !dir ? errno
                 : ok_or_errno(linkat(AT_FDCWD, proc_path(from.get()).c_str(), dir.get(), name,
                                      AT_SYMLINK_FOLLOW));
  // The new name gets a node of its own (integrity is path-bound), so the kernel does not
  // see that the source gained a link: its cached link count is dropped here. Only
  // attributes (offset -1): no lock the link holds is needed for that.
  if (!err && ctx.session) fuse_lowlevel_notify_inval_inode(ctx.session, ino, -1, 0);
  reply_made(req, p, dir, name, err);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  const NodeFd dir = node_fd(req, parent);
  fuse_reply_err(req, !dir ? errno : ok_or_errno(unlinkat(dir.get(), name, 0)));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  const NodeFd dir = node_fd(req, parent);
  fuse_reply_err(req, !dir ? errno : ok_or_errno(unlinkat(dir.get(), name, AT_REMOVEDIR)));
}

// A symlink target the kernel keeps was judged at the path it was read through: what a
// rename moves (a symlink, or a directory with symlinks beneath) is judged again at its new
// path. The pages of the moved symlink, or of every symlink for a directory, are dropped
// before the rename is answered (their nodes are added to `links`).
static void forget_judged_links(MountContext& ctx, const struct stat& moved,
                                std::vector<fuse_ino_t>& links) {
  if (S_ISLNK(moved.st_mode)) {
    for (const fuse_ino_t ino : ctx.nodes.ids_of(moved.st_dev, moved.st_ino)) links.push_back(ino);
  } else if (S_ISDIR(moved.st_mode)) {
    for (const fuse_ino_t ino : ctx.nodes.links()) links.push_back(ino);
  }
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
  MountContext& ctx = context(req);
  const NodeFd from = node_fd(req, parent);
  const NodeFd to = from ? node_fd(req, newparent) : NodeFd();
  if (!to) {
    fuse_reply_err(req, errno);
    return;
  }
  struct stat moved, exchanged;
  const bool links_kept = ctx.cache_links && ctx.watcher;
  const bool moved_known =
      links_kept && fstatat(from.get(), name, &moved, AT_SYMLINK_NOFOLLOW) == 0;
  const bool exchanged_known = links_kept && (flags & RENAME_EXCHANGE) &&
                               fstatat(to.get(), newname, &exchanged, AT_SYMLINK_NOFOLLOW) == 0;
  const int err = ok_or_errno(renameat2(from.get(), name, to.get(), newname, flags));
  // The watcher does not see the daemon's own renames (see WarmOpens).
  if (!err) ctx.nodes.warm().drop_all();
  std::vector<fuse_ino_t> links;
  if (!err && moved_known) forget_judged_links(ctx, moved, links);
  if (!err && exchanged_known) forget_judged_links(ctx, exchanged, links);
  if (links.empty()) {
    fuse_reply_err(req, err);
    return;
  }
  answer_with_links_dropped(req, std::move(links), [req] { fuse_reply_err(req, 0); });
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  struct statvfs sv;
  const NodeFd fd = node_fd(req, ino);
  if (!fd || fstatvfs(fd.get(), &sv) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_reply_statfs(req, &sv);
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  const NodeFd fd = node_fd(req, ino);
  fuse_reply_err(
      req, !fd ? errno
               : ok_or_errno(faccessat(AT_FDCWD, proc_path(fd.get()).c_str(), mask, AT_EACCESS)));
}

// The mount root answers its control attributes itself; they never reach the lower tree.
static bool reply_control(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (ino != FUSE_ROOT_ID) return false;
  const std::optional<std::string> value = context(req).core->read_control(name);
  if (!value) return false;
  if (size == 0)
    fuse_reply_xattr(req, value->size());
  else if (size < value->size())
    fuse_reply_err(req, ERANGE);
  else
    fuse_reply_buf(req, value->data(), value->size());
  return true;
}

// getxattr and listxattr answer a size query (size 0) with the size, else with the bytes.
static void reply_xattr_bytes(fuse_req_t req, ssize_t n, size_t size,
                              const std::vector<char>& buf) {
  if (n < 0)
    fuse_reply_err(req, errno);
  else if (size == 0)
    fuse_reply_xattr(req, static_cast<size_t>(n));
  else
    fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
}

// xattr calls take a path; the fd's proc path names exactly the node's file.
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (reply_control(req, ino, name, size)) return;
  const NodeFd fd = node_fd(req, ino);
  if (!fd) {
    fuse_reply_err(req, errno);
    return;
  }
  const std::string path = proc_path(fd.get());
  std::vector<char> buf(size);
  reply_xattr_bytes(req, getxattr(path.c_str(), name, size ? buf.data() : nullptr, size), size,
                    buf);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  const NodeFd fd = node_fd(req, ino);
  if (!fd) {
    fuse_reply_err(req, errno);
    return;
  }
  const std::string path = proc_path(fd.get());
  std::vector<char> buf(size);
  reply_xattr_bytes(req, listxattr(path.c_str(), size ? buf.data() : nullptr, size), size, buf);
}

static void set_xattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                      size_t size, int flags) {
  if (ino == FUSE_ROOT_ID) {
    if (auto done = context(req).core->write_control(name, std::string_view(value, size))) {
      fuse_reply_err(req, *done);
      return;
    }
  }
  const NodeFd fd = node_fd(req, ino);
  fuse_reply_err(
      req,
      !fd ? errno : ok_or_errno(setxattr(proc_path(fd.get()).c_str(), name, value, size, flags)));
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
  if (ino != FUSE_ROOT_ID) {
    set_xattr(req, ino, name, value, size, flags);
    return;
  }
  // A control write may wait for the reload it asks for: the root's are set off the loop.
  answer_off_loop(req, [req, named = std::string(name), bytes = std::string(value, size), flags] {
    set_xattr(req, FUSE_ROOT_ID, named.c_str(), bytes.data(), bytes.size(), flags);
  });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  const NodeFd fd = node_fd(req, ino);
  fuse_reply_err(req, !fd ? errno : ok_or_errno(removexattr(proc_path(fd.get()).c_str(), name)));
}

}  // namespace digestfs::fs
