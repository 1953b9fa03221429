// All the FUSE layer sees of the daemon: judge an open or a symlink, answer the mount root's
// control attributes. fs/ includes this header and nothing else of src/daemon.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "src/base/content_stamp.hpp"

namespace digestfs {

// Checks what is read from a verified file before it is served: the bytes handed to the
// kernel are the bytes checked.
class ContentGuard {
 public:
  virtual ~ContentGuard() = default;
  // Reads are checked in whole blocks of this size, from a multiple of it.
  virtual size_t block_size() const = 0;
  // `bytes` read from `offset` (a multiple of block_size()): 0 to serve them, else the errno.
  virtual int check(uint64_t offset, std::span<const unsigned char> bytes) = 0;
  // The memory it holds (a block tree), for a budget that keeps guards past their opens.
  virtual size_t memory_bytes() const = 0;
};

struct OpenDecision {
  int error = 0;                        // 0: serve; else the errno of the refusal
  bool verified = false;                // content matched: reads must come from this very version
  ContentStamp stamp;                   // the version that was judged
  std::shared_ptr<ContentGuard> guard;  // verified with block checks: every read goes by it
};

class MountCore {
 public:
  virtual ~MountCore() = default;
  // fd is the lower file opened for reading, st its fstat.
  virtual OpenDecision judge_open(int fd, const struct stat& st) = 0;
  // judge_open's decision when it is an allow that takes no waiting (the content is remembered
  // to match, or is small, in the page cache, and hashed to match); nothing otherwise, and
  // then only judge_open decides.
  virtual std::optional<OpenDecision> judge_without_waiting(int fd, const struct stat& st) = 0;
  // Changes whenever a verdict already given may no longer hold for content that has not
  // changed (a new index in force, a version's digest forgotten): an open that reuses a
  // verdict (see fs/warm_opens.hpp) must have been judged in the epoch still current.
  virtual uint64_t verdict_epoch() const = 0;
  // An open answered by a verdict reused: counted as an open judged from the memo.
  virtual void reopened() = 0;
  // fd is a lower file verified for reading while a handle open for writing shares its page
  // cache: what that writer puts there reaches a private mapping of this handle without a read
  // the block checks could see. 0 (audit, permissive), or the errno of the refusal, logged.
  virtual int refuse_beside_writer(int fd) = 0;
  // fd is a lower file verified for reading and read without block checks, whose version has
  // changed since: 0 (audit, permissive), or the errno of the refusal, logged.
  virtual int refuse_changed(int fd) = 0;
  // fd is the lower symlink (O_PATH), target what it points at: 0, or the errno of a refusal.
  virtual int judge_link(int fd, std::string_view target) = 0;
  // Whether judge_link would allow the target, for the request loop: an allow never waits.
  // False for anything else, with nothing logged or counted: then judge_link decides (a
  // refusal may wait for a reload, and is logged).
  virtual bool allows_link_without_waiting(int fd, std::string_view target) = 0;
  // The value of one of the root's control attributes; nothing when `name` is none of them.
  virtual std::optional<std::string> read_control(std::string_view name) = 0;
  // Sets one: 0 or an errno; nothing when `name` is none of them.
  virtual std::optional<int> write_control(std::string_view name, std::string_view value) = 0;
};

}  // namespace digestfs
