// What every FUSE op reaches through fuse_req_userdata: the node table, the daemon's core
// (through its narrow MountCore interface only), and how the kernel may cache.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>

#include "fs/lower_watcher.hpp"
#include "fs/node_reclaimer.hpp"
#include "fs/node_table.hpp"
#include "fs/request_loop.hpp"
#include "src/daemon/mount_core.hpp"

namespace digestfs::fs {

struct MountContext {
  NodeTable nodes;
  MountCore* core = nullptr;  // judges opens and answers the root's control attributes
  bool read_only = false;
  double timeout = 1.0;  // attribute and entry cache, seconds
  // Whether the kernel may keep directory listings across opens: only while a watcher tells
  // it of every entry made or removed behind the mount (listings have no expiry of their own).
  bool cache_listings = false;
  // Whether the kernel may keep symlink targets: only under the same watcher, which also drops
  // them whenever a new index is in force (a target is judged when it is read).
  bool cache_links = false;
  // The read-ahead asked for, in KiB (0: the kernel's). The kernel takes the smaller of the
  // device's setting and what INIT's reply offers, so the reply must offer it too.
  unsigned read_ahead_kib = 0;
  fuse_session* session = nullptr;  // for telling the kernel what it caches is stale
  NodeReclaimer* reclaimer = nullptr;
  LowerWatcher* watcher = nullptr;  // set while the source is watched
  // Both set while requests are served (see serve_requests).
  WaitingOps* waiting = nullptr;
  WaitingOps* link_drops = nullptr;  // see answer_with_links_dropped
  // Lookups and listings that found a move, handed to link_drops and not yet answered (only
  // the loop hands them over; see answer_entries).
  std::atomic<unsigned> moves_being_dropped{0};
  int connection_abort = -1;  // see MountPoint::connection_abort; -1: none to be had
};

inline MountContext& context(fuse_req_t req) {
  return *static_cast<MountContext*>(fuse_req_userdata(req));
}

// The FUSE operations table; each op lives in the ops_*.cpp file of its concern.
const fuse_lowlevel_ops& operations();

}  // namespace digestfs::fs
