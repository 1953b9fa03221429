// "/proc/self/fd/N": how an fd (an O_PATH one included) is reopened, or named to calls that
// take a path and no fd.
#pragma once

#include <string>

namespace digestfs {

inline std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace digestfs
