// A lower filesystem that misbehaves, for the tests of what a lower filesystem can do to the
// daemon: a read-only passthrough of BACKING at MOUNTPOINT that, once asked, serves other
// bytes for one file from byte LIE_FROM on, while its size, mtime and ctime stay exactly what
// the backing file says (what a device written underneath, a network filesystem or a hostile
// disk image can do); or holds every read of that file until told to go on (a hung disk or
// server); or lists, in every directory, an entry it then cannot find (what a listing read
// while its files are removed meets).
// Usage: lying-fs BACKING MOUNTPOINT RELATIVE_PATH LIE_FROM
// It is asked by reading an attribute of any of its files: user.lying-fs.start (lie from now
// on), user.lying-fs.stall (hold reads from now on), user.lying-fs.resume (let them go),
// user.lying-fs.ghost (list `kGhost` from now on; looking it up is ENOENT). The
// answer comes once the switch is made, so a test never races it (a signal would).
#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string g_backing, g_lie_path;
off_t g_lie_from = 0;
std::atomic<bool> g_lying{false};
std::atomic<bool> g_ghost{false};
constexpr char kGhost[] = "lying-fs-ghost";
std::mutex g_stall_mutex;
std::condition_variable g_resumed;
bool g_stalled = false;

std::string backing(const char* path) { return g_backing + path; }

int lie_getattr(const char* path, struct stat* st, fuse_file_info*) {
  return lstat(backing(path).c_str(), st) == 0 ? 0 : -errno;
}

int lie_readlink(const char* path, char* buf, size_t size) {
  ssize_t n = readlink(backing(path).c_str(), buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

int lie_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
                fuse_readdir_flags) {
  DIR* d = opendir(backing(path).c_str());
  if (!d) return -errno;
  // First, so that every entry after it is listed only if it does not end the listing.
  if (g_ghost) fill(buf, kGhost, nullptr, 0, fuse_fill_dir_flags{});
  while (dirent* e = readdir(d)) fill(buf, e->d_name, nullptr, 0, fuse_fill_dir_flags{});
  closedir(d);
  return 0;
}

int lie_open(const char* path, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  int fd = open(backing(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  fi->direct_io = 1;  // every read reaches this server, so that its lies do too
  return 0;
}

int lie_read(const char* path, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  if (g_lie_path == path) {
    std::unique_lock lock(g_stall_mutex);
    g_resumed.wait(lock, [] { return !g_stalled; });
  }
  ssize_t n = pread(static_cast<int>(fi->fh), buf, size, offset);
  if (n < 0) return -errno;
  if (g_lying && g_lie_path == path) {
    for (ssize_t i = 0; i < n; ++i) {
      if (offset + i >= g_lie_from) buf[i] ^= 0x01;
    }
  }
  return static_cast<int>(n);
}

int lie_getxattr(const char*, const char* name, char* value, size_t size) {
  const std::string asked = name;
  if (asked == "user.lying-fs.start") {
    g_lying = true;
  } else if (asked == "user.lying-fs.ghost") {
    g_ghost = true;
  } else if (asked == "user.lying-fs.stall" || asked == "user.lying-fs.resume") {
    std::lock_guard lock(g_stall_mutex);
    g_stalled = asked == "user.lying-fs.stall";
    g_resumed.notify_all();
  } else {
    return -ENODATA;
  }
  constexpr char kAnswer[] = "done";
  if (size == 0) return sizeof kAnswer - 1;
  if (size < sizeof kAnswer - 1) return -ERANGE;
  std::memcpy(value, kAnswer, sizeof kAnswer - 1);
  return sizeof kAnswer - 1;
}

int lie_release(const char*, fuse_file_info* fi) {
  close(static_cast<int>(fi->fh));
  return 0;
}

int lie_statfs(const char* path, struct statvfs* st) {
  return statvfs(backing(path).c_str(), st) == 0 ? 0 : -errno;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: lying-fs BACKING MOUNTPOINT RELATIVE_PATH LIE_FROM\n");
    return 2;
  }
  g_backing = argv[1];
  g_lie_path = std::string("/") + argv[3];
  g_lie_from = std::atoll(argv[4]);
  fuse_operations ops{};
  ops.getattr = lie_getattr;
  ops.readlink = lie_readlink;
  ops.readdir = lie_readdir;
  ops.open = lie_open;
  ops.read = lie_read;
  ops.getxattr = lie_getxattr;
  ops.release = lie_release;
  ops.statfs = lie_statfs;
  char* fuse_argv[] = {argv[0],
                       const_cast<char*>("-f"),
                       const_cast<char*>("-o"),
                       const_cast<char*>("allow_other,default_permissions,ro"),
                       argv[2],
                       nullptr};
  return fuse_main(5, fuse_argv, &ops, nullptr);
}
