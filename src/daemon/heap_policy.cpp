#include "src/daemon/heap_policy.hpp"

#include <malloc.h>

namespace digestfs {

void keep_large_blocks_off_the_heap() {
  constexpr int kGlibcDefaultThreshold = 128 * 1024;
  mallopt(M_MMAP_THRESHOLD, kGlibcDefaultThreshold);
}

}  // namespace digestfs
