// The daemon holds one O_PATH fd per file the kernel has looked up and not yet forgotten, and a
// /usr has well over 100,000 files: a default limit of 1,024 (or 20,000) open files would make
// lookups fail with EMFILE. The limit is raised as far as the system allows.
#pragma once

#include <sys/resource.h>

namespace digestfs {

// Raises RLIMIT_NOFILE to fs.nr_open when privileged, else the soft limit to the hard one;
// returns the soft limit now in effect.
rlim_t raise_open_file_limit();

}  // namespace digestfs
