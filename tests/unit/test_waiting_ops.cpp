// The threads that answer the ops that may wait (fs/request_loop.hpp): every op handed over
// runs, even when the pool is ending, and ops wait side by side up to the thread count.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "fs/request_loop.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

TEST(WaitingOps, EveryOpHandedOverRunsBeforeThePoolIsGone) {
  std::atomic<int> ran{0};
  {
    fs::WaitingOps ops(2, "dfs-test-ops");
    for (int i = 0; i < 1000; ++i) ops.hand_over([&] { ++ran; });
  }
  EXPECT_EQ(ran, 1000);
}

// Two ops that each wait until both have started: they can only finish side by side.
TEST(WaitingOps, OpsWaitSideBySideUpToTheThreadCount) {
  std::mutex m;
  std::condition_variable changed;
  int started = 0, gave_up = 0;
  {
    fs::WaitingOps ops(2, "dfs-test-ops");
    auto meet = [&] {
      std::unique_lock lock(m);
      ++started;
      changed.notify_all();
      if (!changed.wait_for(lock, 30s, [&] { return started >= 2; })) ++gave_up;
    };
    ops.hand_over(meet);
    ops.hand_over(meet);
  }
  EXPECT_EQ(started, 2);
  EXPECT_EQ(gave_up, 0) << "the two ops did not run at once";
}

}  // namespace
}  // namespace digestfs::test
