// How the primer and the rescan spread files over cores: largest file first, one file per
// task, so that the big files start at once on every core, the small ones fill in the end,
// and no core idles behind one late large file.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
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
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, records.size(), 1),
      [&](const tbb::blocked_range<size_t>& range) {
        for (size_t i = range.begin(); i != range.end(); ++i) fn(records[i]);
      },
      tbb::simple_partitioner());
}

}  // namespace digestfs
