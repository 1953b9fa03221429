// Open files: the ops where integrity is enforced (open, create, read) and the plain
// passthrough ones (write, flush, release, fsync, fallocate).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fs/ops_common.hpp"
#include "fs/ops_table.hpp"
#include "src/base/buffer_pool.hpp"

namespace digestfs::fs {
namespace {

struct OpenFile {
  std::shared_ptr<const UniqueFd> fd;  // shared with the node (and WarmOpens): reads use pread
  bool readable = true;   // false: the open was not judged for reading (write-only, create)
  bool verified = false;  // reads must come from the version that was verified
  bool cached_writer = false;
  ContentStamp stamp;
  std::shared_ptr<ContentGuard> guard;  // verified with block checks: every read is checked
  Node* node = nullptr;                 // the kernel holds its inode while a handle is open
};

OpenFile* open_file(const fuse_file_info* fi) { return reinterpret_cast<OpenFile*>(fi->fh); }

bool wants_read(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
bool wants_write(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }
// An open for reading that an fd kept from another such open answers as a new one would.
bool plain_read(int flags) {
  return (flags & O_ACCMODE) == O_RDONLY &&
         !(flags & (O_TRUNC | O_APPEND | O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC | O_PATH));
}

// How an open is judged: in full (it may hash, or wait for a reload), or on the request loop,
// which must not wait (see MountCore::judge_without_waiting).
enum class Judging { Full, WithoutWaiting };
constexpr int kUndecided = -1;  // what WithoutWaiting could not decide (never an errno)

// Judges an fd opened for reading (by open or create), st its fstat: 0 when it may be read,
// else the errno of the refusal, or kUndecided.
int admit(MountContext& ctx, OpenFile& file, const struct stat& st, Judging how = Judging::Full) {
  std::optional<OpenDecision> known;
  if (how == Judging::WithoutWaiting) {
    known = ctx.core->judge_without_waiting(file.fd->get(), st);
    if (!known) return kUndecided;
  }
  const OpenDecision d = known ? std::move(*known) : ctx.core->judge_open(file.fd->get(), st);
  if (d.error) return d.error;
  file.verified = d.verified;
  file.stamp = d.stamp;
  file.guard = d.guard;
  return 0;
}

// Decides how the kernel may cache this handle's pages (see Node::served_mutex) and counts it.
// False, with nothing decided, for a verified handle while a writer has the page cache, unless
// `beside_writer` (the refusal was audited): FOPEN_DIRECT_IO keeps its reads off that cache,
// but not a private mapping (the kernel maps those from the page cache all the same).
[[nodiscard]] bool share_page_cache(Node& node, OpenFile& file, fuse_file_info* fi,
                                    bool beside_writer = false) {
  std::lock_guard lock(node.served_mutex);
  const bool writes = wants_write(fi->flags);
  if (file.verified && node.cached_writers > 0 && !beside_writer) return false;
  fi->direct_io = (writes && (file.verified || node.verified_readers > 0)) ||
                  (file.verified && node.cached_writers > 0);
  file.node = &node;
  file.cached_writer = writes && !fi->direct_io;
  node.cached_writers += file.cached_writer;
  node.verified_readers += file.verified;
  if (writes) {
    // What a writer puts in the page cache is no version anybody verified, and it may write
    // between a reader's judgement and that reader's arrival here: from now on no handle may
    // keep the pages cached so far.
    node.served = ContentStamp{};
  } else if (file.readable && !fi->direct_io) {
    // The kernel may keep cached pages only of the very version they were read from.
    fi->keep_cache = node.served == file.stamp;
    node.served = file.stamp;
  }
  return true;
}

// Judges `file` by what its node remembers, st being the fstat of the lower file: false when
// the file, its links or a verdict may have changed since it was verified.
bool judged_as_before(MountContext& ctx, const WarmOpen& warm, const struct stat& st,
                      OpenFile& file) {
  if (warm.verdicts != ctx.core->verdict_epoch() || st.st_nlink != 1 ||
      !(stamp_of(st) == warm.stamp)) {
    return false;
  }
  ctx.core->reopened();
  file.verified = true;
  file.stamp = warm.stamp;
  file.guard = warm.guard;
  return true;
}

// Answers an open from the fd kept for the node: false when none is kept, or when it cannot
// be judged as before.
bool reopen_warm(MountContext& ctx, Node& node, OpenFile& file) {
  const auto warm = ctx.nodes.warm().find(node);
  struct stat st;
  if (!warm || !warm->fd || fstat(warm->fd->get(), &st) != 0 ||
      !judged_as_before(ctx, *warm, st, file)) {
    return false;
  }
  file.fd = warm->fd;
  return true;
}

// Opens the node's lower file and, when it is opened for reading, judges it: 0, the errno to
// answer, or kUndecided.
int open_lower(MountContext& ctx, Node& node, int flags, OpenFile& file, Judging how) {
  // An open that breaks a lease on the lower file waits for its holder to let go (up to
  // /proc/sys/fs/lease-break-time): on the request loop that would stall the whole mount, so
  // the loop opens with O_NONBLOCK, which fails at once with EWOULDBLOCK instead, and leaves
  // the open to a thread that may wait. Unless the caller asked for O_NONBLOCK itself, it is
  // taken off the fd again.
  const bool without_waiting = how == Judging::WithoutWaiting && !(flags & O_NONBLOCK);
  UniqueFd fd = ctx.nodes.open(node, without_waiting ? flags | O_NONBLOCK : flags);
  if (!fd) return without_waiting && errno == EWOULDBLOCK ? kUndecided : errno;
  if (without_waiting && fcntl(fd.get(), F_SETFL, flags) != 0) return errno;
  file.fd = std::make_shared<const UniqueFd>(std::move(fd));
  struct stat st;
  if (fstat(file.fd->get(), &st) != 0) return errno;
  // The name the kernel still caches was removed or replaced behind the mount (a package
  // update renames new files over old ones): ESTALE has the kernel look the name up afresh
  // and open whatever is there now, as an open on the lower filesystem would.
  // So is a file opened by its handle that has gained a link behind the mount: its fd may
  // show another of its paths, and the new lookup gives the name a node of its own.
  if (st.st_nlink == 0 || !ctx.nodes.names_its_path(node, st)) return ESTALE;
  file.readable = wants_read(flags);
  if (!file.readable) return 0;
  // A node whose kept fd was closed past the capacity still remembers its verdict.
  const auto warm = ctx.nodes.warm().find(node);
  return warm && judged_as_before(ctx, *warm, st, file) ? 0 : admit(ctx, file, st, how);
}

void forget_handle(const OpenFile& file) {
  std::lock_guard lock(file.node->served_mutex);
  file.node->cached_writers -= file.cached_writer;
  file.node->verified_readers -= file.verified;
}

// Answers an open that `file` now serves.
void reply_opened(fuse_req_t req, Node& node, std::unique_ptr<OpenFile> file, fuse_file_info* fi) {
  MountContext& ctx = context(req);
  if (!share_page_cache(node, *file, fi)) {
    if (int refused = ctx.core->refuse_beside_writer(file->fd->get())) {
      fuse_reply_err(req, refused);
      return;
    }
    (void)share_page_cache(node, *file, fi, true);
  }
  ctx.nodes.hold(node, file->fd);
  // A handle that cannot have written has nothing to flush: close() then costs no round trip
  // (POSIX locks are the kernel's own here, as no lock op is implemented).
  fi->noflush = !wants_write(fi->flags);
  fi->fh = reinterpret_cast<uint64_t>(file.release());
  fuse_reply_open(req, fi);
}

// An open that no kept fd answers: the file is opened and judged, and the open answered.
// False, with nothing answered, when judging WithoutWaiting could not decide.
bool open_judged(fuse_req_t req, Node& node, fuse_file_info* fi, Judging how) {
  MountContext& ctx = context(req);
  auto file = std::make_unique<OpenFile>();
  // Taken first: a verdict judged before a change must not be kept past it.
  const uint64_t verdicts = ctx.core->verdict_epoch();
  const uint64_t renames = ctx.nodes.warm().renames();
  if (int err = open_lower(ctx, node, fi->flags, *file, how)) {
    if (err == kUndecided) return false;
    fuse_reply_err(req, err);
    return true;
  }
  if (plain_read(fi->flags) && file->verified) {
    ctx.nodes.warm().keep(node, WarmOpen{file->fd, file->stamp, file->guard, verdicts, renames});
  }
  reply_opened(req, node, std::move(file), fi);
  return true;
}

// Creates and judges the new file (see op_create).
void create_judged(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                   fuse_file_info* fi) {
  MountContext& ctx = context(req);
  Node& p = ctx.nodes.node(parent);
  const NodeFd dir = ctx.nodes.path_fd(p);
  if (!dir) {
    fuse_reply_err(req, errno);
    return;
  }
  UniqueFd created;
  if (int err = as_caller(req, [&] {
        created.reset(openat(dir.get(), name, (fi->flags | O_CREAT) & ~O_NOFOLLOW, mode));
        return created.get();
      })) {
    fuse_reply_err(req, err);
    return;
  }
  auto file = std::make_unique<OpenFile>();
  file->fd = std::make_shared<const UniqueFd>(std::move(created));
  fuse_entry_param e;
  if (int err = lookup_entry(ctx, p, dir.get(), name, &e)) {
    fuse_reply_err(req, err);
    return;
  }
  // A new file is judged like any other before it is read: under unknown=deny it is not,
  // though the create itself (and writing) succeeds.
  struct stat st;
  file->readable =
      wants_read(fi->flags) && fstat(file->fd->get(), &st) == 0 && admit(ctx, *file, st) == 0;
  if (!share_page_cache(ctx.nodes.node(e.ino), *file, fi)) {
    // Created beside a writer that got there first: the create stands, its reads do not.
    file->readable = file->verified = false;
    (void)share_page_cache(ctx.nodes.node(e.ino), *file, fi);
  }
  ctx.nodes.hold(ctx.nodes.node(e.ino), file->fd);
  fi->fh = reinterpret_cast<uint64_t>(file.release());
  fuse_reply_create(req, &e, fi);
}

}  // namespace

int open_file_fd(const fuse_file_info* fi) { return open_file(fi)->fd->get(); }

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  MountContext& ctx = context(req);
  if (ctx.read_only && wants_write(fi->flags)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  // The kernel holds the node's inode until the open is answered: no forget frees it first.
  Node& node = ctx.nodes.node(ino);
  if (plain_read(fi->flags)) {
    auto file = std::make_unique<OpenFile>();
    if (reopen_warm(ctx, node, *file)) {
      reply_opened(req, node, std::move(file), fi);
      return;
    }
    // A version the memo knows, or a small file all in the page cache, is judged here too;
    // the rest may hash from the disk or wait. (An open for writing may truncate, or wait for
    // the disk: never here.)
    if (open_judged(req, node, fi, Judging::WithoutWaiting)) return;
  }
  answer_off_loop(req, [req, &node, opened = *fi]() mutable {
    open_judged(req, node, &opened, Judging::Full);
  });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
  answer_off_loop(req, [req, parent, named = std::string(name), mode, opened = *fi]() mutable {
    create_judged(req, parent, named.c_str(), mode, &opened);
  });
}

// A checked read this large costs more to hash than a thread's wake-up (SHA-256 at about
// 1 GB/s: 60 us against a few).
constexpr size_t kCheckedOffTheLoop = 64 * 1024;

// Reads through the guard: whole blocks from a block boundary, checked as read, and only then
// the part asked for is served.
void read_guarded(fuse_req_t req, OpenFile& file, size_t size, off_t offset) {
  const uint64_t block = file.guard->block_size();
  const uint64_t start = static_cast<uint64_t>(offset) / block * block;
  const uint64_t end = (static_cast<uint64_t>(offset) + size + block - 1) / block * block;
  auto lease = io_buffers().lend();
  unsigned char* const buf = lease.get(end - start);
  ssize_t n = pread(file.fd->get(), buf, end - start, static_cast<off_t>(start));
  if (n < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  if (int refused = file.guard->check(start, {buf, static_cast<size_t>(n)})) {
    fuse_reply_err(req, refused);
    return;
  }
  const uint64_t skip = static_cast<uint64_t>(offset) - start;
  const size_t served =
      static_cast<uint64_t>(n) > skip ? std::min<size_t>(size, static_cast<size_t>(n - skip)) : 0;
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf + skip), served);
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  OpenFile* file = open_file(fi);
  if (!file->readable) {
    fuse_reply_err(req, EACCES);
    return;
  }
  if (file->guard) {
    // While the kernel's read-ahead has more reads queued, a large one is checked off the
    // loop, so that their blocks are hashed on every core at once; a lone one is checked
    // here, with no thread to wake. (The handle outlives the read: its release comes later.)
    if (size >= kCheckedOffTheLoop && requests_queued(context(req).session)) {
      answer_off_loop(req, [req, file, size, offset] { read_guarded(req, *file, size, offset); });
    } else {
      read_guarded(req, *file, size, offset);
    }
    return;
  }
  auto lease = io_buffers().lend();
  unsigned char* const buf = lease.get(size);
  ssize_t n = pread(file->fd->get(), buf, size, offset);
  if (n < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  if (file->verified) {
    // Checked after the read: a change that reached these bytes changed ctime before it
    // (but for a write to a page already dirty in a shared mapping beneath: the block
    // checks, on by default, see that one).
    struct stat st;
    if (fstat(file->fd->get(), &st) != 0) {
      fuse_reply_err(req, EIO);
      return;
    }
    if (!(stamp_of(st) == file->stamp)) {
      if (int refused = context(req).core->refuse_changed(file->fd->get())) {
        fuse_reply_err(req, refused);
        return;
      }
    }
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

namespace {
void write_at(fuse_req_t req, int fd, const char* data, size_t size, off_t offset) {
  ssize_t n = pwrite(fd, data, size, offset);
  if (n < 0)
    fuse_reply_err(req, errno);
  else
    fuse_reply_write(req, static_cast<size_t>(n));
}
}  // namespace

void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t offset,
              fuse_file_info* fi) {
  const int fd = open_file(fi)->fd->get();
  if (!(fi->flags & O_DIRECT)) {
    write_at(req, fd, data, size, offset);
    return;
  }
  // With O_DIRECT, from memory the lower filesystem takes: libfuse's buffer is not aligned.
  auto lease = io_buffers().lend();
  write_at(req, fd, static_cast<const char*>(std::memcpy(lease.get(size), data, size)), size,
           offset);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  // Closing a duplicate reports deferred write errors (NFS-style) without closing ours.
  UniqueFd dup_fd(dup(open_file(fi)->fd->get()));
  if (!dup_fd) {
    fuse_reply_err(req, errno);
    return;
  }
  int rc = close(dup_fd.release());
  fuse_reply_err(req, rc == 0 ? 0 : errno);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  forget_handle(*open_file(fi));
  context(req).nodes.let_go(*open_file(fi)->node);
  delete open_file(fi);
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  answer_off_loop(req, [req, datasync, fd = open_file(fi)->fd] {
    const int rc = datasync ? fdatasync(fd->get()) : fsync(fd->get());
    fuse_reply_err(req, rc == 0 ? 0 : errno);
  });
}

// The inode flags and extended attributes that lsattr and chattr use, passed through to the
// lower filesystem where it has them.
void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info* fi,
              unsigned flags, const void* in, size_t in_size, size_t out_size) {
  if (flags & FUSE_IOCTL_COMPAT) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  UniqueFd own;
  const int fd = (flags & FUSE_IOCTL_DIR) ? open_dir_fd(req, ino, fi, own) : open_file_fd(fi);
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  auto pass = [&](auto value, bool get) {
    if (get ? out_size < sizeof value : in_size < sizeof value) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    if (!get) std::memcpy(&value, in, sizeof value);
    if (ioctl(fd, cmd, &value) != 0) {
      fuse_reply_err(req, errno);
      return;
    }
    fuse_reply_ioctl(req, 0, get ? &value : nullptr, get ? sizeof value : 0);
  };
  switch (cmd) {
    case FS_IOC_GETFLAGS: pass(int{}, true); return;
    case FS_IOC_SETFLAGS: pass(int{}, false); return;
    case FS_IOC_FSGETXATTR: pass(fsxattr{}, true); return;
    case FS_IOC_FSSETXATTR: pass(fsxattr{}, false); return;
    default: fuse_reply_err(req, ENOTTY);
  }
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                  fuse_file_info* fi) {
  int rc = fallocate(open_file(fi)->fd->get(), mode, offset, length);
  fuse_reply_err(req, rc == 0 ? 0 : errno);
}

}  // namespace digestfs::fs
