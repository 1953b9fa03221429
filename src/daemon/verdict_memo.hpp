// VerdictMemo: what the content of an inode was found to be, remembered until it changes.
// It stores the content digest, not a pass/fail, so that every path of a hard-linked inode is
// still judged by its own entry, and a reload re-judges against new entries without hashing.
// In memory only: after a remount or reboot everything is verified again.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cache/file_hasher.hpp"
#include "src/base/content_stamp.hpp"

namespace digestfs {

class VerdictMemo {
 public:
  enum class Source { Remembered, Hashed };
  struct Lookup {
    Result<ContentDigest> digest;
    Source source;
  };

  // The digest of the content stamped `stamp` in `algo`: remembered, or computed by `hash`
  // (which fails if the file no longer carries `stamp` afterwards). `hash` runs only once
  // the stamp's ctime can no longer be reused by a later write. Concurrent callers for one
  // inode wait for the first one's hash instead of hashing again.
  using HashFn = std::function<Result<ContentDigest>()>;
  Lookup digest(const ContentStamp& stamp, uint8_t algo, const HashFn& hash);

 private:
  struct Slot {
    std::mutex mutex;  // lock order: a shard's mutex is never taken while holding this
    std::condition_variable done;
    bool hashing = false;
    ContentStamp stamp;
    std::vector<ContentDigest> digests;  // one per algorithm asked for
  };
  struct Key {
    dev_t dev;
    ino_t ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.ino * 31 + k.dev); }
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<Key, std::shared_ptr<Slot>, KeyHash> slots;
  };
  std::shared_ptr<Slot> slot(const Key& key);
  Shard& shard(const Key& key) { return shards_[KeyHash()(key) % shards_.size()]; }

  std::array<Shard, 64> shards_;
};

}  // namespace digestfs
