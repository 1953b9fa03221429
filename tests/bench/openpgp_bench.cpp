// Which OpenPGP verifier checks the Debian archive's InRelease files, measured on this
// machine's own lists with Debian's archive keys:
//   GPGME            digestfs's: one GnuPG home per load, then one gpg run per InRelease
//   GPGME + import   the same, with the private home made and the keys imported each time
//   gpgv             apt's own verifier on bookworm, one process per file
//   sqv              Sequoia's (apt's from trixie on): detached signatures only, so each
//                    InRelease is first split by libapt-pkg (not timed)
// librpm's OpenPGP API is not among them: it verifies a signature over bytes its caller has
// hashed, so a clearsigned text would have to be put in canonical form by hand.
// Usage: openpgp-bench KEYS_DIR INRELEASE... [--benchmark_* flags]
#include <apt-pkg/fileutl.h>
#include <apt-pkg/gpgv.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/debian/archive_signature.hpp"

namespace {

std::vector<std::filesystem::path> keys, files;
std::vector<std::pair<std::string, std::string>> split;  // content, signature

std::string keyring_flags() {
  std::string out;
  for (const auto& k : keys) out += " --keyring " + k.string();
  return out;
}

void Gpgme(benchmark::State& state) {
  auto signatures = digestfs::ArchiveSignatures::create(keys);
  if (!signatures) return state.SkipWithError(signatures.error().message.c_str());
  for (auto _ : state) {
    for (const auto& f : files) {
      if (!signatures->clearsigned(f)) return state.SkipWithError("GPGME: a signature failed");
    }
  }
}

void GpgmeWithImport(benchmark::State& state) {
  for (auto _ : state) {
    auto signatures = digestfs::ArchiveSignatures::create(keys);
    if (!signatures) return state.SkipWithError(signatures.error().message.c_str());
    for (const auto& f : files) {
      if (!signatures->clearsigned(f)) return state.SkipWithError("GPGME: a signature failed");
    }
  }
}

void Gpgv(benchmark::State& state) {
  const std::string flags = keyring_flags();
  for (auto _ : state) {
    for (const auto& f : files) {
      // gpgv exits 2 when one of several signatures has no key here (Debian signs with
      // more keys than one release's keyring holds); apt reads its status lines instead.
      const std::string command =
          "gpgv" + flags + " " + f.string() + " 2>&1 | grep -q 'Good signature'";
      if (std::system(command.c_str()) != 0) return state.SkipWithError("gpgv: no good signature");
    }
  }
}

void Sqv(benchmark::State& state) {
  const std::string flags = keyring_flags();
  for (auto _ : state) {
    for (const auto& [content, signature] : split) {
      if (std::system(
              ("sqv" + flags + " " + signature + " " + content + " >/dev/null 2>&1").c_str()) != 0)
        return state.SkipWithError("sqv: a signature failed");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: openpgp-bench KEYS_DIR INRELEASE...\n");
    return 2;
  }
  for (const auto& e : std::filesystem::directory_iterator(argv[1])) keys.push_back(e.path());
  const auto temp = std::filesystem::temp_directory_path();
  for (int i = 2; i < argc; ++i) {
    files.emplace_back(argv[i]);
    std::string content = temp / ("openpgp-bench-" + std::to_string(i) + ".content");
    std::string signature = temp / ("openpgp-bench-" + std::to_string(i) + ".sig");
    FileFd c(content, FileFd::WriteOnly | FileFd::Create | FileFd::Empty);
    FileFd s(signature, FileFd::WriteOnly | FileFd::Create | FileFd::Empty);
    if (!SplitClearSignedFile(argv[i], &c, nullptr, &s)) {
      std::fprintf(stderr, "openpgp-bench: libapt-pkg cannot split %s\n", argv[i]);
      return 1;
    }
    split.emplace_back(content, signature);
  }
  benchmark::RegisterBenchmark("GPGME", Gpgme)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("GPGME + import", GpgmeWithImport)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("gpgv", Gpgv)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("sqv", Sqv)->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  for (const auto& [content, signature] : split) {
    std::filesystem::remove(content);
    std::filesystem::remove(signature);
  }
  return 0;
}
