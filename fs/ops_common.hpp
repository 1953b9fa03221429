// Helpers shared by the op files: fd-relative path strings, caller identity, entry replies.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/fsuid.h>

#include <new>
#include <string>
#include <utility>
#include <vector>

#include "fs/mount_context.hpp"
#include "src/base/proc_path.hpp"

namespace digestfs::fs {

// Runs an op so that no exception reaches libfuse: an op that cannot allocate answers ENOMEM,
// anything else thrown EIO, and the daemon goes on (every op replies last, after all it
// allocates). A forget (`answered` false) is never answered, not even with an error.
template <class Op>
void run_op(fuse_req_t req, Op&& op, bool answered = true) noexcept {
  try {
    op();
  } catch (const std::bad_alloc&) {
    answered ? void(fuse_reply_err(req, ENOMEM)) : fuse_reply_none(req);
  } catch (...) {
    answered ? void(fuse_reply_err(req, EIO)) : fuse_reply_none(req);
  }
}

// Answers `req` on a thread that may wait (see fs/request_loop.hpp), not on the request loop.
// `op` holds copies of all it reads of the request: the loop reuses its buffer at once.
template <class Op>
void answer_off_loop(fuse_req_t req, Op op) {
  context(req).waiting->hand_over([req, op = std::move(op)]() mutable { run_op(req, op); });
}

// Answers `req` by `reply` once the kernel has dropped the symlink targets it keeps for the
// nodes `links`. Dropping a link's pages waits while a READLINK of it is under way (the kernel
// holds the page locked until it is answered), and the loop or a waiting thread answers that.
// So the drops have a thread of their own: on the loop they would stop it, and on waiting
// threads enough of them could take every thread while the READLINK waits its turn behind
// them, a mount that answers nothing and a daemon that cannot be killed.
template <class Reply>
void answer_with_links_dropped(fuse_req_t req, std::vector<fuse_ino_t> links, Reply reply) {
  MountContext& ctx = context(req);
  ctx.link_drops->hand_over(
      [req, session = ctx.session, links = std::move(links), reply = std::move(reply)]() mutable {
        run_op(req, [&] {
          for (const fuse_ino_t ino : links) fuse_lowlevel_notify_inval_inode(session, ino, 0, 0);
          reply();
        });
      });
}

// Answers a lookup or a listing (`reply`, which hands the kernel entries) once no kept symlink
// target may have been judged at another path than it is now reached by: with the targets
// dropped when the lookup (since NodeTable::moves() was `before`) found a directory or a
// symlink moved beneath the mount (see NodeTable::remember), which the watcher may not have
// reported yet; behind the drops under way, when another request found one (a later lookup
// of the same name finds the node in its new place, and must not hand the kernel the new
// path first); at once otherwise.
template <class Reply>
void answer_entries(fuse_req_t req, uint64_t before, Reply reply) {
  MountContext& ctx = context(req);
  if (!ctx.cache_links) {
    reply();
  } else if (ctx.nodes.moves() != before) {
    ctx.moves_being_dropped.fetch_add(1, std::memory_order_relaxed);
    answer_with_links_dropped(req, ctx.nodes.links(),
                              [&moves = ctx.moves_being_dropped, reply = std::move(reply)] {
                                struct Dropped {
                                  std::atomic<unsigned>& moves;
                                  ~Dropped() { moves.fetch_sub(1, std::memory_order_relaxed); }
                                } dropped{moves};
                                reply();
                              });
  } else if (ctx.moves_being_dropped.load(std::memory_order_relaxed) != 0) {
    answer_with_links_dropped(req, {}, std::move(reply));
  } else {
    reply();
  }
}

// Files made through the mount belong to the calling user and group, not to the daemon, and
// get the mode the caller's umask gives them (the kernel hands it over unapplied: the lower
// filesystem applies it, or a default ACL instead, as it would for the caller itself). The
// umask is per thread: each worker thread has its own filesystem context.
class CallerIdentity {
 public:
  explicit CallerIdentity(fuse_req_t req);
  ~CallerIdentity();
  CallerIdentity(const CallerIdentity&) = delete;
  CallerIdentity& operator=(const CallerIdentity&) = delete;
  // Whether the thread now acts as the caller; if not, nothing may be made in its name.
  bool ok() const { return ok_; }

 private:
  uid_t old_uid_;
  gid_t old_gid_;
  mode_t old_umask_;
  bool ok_ = false;
};

// Runs `make` (a call that returns -1 and sets errno on failure) as the caller: 0 or the errno,
// EPERM when the thread cannot act as the caller.
template <class Make>
int as_caller(fuse_req_t req, Make make) {
  CallerIdentity identity(req);
  if (!identity.ok()) return EPERM;
  return make() < 0 ? errno : 0;
}

// How long the kernel may cache a file's attributes. Not at all for a file with several
// links: each path has its own node, and a change through one would go unseen through the
// others while their attributes were cached.
double attr_timeout(const MountContext& ctx, const struct stat& st);

// The node's fd for this operation; empty with errno set (see NodeTable::path_fd).
NodeFd node_fd(fuse_req_t req, fuse_ino_t ino);

// Looks name up under parent (dir: an fd of the parent) and fills e; returns 0 or an errno.
int lookup_entry(MountContext& ctx, Node& parent, int dir, const char* name, fuse_entry_param* e);
int lookup_entry(MountContext& ctx, Node& parent, const char* name, fuse_entry_param* e);

// After an operation that made `name` under parent (dir: an fd of it): look it up and reply,
// or reply the error.
void reply_made(fuse_req_t req, Node& parent, const NodeFd& dir, const char* name, int saved_errno);

// Makes `name` under parent as the caller, with make(dir fd) (a call that returns -1 and sets
// errno on failure), and replies with its entry or the error.
template <class Make>
void make_in(fuse_req_t req, fuse_ino_t parent, const char* name, Make make) {
  MountContext& ctx = context(req);
  Node& p = ctx.nodes.node(parent);
  const NodeFd dir = ctx.nodes.path_fd(p);
  if (!dir) {
    fuse_reply_err(req, errno);
    return;
  }
  reply_made(req, p, dir, name, as_caller(req, [&] { return make(dir.get()); }));
}

}  // namespace digestfs::fs
