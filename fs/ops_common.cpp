#include "fs/ops_common.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

namespace digestfs::fs {

namespace {

// A thread's own umask: the daemon's threads share one filesystem context until each takes a
// copy of its own (once).
bool own_filesystem_context() {
  thread_local const bool own = unshare(CLONE_FS) == 0;
  return own;
}

}  // namespace

CallerIdentity::CallerIdentity(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  old_gid_ = static_cast<gid_t>(setfsgid(c->gid));
  old_uid_ = static_cast<uid_t>(setfsuid(c->uid));
  // setfsuid and setfsgid say only what was before: asking again (with an id that is never
  // valid) says what is now.
  const bool as_caller = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))) == c->uid &&
                         static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1))) == c->gid;
  const bool own_umask = own_filesystem_context();
  old_umask_ = umask(own_umask ? c->umask : umask(0));
  if (!own_umask) umask(old_umask_);
  ok_ = as_caller && own_umask;
}

CallerIdentity::~CallerIdentity() {
  if (ok_) umask(old_umask_);
  setfsuid(old_uid_);
  setfsgid(old_gid_);
}

double attr_timeout(const MountContext& ctx, const struct stat& st) {
  return S_ISREG(st.st_mode) && st.st_nlink > 1 ? 0 : ctx.timeout;
}

NodeFd node_fd(fuse_req_t req, fuse_ino_t ino) {
  MountContext& ctx = context(req);
  return ctx.nodes.path_fd(ctx.nodes.node(ino));
}

int lookup_entry(MountContext& ctx, Node& parent, int dir, const char* name, fuse_entry_param* e) {
  *e = fuse_entry_param{};
  e->attr_timeout = ctx.timeout;
  e->entry_timeout = ctx.timeout;
  Node* node = ctx.nodes.look_up(parent, dir, name, e->attr);
  if (!node) return errno;
  if (ctx.reclaimer) ctx.reclaimer->note(ctx.nodes.fds());
  e->ino = ctx.nodes.id(*node);
  e->attr_timeout = attr_timeout(ctx, e->attr);
  return 0;
}

int lookup_entry(MountContext& ctx, Node& parent, const char* name, fuse_entry_param* e) {
  const NodeFd dir = ctx.nodes.path_fd(parent);
  if (!dir) return errno;
  return lookup_entry(ctx, parent, dir.get(), name, e);
}

void reply_made(fuse_req_t req, Node& parent, const NodeFd& dir, const char* name,
                int saved_errno) {
  if (saved_errno != 0) {
    fuse_reply_err(req, saved_errno);
    return;
  }
  fuse_entry_param e;
  int err = lookup_entry(context(req), parent, dir.get(), name, &e);
  if (err)
    fuse_reply_err(req, err);
  else
    fuse_reply_entry(req, &e);
}

}  // namespace digestfs::fs
