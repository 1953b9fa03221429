// Directory streams: opendir, readdir, readdirplus, releasedir, fsyncdir.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "fs/ops_common.hpp"
#include "fs/ops_table.hpp"

namespace digestfs::fs {
namespace {

struct DirStream {
  DIR* dir = nullptr;  // owns the fd it was opened on
  off_t offset = 0;
  dirent* pending = nullptr;  // read but not yet sent: the reply buffer was full
  ~DirStream() {
    if (dir) closedir(dir);
  }
};

DirStream* stream(const fuse_file_info* fi) { return reinterpret_cast<DirStream*>(fi->fh); }

std::unique_ptr<DirStream> open_stream(MountContext& ctx, fuse_ino_t ino) {
  UniqueFd fd = ctx.nodes.open(ctx.nodes.node(ino), O_RDONLY | O_DIRECTORY);
  if (!fd) return nullptr;
  auto d = std::make_unique<DirStream>();
  d->dir = fdopendir(fd.get());
  if (!d->dir) return nullptr;
  fd.release();  // the DIR stream owns it now
  return d;
}

void read_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi,
              bool plus) {
  MountContext& ctx = context(req);
  // Without opendir (see op_opendir) each read opens the directory for itself, and finds its
  // place again from the offset, which the lower filesystem keeps stable across opens.
  std::unique_ptr<DirStream> own;
  DirStream* d = stream(fi);
  if (!d) {
    own = open_stream(ctx, ino);
    if (!own) {
      fuse_reply_err(req, errno);
      return;
    }
    d = own.get();
  }
  std::vector<char> buf(size);
  size_t used = 0;
  if (offset != d->offset) {
    seekdir(d->dir, offset);
    d->pending = nullptr;
    d->offset = offset;
  }
  int err = 0;
  const uint64_t moves = ctx.nodes.moves();
  for (;;) {
    dirent* entry = d->pending;
    if (!entry) {
      errno = 0;
      entry = readdir(d->dir);
      if (!entry) {
        err = errno;
        break;
      }
    }
    d->pending = nullptr;
    size_t need;
    const bool dots = std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0;
    if (plus) {
      fuse_entry_param e{};
      // An entry that cannot be looked up (removed since it was read, or a lower filesystem
      // that lists what it cannot find) is listed as the lower lists it, without attributes
      // (node 0: the kernel links no dentry); looking it up later gets the lower's answer.
      // Failing the reply instead would fail the whole listing with that entry's error.
      if (dots || lookup_entry(ctx, ctx.nodes.node(ino), dirfd(d->dir), entry->d_name, &e)) {
        e = fuse_entry_param{};
        e.attr.st_ino = entry->d_ino;
        e.attr.st_mode = static_cast<mode_t>(entry->d_type) << 12;
      }
      need = fuse_add_direntry_plus(req, buf.data() + used, size - used, entry->d_name, &e,
                                    entry->d_off);
      if (need > size - used) {
        if (e.ino) ctx.nodes.forget(e.ino, 1);  // the kernel will not see this entry now
        d->pending = entry;
        break;
      }
    } else {
      struct stat st {};
      st.st_ino = entry->d_ino;
      st.st_mode = static_cast<mode_t>(entry->d_type) << 12;
      need =
          fuse_add_direntry(req, buf.data() + used, size - used, entry->d_name, &st, entry->d_off);
      if (need > size - used) {
        d->pending = entry;
        break;
      }
    }
    used += need;
    d->offset = entry->d_off;
  }
  if (err && used == 0) {
    fuse_reply_err(req, err);
  } else if (plus) {
    // The listing hands the kernel each entry as a lookup would (see op_lookup).
    buf.resize(used);
    answer_entries(req, moves,
                   [req, buf = std::move(buf)] { fuse_reply_buf(req, buf.data(), buf.size()); });
  } else {
    fuse_reply_buf(req, buf.data(), used);
  }
}

}  // namespace

int open_dir_fd(fuse_req_t req, fuse_ino_t ino, const fuse_file_info* fi, UniqueFd& own) {
  if (stream(fi)) return dirfd(stream(fi)->dir);
  MountContext& ctx = context(req);
  own = ctx.nodes.open(ctx.nodes.node(ino), O_RDONLY | O_DIRECTORY);
  return own.get();
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  MountContext& ctx = context(req);
  // While the kernel may keep listings, it need not ask before it reads one: ENOSYS tells it
  // that opening a directory takes no message (and that listings are kept) from now on.
  if (ctx.cache_listings) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  std::unique_ptr<DirStream> d = open_stream(ctx, ino);
  if (!d) {
    fuse_reply_err(req, errno);
    return;
  }
  fi->fh = reinterpret_cast<uint64_t>(d.release());
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  read_dir(req, ino, size, offset, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  read_dir(req, ino, size, offset, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete stream(fi);
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  answer_off_loop(req, [req, ino, datasync, opened = *fi] {
    UniqueFd own;
    const int fd = open_dir_fd(req, ino, &opened, own);
    int rc = fd < 0 ? -1 : datasync ? fdatasync(fd) : fsync(fd);
    fuse_reply_err(req, rc == 0 ? 0 : errno);
  });
}

}  // namespace digestfs::fs
