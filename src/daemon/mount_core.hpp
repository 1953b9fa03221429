// All the FUSE layer sees of the daemon: judge an open or a symlink, answer the mount root's
// control attributes. fs/ includes this header and nothing else of src/daemon.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>

#include "src/base/content_stamp.hpp"

namespace digestfs {

struct OpenDecision {
  int error = 0;          // 0: serve; else the errno of the refusal
  bool verified = false;  // content matched: reads must come from this very version
  ContentStamp stamp;     // the version that was judged
};

class MountCore {
 public:
  virtual ~MountCore() = default;
  // fd is the lower file opened for reading, st its fstat.
  virtual OpenDecision judge_open(int fd, const struct stat& st) = 0;
  // fd is the lower symlink (O_PATH), target what it points at: 0, or the errno of a refusal.
  virtual int judge_link(int fd, std::string_view target) = 0;
  // The value of one of the root's control attributes; nothing when `name` is none of them.
  virtual std::optional<std::string> read_control(std::string_view name) = 0;
  // Sets one: 0 or an errno; nothing when `name` is none of them.
  virtual std::optional<int> write_control(std::string_view name, std::string_view value) = 0;
};

}  // namespace digestfs
