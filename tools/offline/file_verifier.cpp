#include "tools/offline/file_verifier.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <rpm/rpmfiles.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cache/file_hasher.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {
namespace {

// The last component is not followed unless `follow`; every other one resolves inside root.
UniqueFd open_in_root(int root_fd, const std::string& path, uint64_t flags, bool follow = false) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const std::string rel = path.empty() || path == "/" ? "." : path.substr(1);
  return UniqueFd(static_cast<int>(syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how)));
}

// Where an entry is: one path component below its (already resolved) directory, or, when
// there is no directory fd or the name is unusual, an O_PATH fd of the whole path resolved
// inside the root (then `name` is empty and the *at calls take AT_EMPTY_PATH).
struct EntryRef {
  UniqueFd node;
  int dir = -1;
  std::string name;
  int open_errno = 0;

  EntryRef(int root_fd, int parent_fd, const std::string& path, std::string_view base) {
    if (parent_fd >= 0 && !base.empty() && base != "." && base != ".." &&
        base.find('/') == std::string_view::npos) {
      dir = parent_fd;
      name = base;
    } else {
      node = open_in_root(root_fd, path, O_PATH);
      open_errno = errno;
      dir = node.get();
    }
  }
  int lstat(struct stat* sb) const {
    if (dir < 0) {
      errno = open_errno;
      return -1;
    }
    return fstatat(dir, name.c_str(), sb, AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0));
  }
  ssize_t readlink(char* buf, size_t size) const {
    return readlinkat(dir, name.c_str(), buf, size);
  }
  // Only for what lstat showed to be a regular file: a device node is never opened. (One
  // swapped in between is the race rpm -V has too.)
  UniqueFd open_content(int root_fd, const std::string& path) const {
    constexpr int kFlags = O_RDONLY | O_NOCTTY | O_NONBLOCK;
    if (name.empty()) return open_in_root(root_fd, path, kFlags);
    return UniqueFd(openat(dir, name.c_str(), kFlags | O_CLOEXEC | O_NOFOLLOW));
  }
};

// The file's capabilities as libcap sees them; most files have none, which one getxattr says.
bool capabilities_differ(int fd, std::string_view expected_text) {
  char probe[64];
  if (expected_text.empty() && fd >= 0 &&
      fgetxattr(fd, "security.capability", probe, sizeof probe) < 0 && errno == ENODATA) {
    return false;
  }
  struct CapFree {
    void operator()(cap_t c) const { cap_free(c); }
  };
  using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;
  CapPtr expected(expected_text.empty() ? nullptr
                                        : cap_from_text(std::string(expected_text).c_str()));
  CapPtr actual(fd >= 0 ? cap_get_fd(fd) : nullptr);
  return (expected || actual) && cap_compare(expected.get(), actual.get()) != 0;
}

}  // namespace

UniqueFd open_dir_in_root(int root_fd, std::string_view dir) {
  std::string path(dir);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // Followed like every other component: /lib may be a link to usr/lib, inside the root.
  return open_in_root(root_fd, path, O_PATH | O_DIRECTORY, true);
}

namespace {

// What rpm -V checks of this entry, as it is on disk (sb): %verify() flags narrowed by the
// install state, the file type found and %ghost.
uint32_t checks_for(const FileEntry& e, const struct stat& sb) {
  uint32_t flags = e.verify_flags();
  switch (e.state()) {
    case RPMFILE_STATE_REPLACED: return 0;  // another package's version is there: existence only
    case RPMFILE_STATE_WRONGCOLOR:
      flags &= ~(RPMVERIFY_FILEDIGEST | RPMVERIFY_FILESIZE | RPMVERIFY_MTIME | RPMVERIFY_RDEV);
      break;
    default: break;
  }
  if (S_ISLNK(sb.st_mode))
    flags &= ~RPMVERIFY_MODE;
  else
    flags &= ~RPMVERIFY_LINKTO;
  if (!S_ISREG(sb.st_mode)) {
    flags &= ~(RPMVERIFY_FILEDIGEST | RPMVERIFY_FILESIZE | RPMVERIFY_MTIME | RPMVERIFY_CAPS);
  }
  if (e.is_ghost()) {
    flags &= ~(RPMVERIFY_FILEDIGEST | RPMVERIFY_FILESIZE | RPMVERIFY_MTIME | RPMVERIFY_LINKTO);
  }
  return flags & ~RPMVERIFY_FAILURES;
}

// The content against the signed digest: RPMVERIFY_FILEDIGEST (and READFAIL) when it differs.
uint32_t check_digest(const FileEntry& e, int content_fd, const struct stat& sb, FileCheck& out) {
  if (e.digest().empty()) return RPMVERIFY_FILEDIGEST;
  if (content_fd < 0) return RPMVERIFY_READFAIL | RPMVERIFY_FILEDIGEST;
  auto actual = hash_fd(content_fd, e.algo(), static_cast<uint64_t>(sb.st_size));
  if (!actual) return RPMVERIFY_READFAIL | RPMVERIFY_FILEDIGEST;
  out.bytes_hashed = actual->bytes;
  return actual->digest.view() == e.digest() ? 0 : RPMVERIFY_FILEDIGEST;
}

uint32_t check_link(const FileEntry& e, const EntryRef& entry) {
  char target[1025];
  ssize_t n = entry.readlink(target, sizeof target - 1);
  if (n < 0) return RPMVERIFY_READLINKFAIL | RPMVERIFY_LINKTO;
  return std::string_view(target, static_cast<size_t>(n)) == e.linkto() ? 0 : RPMVERIFY_LINKTO;
}

uint32_t check_mode_and_device(const FileEntry& e, const struct stat& sb, uint32_t flags) {
  uint32_t out = 0;
  if (flags & RPMVERIFY_MODE) {
    mode_t expected = e.mode(), actual = sb.st_mode;
    if (e.is_ghost()) {  // the type of a %ghost is not checked, its permissions are
      expected &= ~S_IFMT;
      actual &= ~S_IFMT;
    }
    if (expected != actual) out |= RPMVERIFY_MODE;
  }
  if (flags & RPMVERIFY_RDEV) {
    const mode_t m = e.mode();
    if (S_ISCHR(m) != S_ISCHR(sb.st_mode) || S_ISBLK(m) != S_ISBLK(sb.st_mode)) {
      out |= RPMVERIFY_RDEV;
    } else if ((S_ISCHR(m) || S_ISBLK(m)) && (sb.st_rdev & 0xffff) != (e.rdev() & 0xffff)) {
      out |= RPMVERIFY_RDEV;
    }
  }
  return out;
}

}  // namespace

FileCheck verify_entry(int root_fd, int parent_fd, const FileEntry& e, const RootAccounts& accounts,
                       bool shared) {
  FileCheck out;
  const std::string path = e.path();
  const EntryRef entry(root_fd, parent_fd, path, e.basename());
  struct stat sb;
  if (entry.lstat(&sb) != 0) {
    out.lstat_errno = errno;
    out.result = RPMVERIFY_LSTATFAIL;
    return out;
  }
  // A directory the package made may have become a symlink to a directory: rpm follows it
  // when the link is owned by root or by the directory's owner.
  if (S_ISDIR(e.mode()) && S_ISLNK(sb.st_mode)) {
    UniqueFd followed = open_in_root(root_fd, path, O_PATH | O_DIRECTORY, true);
    struct stat dsb;
    if (followed && fstat(followed.get(), &dsb) == 0 && S_ISDIR(dsb.st_mode) &&
        (sb.st_uid == 0 || sb.st_uid == dsb.st_uid)) {
      sb = dsb;
    }
  }
  const uint32_t flags = checks_for(e, sb);
  UniqueFd content;
  if (flags & (RPMVERIFY_FILEDIGEST | RPMVERIFY_CAPS)) content = entry.open_content(root_fd, path);
  if (flags & RPMVERIFY_FILEDIGEST) out.result |= check_digest(e, content.get(), sb, out);
  if (flags & RPMVERIFY_LINKTO) out.result |= check_link(e, entry);
  if ((flags & RPMVERIFY_FILESIZE) && static_cast<uint64_t>(sb.st_size) != e.size()) {
    out.result |= RPMVERIFY_FILESIZE;
  }
  out.result |= check_mode_and_device(e, sb, flags);
  if ((flags & RPMVERIFY_CAPS) && capabilities_differ(content.get(), e.caps())) {
    out.result |= RPMVERIFY_CAPS;
  }
  if ((flags & RPMVERIFY_MTIME) && !shared && sb.st_mtime != static_cast<time_t>(e.mtime())) {
    out.result |= RPMVERIFY_MTIME;
  }
  if ((flags & RPMVERIFY_USER) && sb.st_uid != accounts.uid(e.user())) {
    out.result |= RPMVERIFY_USER;
  }
  if ((flags & RPMVERIFY_GROUP) && sb.st_gid != accounts.gid(e.group())) {
    out.result |= RPMVERIFY_GROUP;
  }
  return out;
}

std::string verify_columns(uint32_t r) {
  auto col = [r](uint32_t bit, char c) { return (r & bit) ? c : '.'; };
  std::string s;
  s += col(RPMVERIFY_FILESIZE, 'S');
  s += col(RPMVERIFY_MODE, 'M');
  s += (r & RPMVERIFY_READFAIL) ? '?' : col(RPMVERIFY_FILEDIGEST, '5');
  s += col(RPMVERIFY_RDEV, 'D');
  s += (r & RPMVERIFY_READLINKFAIL) ? '?' : col(RPMVERIFY_LINKTO, 'L');
  s += col(RPMVERIFY_USER, 'U');
  s += col(RPMVERIFY_GROUP, 'G');
  s += col(RPMVERIFY_MTIME, 'T');
  s += col(RPMVERIFY_CAPS, 'P');
  return s;
}

char attribute_marker(uint16_t attrs) {
  static constexpr std::pair<uint16_t, char> order[] = {
      {RPMFILE_DOC, 'd'},       {RPMFILE_CONFIG, 'c'},    {RPMFILE_SPECFILE, 's'},
      {RPMFILE_MISSINGOK, 'm'}, {RPMFILE_NOREPLACE, 'n'}, {RPMFILE_GHOST, 'g'},
      {RPMFILE_LICENSE, 'l'},   {RPMFILE_README, 'r'},    {RPMFILE_ARTIFACT, 'a'}};
  for (auto [bit, c] : order) {
    if (attrs & bit) return c;
  }
  return ' ';
}

}  // namespace digestfs
