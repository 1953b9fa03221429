// A buffer aligned for O_DIRECT (4 KiB), grown as needed: reads through a file opened with
// O_DIRECT, as callers of the mount may ask, fail with EINVAL into ordinary memory.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

namespace digestfs {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  AlignedBuffer() = default;
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::move(other.data_)), capacity_(std::exchange(other.capacity_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }

  // At least `size` bytes; what was in it before is not kept.
  unsigned char* get(size_t size) {
    if (size > capacity_) {
      const size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
      data_.reset(static_cast<unsigned char*>(std::aligned_alloc(kAlignment, rounded)));
      if (!data_) throw std::bad_alloc();
      capacity_ = rounded;
    }
    return data_.get();
  }

  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace digestfs
