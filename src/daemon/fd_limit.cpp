#include "src/daemon/fd_limit.hpp"

#include <fstream>

namespace digestfs {

rlim_t raise_open_file_limit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  rlim_t system_max = 0;
  std::ifstream("/proc/sys/fs/nr_open") >> system_max;
  if (system_max > limit.rlim_max) {
    struct rlimit wanted {
      system_max, system_max
    };
    if (setrlimit(RLIMIT_NOFILE, &wanted) == 0) return system_max;
  }
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

}  // namespace digestfs
