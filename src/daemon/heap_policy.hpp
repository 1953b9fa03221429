// The daemon keeps its digest snapshot for as long as it runs, and builds each new one while
// librpm makes and drops copies of headers (up to megabytes each). glibc serves a freed block of
// that size from the heap next time (it raises its mmap threshold as such blocks are freed),
// and the snapshot's tables then grow among the holes the copies leave: on a real /usr that was
// 247 resident bytes per indexed file instead of 162. Fixed at glibc's default, large blocks are
// mapped and returned whole. Short-lived tools leave it alone: mapping costs them time (8 ms of a
// 150 ms rescan) and saves nothing that lasts.
#pragma once

namespace digestfs {

void keep_large_blocks_off_the_heap();

}  // namespace digestfs
