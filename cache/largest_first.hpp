// How the primer and the rescan spread files over cores: largest file first, each worker
// taking the next file as it finishes one, so that the big files start at once on every core,
// the small ones fill in the end, and no core idles behind one late large file. (A shared
// counter, not a task per file: tens of thousands of small files would cost more in tasks.)
#pragma once

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "cache/digest_index.hpp"

namespace digestfs {

// Calls fn(record) for every record (of index), in parallel in the calling task arena.
// Reorders records.
template <class Fn>
void for_each_largest_first(const DigestIndex& index, std::vector<uint32_t>& records, Fn&& fn) {
  std::sort(records.begin(), records.end(),
            [&](uint32_t a, uint32_t b) { return index.entry(a).size() > index.entry(b).size(); });
  std::atomic<size_t> next{0};
  const int workers = tbb::this_task_arena::max_concurrency();
  tbb::parallel_for(
      0, workers,
      [&](int) {
        for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < records.size();) {
          fn(records[i]);
        }
      },
      tbb::simple_partitioner());
}

}  // namespace digestfs
