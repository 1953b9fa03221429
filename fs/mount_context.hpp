// What every FUSE op reaches through fuse_req_userdata: the node table, the core that judges
// opens, and how lower paths map into the index.
#pragma once

#include <fuse_lowlevel.h>

#include "fs/node_reclaimer.hpp"
#include "fs/node_table.hpp"
#include "src/integrity_checker.hpp"
#include "src/lower_path.hpp"
#include "src/status.hpp"

namespace digestfs::fs {

struct MountContext {
  NodeTable nodes;
  IntegrityChecker* checker = nullptr;  // null: verification off (benchmarks)
  StatusSources status;
  IndexReloader* reloader = nullptr;
  PathMapping paths;
  bool read_only = false;
  double timeout = 1.0;             // attribute and entry cache, seconds
  fuse_session* session = nullptr;  // for telling the kernel what it caches is stale
  NodeReclaimer* reclaimer = nullptr;
};

inline MountContext& context(fuse_req_t req) {
  return *static_cast<MountContext*>(fuse_req_userdata(req));
}

// The FUSE operations table; each op lives in the ops_*.cpp file of its concern.
const fuse_lowlevel_ops& operations();

}  // namespace digestfs::fs
