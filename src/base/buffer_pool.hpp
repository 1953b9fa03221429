// Buffers lent for one request or one hashing pass and given back after it. Kept per thread
// instead, the daemon held a read buffer as large as the largest request (1 MiB once the
// read-ahead is larger) and the hasher's two 1 MiB chunks for every thread libfuse or TBB ever
// ran; lent from here, what stays is bounded by `kept`, and a buffer lent beyond it is freed
// when it comes back.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "src/base/aligned_buffer.hpp"

namespace digestfs {

class BufferPool {
 public:
  explicit BufferPool(size_t kept) : kept_(kept) {}

  // Gives its buffer back to the pool when it goes.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), buffer_(std::move(other.buffer_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(std::move(buffer_));
    }

    // At least `size` bytes, aligned for O_DIRECT; what was in it before is not kept.
    unsigned char* get(size_t size) { return buffer_.get(size); }

   private:
    friend class BufferPool;
    Lease(BufferPool& pool, AlignedBuffer buffer) : pool_(&pool), buffer_(std::move(buffer)) {}
    BufferPool* pool_;
    AlignedBuffer buffer_;
  };

  Lease lend() {
    std::lock_guard lock(mutex_);
    if (idle_.empty()) return Lease(*this, AlignedBuffer());
    AlignedBuffer buffer = std::move(idle_.back());
    idle_.pop_back();
    return Lease(*this, std::move(buffer));
  }

  // Buffers waiting to be lent again.
  size_t idle() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }

 private:
  void give_back(AlignedBuffer buffer) {
    {
      std::lock_guard lock(mutex_);
      if (buffer.capacity() > 0 && idle_.size() < kept_) {
        idle_.push_back(std::move(buffer));
        return;
      }
    }
    // Freed here, outside the lock, as `buffer` goes.
  }

  const size_t kept_;
  mutable std::mutex mutex_;
  std::vector<AlignedBuffer> idle_;
};

// The pool of the daemon's read and hashing buffers: two for each core at work (a read, or
// the hasher's chunk and the next one read beside it) and as many again for reads waiting on
// the disk.
inline BufferPool& io_buffers() {
  static BufferPool pool(4 * std::max(2u, std::thread::hardware_concurrency()));
  return pool;
}

}  // namespace digestfs
