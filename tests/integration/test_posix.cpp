// POSIX behaviour of the read-write passthrough: each step runs on a plain directory and, in
// lockstep, on an identical tree through the mount; the results must be the same, errno for
// errno. (Modelled on what mergerfs's tests check: one syscall, its result, its side effects.)
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/support/mount_fixture.hpp"

namespace digestfs::test {
namespace {

// A step's observable result: the return value, or the errno name, plus what it produced.
std::string outcome(long rc, const std::string& produced = "") {
  if (rc < 0) return std::string("errno=") + strerrorname_np(errno);
  return "rc=" + std::to_string(rc) + (produced.empty() ? "" : " " + produced);
}

// The parts in order: the steps' calls have side effects, and the operands of + are not
// sequenced; the elements of a braced list are.
std::string join(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p + ";";
  return out;
}

std::string describe(const struct stat& st) {
  return "type=" + std::to_string(st.st_mode & S_IFMT) +
         " mode=" + std::to_string(st.st_mode & 07777) + " uid=" + std::to_string(st.st_uid) +
         " gid=" + std::to_string(st.st_gid) + " size=" + std::to_string(st.st_size) +
         " nlink=" + std::to_string(st.st_nlink);
}

using Step = std::function<std::string(const std::string& base)>;
struct NamedStep {
  const char* what;
  Step step;
};

std::string stat_of(const std::string& p) {
  struct stat st;
  int rc = stat(p.c_str(), &st);
  return outcome(rc, rc == 0 ? describe(st) : "");
}
std::string lstat_of(const std::string& p) {
  struct stat st;
  int rc = lstat(p.c_str(), &st);
  return outcome(rc, rc == 0 ? describe(st) : "");
}
std::string read_all(const std::string& p) {
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return outcome(-1);
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  std::string r = outcome(n, n > 0 ? std::string(buf, size_t(n)) : "");
  close(fd);
  return r;
}
// Creates p with `mode` (no bytes written) and closes it: the outcome of the open.
std::string create(const std::string& p, mode_t mode) {
  int fd = open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, mode);
  const std::string r = outcome(fd < 0 ? -1 : 0);
  if (fd >= 0) close(fd);
  return r;
}
std::string write_file(const std::string& p, int flags, const std::string& bytes) {
  int fd = open(p.c_str(), flags | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return outcome(-1);
  std::string r = outcome(write(fd, bytes.data(), bytes.size()));
  close(fd);
  return r;
}
std::string listing(const std::string& p) {
  DIR* d = opendir(p.c_str());
  if (!d) return outcome(-1);
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    names.push_back(std::string(e->d_name) + ":" + std::to_string(e->d_type));
  closedir(d);
  std::sort(names.begin(), names.end());
  std::string r;
  for (const auto& n : names) r += n + " ";
  return r;
}
// Runs `step` as an unprivileged user (nobody) in a child; its outcome through a pipe.
std::string as_nobody(const std::function<std::string()>& step) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    std::string r = setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0
                        ? step()
                        : "setresuid failed";
    if (write(fds[1], r.data(), r.size()) < 0) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  std::string r;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) r.append(buf, size_t(n));
  close(fds[0]);
  waitpid(child, nullptr, 0);
  return r;
}

const std::vector<NamedStep>& steps() {
  static const std::vector<NamedStep> all = {
      {"mkdir",
       [](const std::string& b) {
         return join({outcome(mkdir((b + "/d").c_str(), 0750)), stat_of(b + "/d")});
       }},
      {"mkdir existing",
       [](const std::string& b) { return outcome(mkdir((b + "/d").c_str(), 0755)); }},
      {"mkdir missing parent",
       [](const std::string& b) { return outcome(mkdir((b + "/no/d").c_str(), 0755)); }},
      {"mkdir long name",
       [](const std::string& b) {
         return outcome(mkdir((b + "/" + std::string(256, 'n')).c_str(), 0755));
       }},
      {"create",
       [](const std::string& b) {
         return join({write_file(b + "/d/f", O_CREAT | O_EXCL, "hello\n"), stat_of(b + "/d/f")});
       }},
      {"create exclusive existing",
       [](const std::string& b) { return write_file(b + "/d/f", O_CREAT | O_EXCL, "x"); }},
      {"read back", [](const std::string& b) { return read_all(b + "/d/f"); }},
      {"append",
       [](const std::string& b) {
         return join({write_file(b + "/d/f", O_APPEND, "more\n"), read_all(b + "/d/f")});
       }},
      {"open missing",
       [](const std::string& b) { return outcome(open((b + "/d/none").c_str(), O_RDONLY)); }},
      {"open dir for writing",
       [](const std::string& b) { return outcome(open((b + "/d").c_str(), O_WRONLY)); }},
      {"open through a file",
       [](const std::string& b) { return outcome(open((b + "/d/f/x").c_str(), O_RDONLY)); }},
      {"pwrite past the end",
       [](const std::string& b) {
         int fd = open((b + "/d/f").c_str(), O_WRONLY | O_CLOEXEC);
         std::string r = outcome(pwrite(fd, "Z", 1, 20));
         close(fd);
         return r + stat_of(b + "/d/f");
       }},
      {"lseek end, hole read",
       [](const std::string& b) {
         int fd = open((b + "/d/f").c_str(), O_RDONLY | O_CLOEXEC);
         std::string r = outcome(lseek(fd, 0, SEEK_END));
         char buf[32] = {};
         r += outcome(pread(fd, buf, sizeof buf, 10), std::string(buf, 11));
         close(fd);
         return r;
       }},
      {"truncate shrink",
       [](const std::string& b) {
         return join({outcome(truncate((b + "/d/f").c_str(), 3)), read_all(b + "/d/f")});
       }},
      {"truncate grow",
       [](const std::string& b) {
         return join({outcome(truncate((b + "/d/f").c_str(), 4096)), stat_of(b + "/d/f")});
       }},
      {"ftruncate read-only fd",
       [](const std::string& b) {
         int fd = open((b + "/d/f").c_str(), O_RDONLY | O_CLOEXEC);
         std::string r = outcome(ftruncate(fd, 1));
         close(fd);
         return r;
       }},
      {"fallocate",
       [](const std::string& b) {
         int fd = open((b + "/d/f").c_str(), O_WRONLY | O_CLOEXEC);
         std::string r = outcome(fallocate(fd, 0, 0, 65536));
         close(fd);
         return r + stat_of(b + "/d/f");
       }},
      {"chmod",
       [](const std::string& b) {
         return join({outcome(chmod((b + "/d/f").c_str(), 0604)), stat_of(b + "/d/f")});
       }},
      {"chown",
       [](const std::string& b) {
         return join({outcome(chown((b + "/d/f").c_str(), 1, 2)), stat_of(b + "/d/f")});
       }},
      {"utimensat",
       [](const std::string& b) {
         struct timespec t[2] = {{1000, 500}, {2000, 700}};
         struct stat st;
         std::string r = outcome(utimensat(AT_FDCWD, (b + "/d/f").c_str(), t, 0));
         stat((b + "/d/f").c_str(), &st);
         return r + " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." +
                std::to_string(st.st_mtim.tv_nsec) + " atime=" + std::to_string(st.st_atim.tv_sec);
       }},
      {"utimensat omit",
       [](const std::string& b) {
         struct timespec t[2] = {{0, UTIME_OMIT}, {3000, 0}};
         struct stat st;
         std::string r = outcome(utimensat(AT_FDCWD, (b + "/d/f").c_str(), t, 0));
         stat((b + "/d/f").c_str(), &st);
         return r + " mtime=" + std::to_string(st.st_mtim.tv_sec) +
                " atime=" + std::to_string(st.st_atim.tv_sec);
       }},
      {"symlink",
       [](const std::string& b) {
         return join({outcome(symlink("f", (b + "/d/s").c_str())), lstat_of(b + "/d/s"),
                      stat_of(b + "/d/s")});
       }},
      {"readlink",
       [](const std::string& b) {
         char buf[64];
         ssize_t n = readlink((b + "/d/s").c_str(), buf, sizeof buf);
         return outcome(n, n > 0 ? std::string(buf, size_t(n)) : "");
       }},
      {"readlink of a file",
       [](const std::string& b) {
         char buf[64];
         return outcome(readlink((b + "/d/f").c_str(), buf, sizeof buf));
       }},
      {"open nofollow symlink",
       [](const std::string& b) {
         return outcome(open((b + "/d/s").c_str(), O_RDONLY | O_NOFOLLOW));
       }},
      {"dangling symlink",
       [](const std::string& b) {
         return join({outcome(symlink("nowhere", (b + "/d/dang").c_str())), stat_of(b + "/d/dang"),
                      lstat_of(b + "/d/dang")});
       }},
      {"hard link",
       [](const std::string& b) {
         return join({outcome(link((b + "/d/f").c_str(), (b + "/d/h").c_str())),
                      stat_of(b + "/d/h"), stat_of(b + "/d/f")});
       }},
      {"hard link a dir",
       [](const std::string& b) { return outcome(link((b + "/d").c_str(), (b + "/dl").c_str())); }},
      {"hard link existing",
       [](const std::string& b) {
         return outcome(link((b + "/d/f").c_str(), (b + "/d/h").c_str()));
       }},
      {"fifo",
       [](const std::string& b) {
         return join({outcome(mkfifo((b + "/d/p").c_str(), 0640)), lstat_of(b + "/d/p")});
       }},
      {"char device",
       [](const std::string& b) {
         return join({outcome(mknod((b + "/d/null").c_str(), S_IFCHR | 0600, makedev(1, 3))),
                      lstat_of(b + "/d/null")});
       }},
      {"xattr set/get",
       [](const std::string& b) {
         std::string r = outcome(setxattr((b + "/d/f").c_str(), "user.k", "v1", 2, 0));
         char buf[16];
         ssize_t n = getxattr((b + "/d/f").c_str(), "user.k", buf, sizeof buf);
         return r + outcome(n, n > 0 ? std::string(buf, size_t(n)) : "");
       }},
      {"xattr create existing",
       [](const std::string& b) {
         return outcome(setxattr((b + "/d/f").c_str(), "user.k", "v2", 2, XATTR_CREATE));
       }},
      {"xattr missing",
       [](const std::string& b) {
         char buf[16];
         return outcome(getxattr((b + "/d/f").c_str(), "user.none", buf, sizeof buf));
       }},
      {"xattr too small a buffer",
       [](const std::string& b) {
         char buf[1];
         return outcome(getxattr((b + "/d/f").c_str(), "user.k", buf, sizeof buf));
       }},
      {"xattr list",
       [](const std::string& b) {
         char buf[256];
         ssize_t n = listxattr((b + "/d/f").c_str(), buf, sizeof buf);
         return outcome(n, n > 0 ? std::string(buf, size_t(n)) : "");
       }},
      {"xattr remove",
       [](const std::string& b) {
         return join({outcome(removexattr((b + "/d/f").c_str(), "user.k")),
                      outcome(removexattr((b + "/d/f").c_str(), "user.k"))});
       }},
      {"rename file over file",
       [](const std::string& b) {
         write_file(b + "/d/g", O_CREAT, "g\n");
         return join({outcome(rename((b + "/d/g").c_str(), (b + "/d/h").c_str())),
                      read_all(b + "/d/h"), stat_of(b + "/d/f")});
       }},
      {"rename noreplace",
       [](const std::string& b) {
         return outcome(renameat2(AT_FDCWD, (b + "/d/h").c_str(), AT_FDCWD, (b + "/d/f").c_str(),
                                  RENAME_NOREPLACE));
       }},
      {"rename exchange",
       [](const std::string& b) {
         return join({outcome(renameat2(AT_FDCWD, (b + "/d/h").c_str(), AT_FDCWD,
                                        (b + "/d/f").c_str(), RENAME_EXCHANGE)),
                      read_all(b + "/d/f")});
       }},
      {"rename file over dir",
       [](const std::string& b) {
         mkdir((b + "/e").c_str(), 0755);
         return outcome(rename((b + "/d/f").c_str(), (b + "/e").c_str()));
       }},
      {"rename dir over file",
       [](const std::string& b) {
         return outcome(rename((b + "/e").c_str(), (b + "/d/f").c_str()));
       }},
      {"rename dir over nonempty dir",
       [](const std::string& b) {
         return outcome(rename((b + "/e").c_str(), (b + "/d").c_str()));
       }},
      {"rename dir into itself",
       [](const std::string& b) {
         return outcome(rename((b + "/d").c_str(), (b + "/d/sub").c_str()));
       }},
      {"rename to itself",
       [](const std::string& b) {
         return outcome(rename((b + "/d/f").c_str(), (b + "/d/f").c_str()));
       }},
      {"unlink dir", [](const std::string& b) { return outcome(unlink((b + "/d").c_str())); }},
      {"unlink missing",
       [](const std::string& b) { return outcome(unlink((b + "/d/none").c_str())); }},
      {"rmdir nonempty", [](const std::string& b) { return outcome(rmdir((b + "/d").c_str())); }},
      {"rmdir file", [](const std::string& b) { return outcome(rmdir((b + "/d/f").c_str())); }},
      {"readdir", [](const std::string& b) { return listing(b + "/d"); }},
      {"opendir file",
       [](const std::string& b) { return outcome(opendir((b + "/d/f").c_str()) ? 0 : -1); }},
      {"private file as nobody",
       [](const std::string& b) {
         write_file(b + "/private", O_CREAT, "secret");
         chmod((b + "/private").c_str(), 0600);
         return as_nobody([b] {
           return join({read_all(b + "/private"), outcome(access((b + "/private").c_str(), R_OK))});
         });
       }},
      {"create in a root dir as nobody",
       [](const std::string& b) {
         return as_nobody([b] { return write_file(b + "/d/mine", O_CREAT, "x"); });
       }},
      {"sticky dir: remove another's file as nobody",
       [](const std::string& b) {
         mkdir((b + "/t").c_str(), 01777);
         chmod((b + "/t").c_str(), 01777);
         write_file(b + "/t/roots", O_CREAT, "r");
         return as_nobody([b] { return outcome(unlink((b + "/t/roots").c_str())); });
       }},
      {"create, mkdir, mknod under umask 0",
       [](const std::string& b) {
         const mode_t saved = umask(0);
         std::string r =
             join({write_file(b + "/d/u0", O_CREAT | O_EXCL, "x"), create(b + "/d/u0620", 0620),
                   outcome(mkdir((b + "/d/m0").c_str(), 0777)),
                   outcome(mkfifo((b + "/d/p0").c_str(), 0666)), stat_of(b + "/d/u0"),
                   stat_of(b + "/d/u0620"), stat_of(b + "/d/m0"), lstat_of(b + "/d/p0")});
         umask(saved);
         return r;
       }},
      {"create and mkdir under umask 027",
       [](const std::string& b) {
         const mode_t saved = umask(027);
         std::string r =
             join({create(b + "/d/u027", 0666), outcome(mkdir((b + "/d/m027").c_str(), 0777)),
                   stat_of(b + "/d/u027"), stat_of(b + "/d/m027")});
         umask(saved);
         return r;
       }},
      {"setuid and setgid bits",
       [](const std::string& b) {
         const mode_t saved = umask(0);
         std::string r =
             join({create(b + "/d/suid", 04777), stat_of(b + "/d/suid"),
                   outcome(chmod((b + "/d/suid").c_str(), 06755)), stat_of(b + "/d/suid"),
                   outcome(mkdir((b + "/d/sgid").c_str(), 02777)), stat_of(b + "/d/sgid")});
         umask(saved);
         return r;
       }},
      {"O_DIRECT write and read",
       [](const std::string& b) {
         void* block = nullptr;
         if (posix_memalign(&block, 4096, 8192) != 0) return std::string("no memory");
         std::memset(block, 'D', 8192);
         int fd = open((b + "/d/direct").c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0644);
         std::string r = outcome(fd);
         r += outcome(pwrite(fd, block, 8192, 0));
         std::memset(block, 0, 8192);
         r += outcome(pread(fd, block, 4096, 4096),
                      std::string(static_cast<char*>(block), 4) + " " + stat_of(b + "/d/direct"));
         r += outcome(pread(fd, block, 100, 1)) + " (unaligned)";
         close(fd);
         std::free(block);
         return r;
       }},
      {"lsattr and chattr",
       [](const std::string& b) {
         int fd = open((b + "/d/direct").c_str(), O_RDONLY | O_CLOEXEC);
         int flags = 0;
         std::string r = outcome(ioctl(fd, FS_IOC_GETFLAGS, &flags), std::to_string(flags));
         int noatime = flags | FS_NOATIME_FL;
         r += outcome(ioctl(fd, FS_IOC_SETFLAGS, &noatime));
         r += outcome(ioctl(fd, FS_IOC_GETFLAGS, &flags), std::to_string(flags));
         close(fd);
         int dir = open((b + "/d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
         r += outcome(ioctl(dir, FS_IOC_GETFLAGS, &flags), std::to_string(flags));
         close(dir);
         return r;
       }},
      {"unlink and rmdir",
       [](const std::string& b) {
         return join({outcome(unlink((b + "/d/f").c_str())), outcome(unlink((b + "/d/h").c_str())),
                      listing(b + "/d")});
       }},
  };
  return all;
}

class Posix : public MountFixture {};

TEST_F(Posix, TheMountAnswersEverySyscallAsTheLowerFilesystemDoes) {
  const std::string plain = (work.path() / "plain").string();
  std::filesystem::create_directories(plain);
  ASSERT_EQ(chmod(work.path().c_str(), 0755), 0) << "the steps as nobody must reach both trees";
  std::filesystem::create_directories(root / "srv/posix");
  mount(",unknown=allow");
  const std::string through = (mnt / "srv/posix").string();
  int compared = 0;
  std::string differences;
  for (const auto& [what, step] : steps()) {
    const std::string expected = step(plain);
    const std::string got = step(through);
    ++compared;
    if (got != expected) {
      differences += std::string(what) + ":\n  lower: " + expected + "\n  mount: " + got + "\n";
    }
  }
  EXPECT_EQ(differences, "") << compared << " steps compared";
  EXPECT_GT(compared, 50);
}

// Listings of many replies (3,000 long names) are the lower's: read alone, two side by side
// (one entry of each in turn), and with entries made and removed behind the mount midway,
// where every entry left alone is listed exactly once. Watched (the kernel opens directories
// without a message, so each READDIR opens the directory and seeks its offset) and not.
TEST_F(Posix, ALongListingIsTheLowersAloneSideBySideAndWhileItChanges) {
  const auto big = root / "srv/big";
  std::filesystem::create_directories(big);
  std::vector<std::string> names;
  for (int i = 0; i < 3000; ++i) {
    names.push_back("entry-" + std::to_string(i) + "-" + std::string(48, 'x'));
    ASSERT_TRUE(write_text(big / names.back(), ""));
  }
  for (const char* options : {",unknown=allow", ",unknown=allow,watch-source=no"}) {
    SCOPED_TRACE(options);
    mount(options);
    const auto seen = mnt / "srv/big";
    EXPECT_EQ(listing(seen.string()), listing(big.string()));

    DIR* one = opendir(seen.c_str());
    DIR* two = opendir(seen.c_str());
    ASSERT_TRUE(one && two);
    std::map<std::string, int> times_one, times_two;
    for (bool more = true; more;) {
      more = false;
      for (auto [d, times] : {std::pair{one, &times_one}, std::pair{two, &times_two}}) {
        if (const dirent* e = readdir(d)) {
          ++(*times)[e->d_name];
          more = true;
        }
      }
    }
    closedir(one);
    closedir(two);
    EXPECT_EQ(times_one, times_two);
    EXPECT_EQ(times_one.size(), names.size() + 2);

    // Midway, 200 of the names are removed and 100 others made (listed or not, as the lower
    // orders them); each of the other 2,800 is listed exactly once, and no name twice.
    DIR* d = opendir(seen.c_str());
    ASSERT_TRUE(d);
    std::map<std::string, int> times;
    for (int i = 0; i < 1500; ++i) {
      if (const dirent* e = readdir(d)) ++times[e->d_name];
    }
    for (int i = 0; i < 100; ++i) {
      std::filesystem::remove(big / names[i]);
      std::filesystem::remove(big / names[2900 + i]);
      ASSERT_TRUE(write_text(big / ("new-" + std::to_string(i)), ""));
    }
    while (const dirent* e = readdir(d)) ++times[e->d_name];
    closedir(d);
    std::string wrong;
    for (int i = 100; i < 2900; ++i) {
      if (times[names[i]] != 1) wrong += names[i] + " x" + std::to_string(times[names[i]]) + "\n";
    }
    EXPECT_EQ(wrong, "");
    for (const auto& [name, n] : times) EXPECT_EQ(n, 1) << name;
    for (int i = 0; i < 100; ++i) {
      std::filesystem::rename(big / ("new-" + std::to_string(i)), big / names[i]);
      ASSERT_TRUE(write_text(big / names[2900 + i], ""));
    }
    unmount();
  }
}

}  // namespace
}  // namespace digestfs::test
