// The one registration table of FUSE ops. A read-only mount needs no second table: the
// kernel refuses writes on it (MS_RDONLY), and open() refuses write access as well.
#include "fs/mount_context.hpp"
#include "fs/ops_common.hpp"
#include "fs/ops_table.hpp"

namespace digestfs::fs {
namespace {

// Every op runs by run_op: no exception reaches libfuse.
template <auto Op, bool kAnswered = true>
struct Guarded;
template <class... Args, void (*Op)(fuse_req_t, Args...), bool kAnswered>
struct Guarded<Op, kAnswered> {
  static void call(fuse_req_t req, Args... args) noexcept {
    run_op(req, [&] { Op(req, args...); }, kAnswered);
  }
};

void op_init(void* userdata, fuse_conn_info* conn) {
  const auto& ctx = *static_cast<const MountContext*>(userdata);
  // The caller's umask is applied where the file is made (see CallerIdentity), as the lower
  // filesystem applies it (or a default ACL instead); the kernel must not apply it first.
  if (conn->capable & FUSE_CAP_DONT_MASK) conn->want |= FUSE_CAP_DONT_MASK;
  // lsattr and chattr on directories too.
  if (conn->capable & FUSE_CAP_IOCTL_DIR) conn->want |= FUSE_CAP_IOCTL_DIR;
  if (ctx.read_ahead_kib) conn->max_readahead = ctx.read_ahead_kib * 1024;
  if (ctx.cache_links && (conn->capable & FUSE_CAP_CACHE_SYMLINKS)) {
    conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  }
}

}  // namespace

const fuse_lowlevel_ops& operations() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = op_init;
    o.lookup = Guarded<op_lookup>::call;
    o.forget = Guarded<op_forget, false>::call;
    o.forget_multi = Guarded<op_forget_multi, false>::call;
    o.getattr = Guarded<op_getattr>::call;
    o.setattr = Guarded<op_setattr>::call;
    o.readlink = Guarded<op_readlink>::call;
    o.mknod = Guarded<op_mknod>::call;
    o.mkdir = Guarded<op_mkdir>::call;
    o.symlink = Guarded<op_symlink>::call;
    o.link = Guarded<op_link>::call;
    o.unlink = Guarded<op_unlink>::call;
    o.rmdir = Guarded<op_rmdir>::call;
    o.rename = Guarded<op_rename>::call;
    o.statfs = Guarded<op_statfs>::call;
    o.access = Guarded<op_access>::call;
    o.getxattr = Guarded<op_getxattr>::call;
    o.listxattr = Guarded<op_listxattr>::call;
    o.setxattr = Guarded<op_setxattr>::call;
    o.removexattr = Guarded<op_removexattr>::call;
    o.opendir = Guarded<op_opendir>::call;
    o.readdir = Guarded<op_readdir>::call;
    o.readdirplus = Guarded<op_readdirplus>::call;
    o.releasedir = Guarded<op_releasedir>::call;
    o.fsyncdir = Guarded<op_fsyncdir>::call;
    o.open = Guarded<op_open>::call;
    o.create = Guarded<op_create>::call;
    o.read = Guarded<op_read>::call;
    o.write = Guarded<op_write>::call;
    o.flush = Guarded<op_flush>::call;
    o.release = Guarded<op_release>::call;
    o.fsync = Guarded<op_fsync>::call;
    o.fallocate = Guarded<op_fallocate>::call;
    o.ioctl = Guarded<op_ioctl>::call;
    return o;
  }();
  return ops;
}

}  // namespace digestfs::fs
