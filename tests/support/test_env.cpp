#include "tests/support/test_env.hpp"

#include <openssl/evp.h>

#include <cstdlib>

#include "tests/support/files.hpp"

namespace digestfs::test {

std::filesystem::path source_root() { return DIGESTFS_SOURCE_ROOT; }

std::filesystem::path shared_rpm_data() {
  return std::filesystem::weakly_canonical(source_root() / ".." / "shared" / "data" / "rpm");
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

int run_shell(const std::string& command) {
  int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

CommandOutput run_captured(const std::string& command) {
  TempDir dir;
  const auto out = dir.path() / "out", err = dir.path() / "err";
  const int status = run_shell(command + " >" + out.string() + " 2>" + err.string());
  return {status, slurp(out), slurp(err)};
}

namespace {

// Runs a fixture script into a fresh directory once per process, removed at exit: the
// fixtures are rebuilt by every test process.
class BuiltOnce {
 public:
  explicit BuiltOnce(const char* script) {
    char tmpl[] = "/tmp/digestfs-fixtures-XXXXXX";
    if (!mkdtemp(tmpl)) return;
    std::filesystem::path out = tmpl;
    std::string cmd = (source_root() / script).string() + " " + out.string() + " >&2";
    if (run_shell(cmd) == 0)
      dir_ = out;
    else {
      std::error_code ec;
      std::filesystem::remove_all(out, ec);
    }
  }
  ~BuiltOnce() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace

const std::filesystem::path& built_fixtures() {
  static BuiltOnce built("tests/fixtures/make-fixtures");
  return built.dir();
}

const std::filesystem::path& built_debian_fixtures() {
  static BuiltOnce built("tests/fixtures/make-debian-archive");
  return built.dir();
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/digestfs-test-XXXXXX";
  if (mkdtemp(tmpl)) path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

}  // namespace digestfs::test
