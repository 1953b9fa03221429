// Workloads for the mount benchmark, each printing one number so the driver can take
// medians across runs and variants (native, fuse-overlayfs, digestfs with and without
// verification).
//   mount-bench open-read LISTFILE PASSES   -> microseconds per open+read 4 KiB+close
//   mount-bench first-open LISTFILE          -> MB/s of open+read 1 byte+close over the files
//   mount-bench read-seq FILE                -> MB/s of a sequential read with 1 MiB reads
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> read_list(const char* file) {
  std::vector<std::string> paths;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) paths.push_back(line);
  }
  return paths;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int fail(const std::string& what) {
  std::perror(what.c_str());
  return 1;
}

int open_read(const std::vector<std::string>& paths, int passes) {
  char buf[4096];
  auto start = Clock::now();
  for (int p = 0; p < passes; ++p) {
    for (const auto& path : paths) {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return fail(path);
      if (read(fd, buf, sizeof buf) < 0) return fail(path);
      close(fd);
    }
  }
  std::printf("%.3f\n", seconds_since(start) * 1e6 / (static_cast<double>(paths.size()) * passes));
  return 0;
}

int first_open(const std::vector<std::string>& paths) {
  uint64_t bytes = 0;
  char c;
  auto start = Clock::now();
  for (const auto& path : paths) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(path);
    struct stat st;
    fstat(fd, &st);
    bytes += static_cast<uint64_t>(st.st_size);
    if (read(fd, &c, 1) < 0) return fail(path);
    close(fd);
  }
  std::printf("%.1f\n", static_cast<double>(bytes) / 1e6 / seconds_since(start));
  return 0;
}

int read_seq(const char* path) {
  std::vector<char> buf(1 << 20);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path);
  uint64_t bytes = 0;
  auto start = Clock::now();
  for (ssize_t n; (n = read(fd, buf.data(), buf.size())) > 0;) bytes += static_cast<uint64_t>(n);
  close(fd);
  std::printf("%.1f\n", static_cast<double>(bytes) / 1e6 / seconds_since(start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "open-read" && argc == 4) return open_read(read_list(argv[2]), std::stoi(argv[3]));
  if (cmd == "first-open" && argc == 3) return first_open(read_list(argv[2]));
  if (cmd == "read-seq" && argc == 3) return read_seq(argv[2]);
  std::fprintf(stderr,
               "usage: mount-bench open-read LIST PASSES | first-open LIST | read-seq FILE\n");
  return 2;
}
