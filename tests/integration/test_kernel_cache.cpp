// The kernel caches names, attributes and missing names for a day while the source is
// watched: every kind of change made beneath the mount must still show through it, at once
// (the watcher tells the kernel), and within the short timeout when nothing watches.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "src/base/unique_fd.hpp"
#include "tests/support/held_thread.hpp"
#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

using namespace std::chrono_literals;

class KernelCache : public MountFixture {
 protected:
  std::string kernel_cache() {
    const std::string s = status();
    const auto at = s.find("\"kernel_cache\":\"");
    return at == std::string::npos ? "" : s.substr(at + 16, s.find('"', at + 16) - at - 16);
  }
  // Each kind of change beneath the mount, after the kernel has cached what was there before:
  // shows through the mount within `bound`, generous for a busy machine and far below the
  // day a watched mount caches for (how soon it shows is measured in docs/PERFORMANCE.md).
  void expect_every_change_seen(std::chrono::milliseconds bound) {
    const auto dir = root / "usr/share/dfs";
    const auto seen = mnt / "usr/share/dfs";
    struct stat st;
    // Whether the directory's listing names `name` (the kernel may keep listings too).
    auto listed = [&](const std::string& name) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(seen, ec)) {
        if (e.path().filename() == name) return true;
      }
      return false;
    };
    struct Case {
      std::string what;
      std::function<void()> cache, change;
      std::function<bool()> shows;
    };
    const std::vector<Case> cases = {
        {"a new file", [&] { EXPECT_NE(stat((seen / "new.txt").c_str(), &st), 0); },
         [&] { ASSERT_TRUE(write_text(dir / "new.txt", "new\n")); },
         [&] { return read_file(seen / "new.txt").bytes == "new\n" && listed("new.txt"); }},
        {"changed content and size", [&] { EXPECT_EQ(read_file(seen / "new.txt").bytes, "new\n"); },
         [&] { ASSERT_TRUE(write_text(dir / "new.txt", "newer and longer\n")); },
         [&] {
           return stat((seen / "new.txt").c_str(), &st) == 0 && st.st_size == 17 &&
                  read_file(seen / "new.txt").bytes == "newer and longer\n";
         }},
        {"chmod", [&] { EXPECT_EQ(stat((seen / "new.txt").c_str(), &st), 0); },
         [&] { ASSERT_EQ(chmod((dir / "new.txt").c_str(), 0600), 0); },
         [&] {
           return stat((seen / "new.txt").c_str(), &st) == 0 && (st.st_mode & 07777) == 0600;
         }},
        {"a rename", [&] { EXPECT_EQ(stat((seen / "new.txt").c_str(), &st), 0); },
         [&] { ASSERT_EQ(std::rename((dir / "new.txt").c_str(), (dir / "moved.txt").c_str()), 0); },
         [&] {
           return stat((seen / "new.txt").c_str(), &st) != 0 && !listed("new.txt") &&
                  listed("moved.txt") &&
                  read_file(seen / "moved.txt").bytes == "newer and longer\n";
         }},
        {"a removed file", [&] { EXPECT_EQ(stat((seen / "moved.txt").c_str(), &st), 0); },
         [&] { ASSERT_TRUE(std::filesystem::remove(dir / "moved.txt")); },
         [&] {
           return stat((seen / "moved.txt").c_str(), &st) != 0 && errno == ENOENT &&
                  !listed("moved.txt");
         }},
        {"a package update", [&] { EXPECT_NE(stat((seen / "other.txt").c_str(), &st), 0); },
         [&] { install({fx / "rpms/dfs-other-1.0-1.noarch.rpm"}); },
         [&] {
           return read_file(seen / "other.txt").bytes == "other data\n" && listed("other.txt");
         }},
    };
    for (const auto& c : cases) {
      SCOPED_TRACE(c.what);
      listed("");  // the listing as it was, for the kernel to keep
      c.cache();
      c.change();
      const auto took = within(bound, c.shows);
      EXPECT_TRUE(took.has_value()) << c.what << " not seen within " << bound.count() << " ms";
    }
  }
};

TEST_F(KernelCache, WhileTheSourceIsWatchedEveryChangeBeneathShowsAtOnce) {
  mount(",unknown-allow=/usr/share/dfs/*");
  ASSERT_EQ(kernel_cache(), "fanotify") << status();
  // Names and attributes are cached for a day here: what shows within seconds was told.
  expect_every_change_seen(10s);
  EXPECT_GT(status_number("cache_invalidations"), 0u);
}

TEST_F(KernelCache, ASymlinkTargetTheKernelKeepsIsJudgedAgainByEveryNewIndex) {
  mount();
  const auto link = mnt / "usr/share/dfs/hello-link";
  char buf[256];
  // Read twice: the kernel keeps the target from the first read on.
  for (int i = 0; i < 2; ++i) ASSERT_GT(readlink(link.c_str(), buf, sizeof buf), 0) << log_text();
  // The link stays as it is beneath the mount: only the trust in it goes away.
  ASSERT_TRUE(rpm_in_root(root, "-e --justdb --nodeps --noscripts dfs-base"));
  EXPECT_TRUE(within(10s, [&] {
    errno = 0;
    return readlink(link.c_str(), buf, sizeof buf) == -1 && errno == EACCES;
  })) << log_text();
}

// Calls through the mount, each on a thread of its own, so that a test can see each one wait
// for the answer to its request, and can end when the mount stops answering: `end_mount`
// aborts it, so that the calls return (see KeptLinks::all_returned).
class Callers {
 public:
  explicit Callers(std::function<void()> end_mount) : end_mount_(std::move(end_mount)) {}
  Callers(const Callers&) = delete;
  Callers& operator=(const Callers&) = delete;
  // A test that stopped early may leave calls waiting: they are given 20 s.
  ~Callers() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!returned() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!returned()) end_mount_();
    for (auto& t : threads_) t.join();
  }
  void start(std::function<void()> call) {
    Call& c = *calls_.emplace_back(std::make_unique<Call>());
    threads_.emplace_back([&c, call = std::move(call)] {
      c.tid = gettid();
      call();
      c.returned = true;
    });
  }
  // Whether each of the calls started `from` on has returned or waits for its answer.
  bool returned_or_waiting(size_t from = 0) const {
    for (size_t i = from; i < calls_.size(); ++i) {
      if (calls_[i]->returned) continue;
      if (calls_[i]->tid == 0) return false;
      // What the thread waits in, in the kernel (its wchan).
      const std::string in = slurp("/proc/self/task/" + std::to_string(calls_[i]->tid) + "/wchan");
      if (in.find("request_wait_answer") == std::string::npos &&
          in.find("fuse_simple_request") == std::string::npos) {
        return false;
      }
    }
    return true;
  }
  // Whether each of the calls started `from` on has returned.
  bool returned(size_t from = 0) const {
    for (size_t i = from; i < calls_.size(); ++i) {
      if (!calls_[i]->returned) return false;
    }
    return true;
  }
  size_t size() const { return calls_.size(); }

 private:
  struct Call {
    std::atomic<pid_t> tid{0};
    std::atomic<bool> returned{false};
  };
  std::function<void()> end_mount_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<std::thread> threads_;
};

// The target of usr/share/dfs/hello-link, which the kernel keeps once read through the mount.
class KeptLinks : public KernelCache {
 protected:
  std::filesystem::path dfs;  // through the mount
  const std::filesystem::path dirs = "usr/share/dfs-dirs";
  char buf[256];

  void SetUp() override {
    KernelCache::SetUp();
    dfs = mnt / "usr/share/dfs";
  }

  bool refused(const std::filesystem::path& link, char* target) {
    errno = 0;
    return readlink(link.c_str(), target, sizeof buf) == -1 && errno == EACCES;
  }
  bool refused(const std::filesystem::path& link) { return refused(link, buf); }
  // Read twice: the kernel keeps the target from the first read on.
  void kept(const std::filesystem::path& link) {
    for (int i = 0; i < 2; ++i) ASSERT_GT(readlink(link.c_str(), buf, sizeof buf), 0) << link;
  }
  // Whether all `calls` return within `bound`. If not, the mount is aborted (a forced unmount
  // of FUSE aborts its connection), so that they return and the test can end: a daemon whose
  // threads wait for page locks cannot be killed.
  bool all_returned(const Callers& calls, std::chrono::milliseconds bound) {
    if (within(bound, [&] { return calls.returned(); })) return true;
    end_mount();
    return false;
  }
  void end_mount() {
    umount2(mnt.c_str(), MNT_FORCE);
    umount2(mnt.c_str(), MNT_DETACH);
    if (pid > 0) kill_daemon(SIGKILL);
  }
  // What the daemon's thread called `name` waits in, in the kernel (its wchan).
  std::string daemon_waits_in(const std::string& name) {
    const std::vector<pid_t> tids = threads_named(pid, name);
    if (tids.size() != 1) return "";
    return slurp("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tids[0]) + "/wchan");
  }
  // Whether the daemon's main thread, which serves requests, has `sig` pending.
  bool pending_for_the_loop(int sig) {
    const std::string status =
        slurp("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/status");
    const auto at = status.find("\nSigPnd:\t");
    if (at == std::string::npos) return false;
    return (std::stoull(status.substr(at + 9), nullptr, 16) >> (sig - 1)) & 1;
  }
  // With the loop's thread held since a READLINK was sent (unread, its page locked) and
  // another thread waiting for that page lock (`waits_for_the_page`), SIGTERM: another thread
  // takes it and sends it on to the loop's. Let go, the loop ends without reading the
  // READLINK, and the daemon must end all the same; the READLINK fails (`error`), closed.
  void expect_a_stop_to_end_the_daemon(Callers& calls, HeldThreads& loop,
                                       const std::string& waits_for_the_page,
                                       const std::atomic<int>& error) {
    EXPECT_TRUE(within(10s,
                       [&] {
                         const std::string in = daemon_waits_in(waits_for_the_page);
                         return in.find("folio") != std::string::npos ||
                                in.find("page") != std::string::npos;
                       }))
        << waits_for_the_page << " waits in " << daemon_waits_in(waits_for_the_page);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    EXPECT_TRUE(within(10s, [&] { return pending_for_the_loop(SIGTERM); }));
    loop.let_go();
    expect_the_stopped_daemon_ended(calls, error);
  }
  // The daemon, sent SIGTERM, ends (the mount it leaves, failing closed, is then taken away),
  // every call returns, and the readlink among them failed closed (`error`): aborted, or sent
  // after the connection had ended.
  void expect_the_stopped_daemon_ended(const Callers& calls, const std::atomic<int>& error) {
    const bool ended = daemon_ended_within(20s);
    if (ended) umount2(mnt.c_str(), MNT_DETACH);
    const bool returned = all_returned(calls, 20s);
    EXPECT_TRUE(ended) << "the daemon did not end after SIGTERM";
    ASSERT_TRUE(returned);
    EXPECT_TRUE(error == ECONNABORTED || error == ENOTCONN) << strerror(error);
  }
  // Renames dirs/0/a to b through the mount, with the drop thread held: returns once the loop
  // has renamed beneath, and handed the answer to that thread.
  void start_rename_left_to_the_held_drops(Callers& calls) {
    // Its result depends on how the test ends the mount: no expectation here.
    calls.start([&] { std::rename((mnt / dirs / "0/a").c_str(), (mnt / dirs / "0/b").c_str()); });
    EXPECT_TRUE(within(10s, [&] { return std::filesystem::exists(root / dirs / "0/b"); }));
  }
  // Starts a readlink of the link no package has, whose errno goes to `error`; returns once it
  // has returned or waits for its answer.
  void start_unpackaged_readlink(Callers& calls, std::atomic<int>& error) {
    const size_t reader = calls.size();
    calls.start([&] {
      char target[sizeof buf];
      if (readlink((dfs / "unpackaged-link").c_str(), target, sizeof target) < 0) error = errno;
    });
    EXPECT_TRUE(within(10s, [&] { return calls.returned_or_waiting(reader); }));
  }
  // The link's directory renamed by `rename_dir` while the watcher's thread is held: no report
  // of the rename has been read, and still the link at its new path, which no package has,
  // is judged afresh once `reach` has made the kernel find the directory by its new name.
  void expect_refused_after_moving_its_directory(const std::function<void()>& rename_dir,
                                                 const std::function<void()>& reach) {
    mount();
    ASSERT_EQ(kernel_cache(), "fanotify") << status();
    kept(dfs / "hello-link");
    std::atomic<bool> was_refused{false};
    bool returned;
    {
      Callers calls([&] { end_mount(); });
      HeldThreads watcher(pid, "dfs-watcher");
      ASSERT_EQ(watcher.count(), 1u) << "no thread dfs-watcher to hold in " << pid;
      rename_dir();
      calls.start([&] {
        char target[sizeof buf];
        reach();
        was_refused = refused(mnt / "usr/share/dfs-moved/hello-link", target);
      });
      returned = all_returned(calls, 20s);
    }
    ASSERT_TRUE(returned) << "the mount stopped answering";
    EXPECT_TRUE(was_refused) << "the target judged at the old path was served";
    EXPECT_NE(log_text().find("DENY path=/usr/share/dfs-moved/hello-link reason=no-entry"),
              std::string::npos)
        << log_text();
  }
  void rename_beneath() {
    ASSERT_EQ(std::rename((root / "usr/share/dfs").c_str(), (root / "usr/share/dfs-moved").c_str()),
              0)
        << strerror(errno);
  }
  // Directories dirs/N/a (N from 0 to `count`), looked up through the mount, with the missing
  // name b beside each kept by the kernel: a rename of a to b sends RENAME alone. And a
  // symlink no package has, looked up: its readlink is refused, on a waiting thread.
  void make_renamable_directories(int count) {
    for (int i = 0; i < count; ++i)
      std::filesystem::create_directories(root / dirs / std::to_string(i) / "a");
    ASSERT_EQ(symlink("nowhere", (root / "usr/share/dfs/unpackaged-link").c_str()), 0);
    mount();
    ASSERT_EQ(kernel_cache(), "fanotify") << status();
    kept(dfs / "hello-link");
    struct stat st;
    for (int i = 0; i < count; ++i) {
      const auto dir = mnt / dirs / std::to_string(i);
      ASSERT_EQ(stat((dir / "a").c_str(), &st), 0) << strerror(errno);
      ASSERT_NE(stat((dir / "b").c_str(), &st), 0);
    }
    ASSERT_EQ(lstat((dfs / "unpackaged-link").c_str(), &st), 0) << strerror(errno);
  }
  void rename_through_the_mount(int n, const char* from, const char* to) {
    const auto dir = mnt / dirs / std::to_string(n);
    EXPECT_EQ(std::rename((dir / from).c_str(), (dir / to).c_str()), 0) << strerror(errno);
  }
  void expect_unpackaged_link_refused() {
    char target[sizeof buf];
    EXPECT_TRUE(refused(dfs / "unpackaged-link", target)) << strerror(errno);
  }
};

TEST_F(KeptLinks, ADirectoryRenamedBeneathIsFoundByItsNewNameWithTheTargetsDropped) {
  expect_refused_after_moving_its_directory([&] { rename_beneath(); }, [] {});
}

// A listing with attributes hands the kernel the directory under its new name: no lookup of
// that name follows.
TEST_F(KeptLinks, ADirectoryRenamedBeneathIsListedByItsNewNameWithTheTargetsDropped) {
  expect_refused_after_moving_its_directory(
      [&] { rename_beneath(); },
      [&] {
        size_t entries = 0;
        for (const auto& e : std::filesystem::directory_iterator(mnt / "usr/share")) {
          entries += e.path().filename() == "dfs-moved";
        }
        EXPECT_EQ(entries, 1u);
      });
}

TEST_F(KeptLinks, ADirectoryRenamedThroughTheMountDropsTheTargetsBeforeTheRenameReturns) {
  expect_refused_after_moving_its_directory(
      [&] {
        ASSERT_EQ(std::rename(dfs.c_str(), (mnt / "usr/share/dfs-moved").c_str()), 0)
            << strerror(errno);
      },
      [] {});
}

// Dropping a kept target waits while a READLINK of it is under way (the kernel holds the
// target's page locked until it is answered), and that READLINK may wait for a waiting thread.
// Drops that wait for it must not take the threads it could be answered by, whichever comes
// first: the mount would answer nothing, for good.
TEST_F(KeptLinks, DropsQueuedAheadOfAReadlinkTheyWaitForDoNotHangTheMount) {
  constexpr int kRenames = 16;  // more than the daemon's waiting threads
  make_renamable_directories(kRenames);
  Callers calls([&] { end_mount(); });
  {
    HeldThreads waiting(pid, "dfs-waiting");
    ASSERT_GT(waiting.count(), 0u) << "no thread dfs-waiting to hold in " << pid;
    // Each rename of a directory through the mount drops every kept target.
    for (int i = 0; i < kRenames; ++i)
      calls.start([&, i] { rename_through_the_mount(i, "a", "b"); });
    // Each rename answered, or queued (the waiting threads held): then the readlink comes.
    EXPECT_TRUE(within(10s, [&] { return calls.returned_or_waiting(); }));
    calls.start([&] { expect_unpackaged_link_refused(); });
    EXPECT_TRUE(within(10s, [&] { return calls.returned_or_waiting(kRenames); }));
  }
  ASSERT_TRUE(all_returned(calls, 20s)) << "the mount stopped answering";
}

TEST_F(KeptLinks, DropsQueuedBehindAReadlinkTheyWaitForEndOnceItIsAnswered) {
  constexpr int kRenames = 16;
  make_renamable_directories(kRenames);
  Callers calls([&] { end_mount(); });
  {
    HeldThreads waiting(pid, "dfs-waiting");
    ASSERT_GT(waiting.count(), 0u) << "no thread dfs-waiting to hold in " << pid;
    calls.start([&] { expect_unpackaged_link_refused(); });
    EXPECT_TRUE(within(10s, [&] { return calls.returned_or_waiting(); }));
    for (int i = 0; i < kRenames; ++i)
      calls.start([&, i] { rename_through_the_mount(i, "a", "b"); });
    EXPECT_TRUE(within(10s, [&] { return calls.returned_or_waiting(1); }));
  }
  ASSERT_TRUE(all_returned(calls, 20s)) << "the mount stopped answering";
}

// A stop signal ends the loop while a drop waits its turn (its thread held): a READLINK the
// kernel sends after that is never read, and the drop would wait for its page for good. The
// daemon ends its connection once its loop ends, so that it ends too.
TEST_F(KeptLinks, AStopWhileADropWaitsItsTurnEndsTheDaemon) {
  make_renamable_directories(1);
  std::atomic<int> error{0};
  Callers calls([&] { end_mount(); });
  {
    HeldThreads drops(pid, "dfs-link-drops");
    ASSERT_EQ(drops.count(), 1u) << "no thread dfs-link-drops to hold in " << pid;
    start_rename_left_to_the_held_drops(calls);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    // The signal ends the loop's wait for a request, or the loop ends after the request it is
    // answering: lookups of new names, one at a time, until it has ended.
    int pokes = 0;
    EXPECT_TRUE(within(10s, [&] {
      if (threads_named(pid, "dfs-waiting").empty()) return true;
      if (calls.returned(1)) {
        calls.start([&, name = "no-such-file-" + std::to_string(pokes++)] {
          struct stat st;
          stat((dfs / name).c_str(), &st);
        });
      }
      return false;
    })) << "the loop did not end";
    start_unpackaged_readlink(calls, error);
  }
  expect_the_stopped_daemon_ended(calls, error);
}

// A stop while a drop is under way already: its thread waits for the page lock of a READLINK
// that the loop never reads, inside its write to the FUSE device, and so holds the device's
// file too. Replacing the session's fd would not end the connection; fusectl's abort does.
TEST_F(KeptLinks, AStopWhileADropIsUnderWayEndsTheDaemon) {
  make_renamable_directories(1);
  std::atomic<int> error{0};
  Callers calls([&] { end_mount(); });
  HeldThreads drops(pid, "dfs-link-drops");
  ASSERT_EQ(drops.count(), 1u) << "no thread dfs-link-drops to hold in " << pid;
  start_rename_left_to_the_held_drops(calls);
  HeldThreads loop(pid, "digestfs");
  ASSERT_GT(loop.count(), 0u) << "no thread digestfs to hold in " << pid;
  start_unpackaged_readlink(calls, error);
  drops.let_go();
  expect_a_stop_to_end_the_daemon(calls, loop, "dfs-link-drops", error);
}

// The same for the watcher's drop, after a directory the mount knows was renamed beneath.
TEST_F(KeptLinks, AStopWhileTheWatchersDropIsUnderWayEndsTheDaemon) {
  make_renamable_directories(1);
  std::atomic<int> error{0};
  Callers calls([&] { end_mount(); });
  HeldThreads loop(pid, "digestfs");
  ASSERT_GT(loop.count(), 0u) << "no thread digestfs to hold in " << pid;
  start_unpackaged_readlink(calls, error);
  ASSERT_EQ(std::rename((root / dirs / "0/a").c_str(), (root / dirs / "0/b").c_str()), 0);
  expect_a_stop_to_end_the_daemon(calls, loop, "dfs-watcher", error);
}

TEST_F(KeptLinks, ASymlinkTargetTheKernelKeepsIsJudgedAgainAtEveryNewPath) {
  mount();
  // Renamed through the mount: no package has the new path, from the moment rename returns.
  kept(dfs / "hello-link");
  ASSERT_EQ(std::rename((dfs / "hello-link").c_str(), (dfs / "moved-link").c_str()), 0);
  EXPECT_TRUE(refused(dfs / "moved-link"));
  ASSERT_EQ(std::rename((dfs / "moved-link").c_str(), (dfs / "hello-link").c_str()), 0);
  kept(dfs / "hello-link");
  // Its directory renamed through the mount, then beneath it.
  const auto moved = mnt / "usr/share/dfs-moved";
  ASSERT_EQ(std::rename(dfs.c_str(), moved.c_str()), 0);
  EXPECT_TRUE(within(10s, [&] { return refused(moved / "hello-link"); })) << log_text();
  ASSERT_EQ(std::rename((root / "usr/share/dfs-moved").c_str(), (root / "usr/share/dfs").c_str()),
            0);
  ASSERT_TRUE(
      within(10s, [&] { return readlink((dfs / "hello-link").c_str(), buf, sizeof buf) > 0; }));
  kept(dfs / "hello-link");
  // Held open, the link's inode (and the target it keeps) outlives its old name's entry.
  const UniqueFd held(open((dfs / "hello-link").c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(std::rename((root / "usr/share/dfs").c_str(), (root / "usr/share/dfs-beneath").c_str()),
            0);
  EXPECT_TRUE(within(10s, [&] { return refused(mnt / "usr/share/dfs-beneath/hello-link"); }))
      << log_text();
}

// While watched, a verified file stays open in the daemon after its last close, and the next
// open is answered from that fd: never for a path that now names something else, never after
// the trust in it has gone, and never holding a removed file's space.
class KeptFds : public KernelCache {
 protected:
  const std::filesystem::path data = "usr/share/dfs/data.txt";
  const std::string v1 = "trusted data, version 1\n";

  // Opens data.txt twice through the mount: the second open is answered by the kept fd.
  void reopen_from_kept_fd() {
    mount();
    ASSERT_EQ(kernel_cache(), "fanotify") << status();
    ASSERT_EQ(read_file(mnt / data).bytes, v1) << log_text();
    ASSERT_EQ(status_number("warm_fds"), 1u) << status();
    const uint64_t opens = status_number("opens"), hits = status_number("memo_hits");
    ASSERT_EQ(read_file(mnt / data).bytes, v1) << log_text();
    ASSERT_EQ(status_number("opens"), opens + 1) << status();
    ASSERT_EQ(status_number("memo_hits"), hits + 1) << "counted as judged from the memo";
    ASSERT_EQ(status_number("warm_fds"), 1u) << status();
  }
  // The same size, other bytes, written beneath while the watcher's thread is held: no report
  // of the change has been read, and still the next open sees (by its fstat) that the version
  // verified is gone.
  void expect_a_change_not_yet_reported_refused() {
    std::string v2 = v1;
    v2[0] = 'T';
    {
      HeldThreads watcher(pid, "dfs-watcher");
      ASSERT_EQ(watcher.count(), 1u) << "no thread dfs-watcher to hold in " << pid;
      ASSERT_TRUE(write_text(root / data, v2));
      EXPECT_EQ(read_file(mnt / data).error, EACCES) << log_text();
    }
    EXPECT_NE(log_text().find("DENY path=/usr/share/dfs/data.txt reason=digest-mismatch"),
              std::string::npos)
        << log_text();
  }
};

TEST_F(KeptFds, AChangeTheWatcherHasNotReportedIsSeenByTheNextOpen) {
  reopen_from_kept_fd();
  expect_a_change_not_yet_reported_refused();
}

TEST_F(KeptFds, ARenameThroughTheMountEndsThemAtOnce) {
  reopen_from_kept_fd();
  const auto dfs = mnt / "usr/share/dfs", moved = mnt / "usr/share/dfs-moved";
  ASSERT_EQ(std::rename(dfs.c_str(), moved.c_str()), 0);
  EXPECT_EQ(read_file(moved / "data.txt").error, EACCES) << "no package has the new path";
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfs-moved/data.txt reason=no-entry"),
            std::string::npos)
      << log_text();
  ASSERT_EQ(std::rename(moved.c_str(), dfs.c_str()), 0);
  EXPECT_EQ(read_file(mnt / data).bytes, v1) << log_text();
}

TEST_F(KeptFds, ARenameBeneathTheMountEndsThem) {
  reopen_from_kept_fd();
  ASSERT_EQ(std::rename((root / "usr/share/dfs").c_str(), (root / "usr/share/dfs-moved").c_str()),
            0);
  const auto moved = mnt / "usr/share/dfs-moved/data.txt";
  EXPECT_TRUE(within(10s, [&] { return read_file(moved).error == EACCES; })) << log_text();
  EXPECT_EQ(status_number("warm_fds"), 0u) << status();
}

// A rename beneath while the watcher's thread is held: no report of it has been read, and
// still the file at its new path, which no package has, is judged afresh.
class KeptFdsRenamedBeneath : public KeptFds {
 protected:
  void expect_refused_after_renaming(const std::filesystem::path& from,
                                     const std::filesystem::path& to,
                                     const std::filesystem::path& file_now,
                                     bool kept_already = false) {
    if (!kept_already) reopen_from_kept_fd();
    {
      HeldThreads watcher(pid, "dfs-watcher");
      ASSERT_EQ(watcher.count(), 1u) << "no thread dfs-watcher to hold in " << pid;
      ASSERT_EQ(std::rename((root / from).c_str(), (root / to).c_str()), 0) << strerror(errno);
      const auto got = read_file(mnt / file_now);
      EXPECT_EQ(got.error, EACCES) << "served at a path no package has: " << got.bytes;
      EXPECT_EQ(status_number("warm_fds"), 0u) << status();
    }
    EXPECT_NE(log_text().find("DENY path=/" + file_now.string() + " reason=no-entry"),
              std::string::npos)
        << log_text();
  }
};

TEST_F(KeptFdsRenamedBeneath, ADirectoryRenamedAboveAKeptFileEndsThemBeforeTheWatcherReports) {
  expect_refused_after_renaming("usr/share/dfs", "usr/share/dfs-moved",
                                "usr/share/dfs-moved/data.txt");
}

// The kernel may forget the directories above a file whose inode it keeps (here for an
// inotify watch): the rename's report then names no directory the mount knows, and the lookups
// of the new path make new nodes for them, until the file's own lookup finds its node again.
TEST_F(KeptFdsRenamedBeneath, ADirectoryTheKernelForgotRenamedAboveAKeptFileEndsThem) {
  reopen_from_kept_fd();
  const UniqueFd watches(inotify_init1(IN_CLOEXEC));
  ASSERT_TRUE(watches.valid());
  ASSERT_GE(inotify_add_watch(watches.get(), (mnt / data).c_str(), IN_ALL_EVENTS), 0)
      << strerror(errno);
  // Unused entries go, the whole machine's: all the mount's nodes but the watched file's.
  ASSERT_TRUE(within(60s, [&] {
    return write_text("/proc/sys/vm/drop_caches", "2\n") && status_number("nodes") == 1;
  })) << status();
  ASSERT_EQ(status_number("warm_fds"), 1u) << status();
  expect_refused_after_renaming("usr/share/dfs", "usr/share/dfs-moved",
                                "usr/share/dfs-moved/data.txt", true);
}

TEST_F(KeptFdsRenamedBeneath, AKeptFileRenamedEndsThemBeforeTheWatcherReports) {
  expect_refused_after_renaming(data, "usr/share/dfs/data-moved.txt",
                                "usr/share/dfs/data-moved.txt");
}

TEST_F(KeptFds, TheTrustGoneTheFileIsRefused) {
  reopen_from_kept_fd();
  // --justdb leaves the file as it was: only the trust in it goes away.
  ASSERT_TRUE(rpm_in_root(root, "-e --justdb --nodeps --noscripts dfs-base"));
  EXPECT_TRUE(within(10s, [&] { return read_file(mnt / data).error == EACCES; })) << log_text();
}

TEST_F(KeptFds, AFileRemovedBeneathTheMountIsNotKeptOpen) {
  reopen_from_kept_fd();
  const std::string path = (root / data).string();
  ASSERT_EQ(open_fds_of(pid, path), 1u) << "the kept fd";
  ASSERT_TRUE(std::filesystem::remove(root / data));
  EXPECT_TRUE(within(10s, [&] { return open_fds_of(pid, path + " (deleted)") == 0; }))
      << "the daemon still holds the removed file open";
  EXPECT_EQ(read_file(mnt / data).error, ENOENT);
}

// With keep-open=1: data.txt verified, then its kept fd closed by opening another file.
class PastKeepOpen : public KeptFds {
 protected:
  const std::filesystem::path big = "usr/share/dfs/big.bin";

  void SetUp() override {
    KeptFds::SetUp();
    mount(",keep-open=1");
    ASSERT_EQ(kernel_cache(), "fanotify") << status();
    ASSERT_EQ(read_file(mnt / data).bytes, v1) << log_text();
    ASSERT_EQ(open_fds_of(pid, (root / data).string()), 1u);
    close_data_fd();
  }
  void close_data_fd() {
    ASSERT_EQ(read_file(mnt / big).error, 0) << log_text();
    ASSERT_EQ(status_number("warm_fds"), 1u) << status();
    ASSERT_EQ(open_fds_of(pid, (root / data).string()), 0u) << "the oldest is closed";
    ASSERT_EQ(open_fds_of(pid, (root / big).string()), 1u);
    ASSERT_EQ(status_number("warm_verdicts"), 1u) << status();
  }
};

TEST_F(PastKeepOpen, TheVerdictStaysWithTheNodeUntilTheFileChanges) {
  const uint64_t opens = status_number("opens"), hits = status_number("memo_hits");
  ASSERT_EQ(read_file(mnt / data).bytes, v1) << log_text();
  EXPECT_EQ(status_number("opens"), opens + 1) << status();
  EXPECT_EQ(status_number("memo_hits"), hits + 1) << status();
  EXPECT_EQ(open_fds_of(pid, (root / data).string()), 1u) << "kept again";
  close_data_fd();
  // The same size, other bytes: the version remembered is no longer there.
  std::string v2 = v1;
  v2[0] = 'T';
  ASSERT_TRUE(write_text(root / data, v2));
  EXPECT_TRUE(within(10s, [&] { return read_file(mnt / data).error == EACCES; })) << log_text();
  // The watcher's report of the change forgets the verdict (the open may come first).
  EXPECT_TRUE(within(10s, [&] { return status_number("warm_verdicts") == 0; })) << status();
  EXPECT_NE(log_text().find("DENY path=/usr/share/dfs/data.txt reason=digest-mismatch"),
            std::string::npos)
      << log_text();
}

TEST_F(PastKeepOpen, AChangeTheWatcherHasNotReportedIsSeenByTheNextOpen) {
  expect_a_change_not_yet_reported_refused();
}

TEST_F(PastKeepOpen, TheTrustGoneTheFileIsRefused) {
  ASSERT_TRUE(rpm_in_root(root, "-e --justdb --nodeps --noscripts dfs-base"));
  EXPECT_TRUE(within(10s, [&] { return read_file(mnt / data).error == EACCES; })) << log_text();
}

TEST_F(KeptFds, KeepOpenZeroKeepsNone) {
  mount(",keep-open=0");
  for (int i = 0; i < 2; ++i) ASSERT_EQ(read_file(mnt / data).bytes, v1) << log_text();
  EXPECT_EQ(status_number("warm_fds"), 0u) << status();
  EXPECT_EQ(open_fds_of(pid, (root / data).string()), 0u);
}

TEST_F(KernelCache, UnwatchedTheKernelCachesForOneSecondOnly) {
  mount(",unknown-allow=/usr/share/dfs/*,watch-source=no");
  ASSERT_EQ(kernel_cache(), "timeout 1 s") << status();
  expect_every_change_seen(10s);
  // Nothing would tell of a directory renamed above a kept file: none is kept.
  for (int i = 0; i < 2; ++i) ASSERT_EQ(read_file(mnt / "usr/share/dfs/data.txt").error, 0);
  EXPECT_EQ(status_number("warm_fds"), 0u) << status();
}

}  // namespace
}  // namespace digestfs::test
