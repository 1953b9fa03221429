#include "cache/debian/archive_indices.hpp"

#include <algorithm>
#include <sstream>
#include <system_error>

#include "cache/debian/apt_text.hpp"
#include "cache/file_hasher.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

// A Release file's claim on one index: "main/binary-amd64/Packages" -> its hash and size.
struct ListedIndex {
  std::string sha256;
  uint64_t size = 0;
};

struct Release {
  std::filesystem::path file;
  std::string prefix;  // the lists file name up to the Release's own name
  SignedText signed_text;
};

// Release files of the lists directory: InRelease where there is one, else Release with its
// Release.gpg. A Release without any signature is reported, never read.
std::vector<std::pair<std::string, std::filesystem::path>> release_files(
    const std::filesystem::path& lists, std::vector<ListProblem>& problems, std::error_code& ec) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(lists, ec))
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  auto has = [&](const std::string& n) {
    return std::binary_search(names.begin(), names.end(), n);
  };
  std::vector<std::pair<std::string, std::filesystem::path>> out;
  for (const auto& name : names) {
    auto ends = [&](std::string_view tail) {
      return name.size() > tail.size() && name.ends_with(tail);
    };
    if (ends("_InRelease")) {
      out.emplace_back(name.substr(0, name.size() - 9), lists / name);
    } else if (ends("_Release")) {
      std::string prefix = name.substr(0, name.size() - 7);
      if (has(prefix + "InRelease")) continue;
      if (!has(name + ".gpg")) {
        problems.push_back({lists / name, HeaderVerdict::Unsigned,
                            "Release file without a signature (no InRelease, "
                            "no Release.gpg): nothing of it is trusted"});
        continue;
      }
      out.emplace_back(prefix, lists / name);
    }
  }
  return out;
}

// The SHA256 field of a Release: "hash size path" per line.
std::map<std::string, ListedIndex> listed_indices(const pkgTagSection& release) {
  std::map<std::string, ListedIndex> out;
  std::istringstream lines(release.FindS("SHA256"));
  std::string hash, path;
  uint64_t size = 0;
  while (lines >> hash >> size >> path) {
    std::transform(hash.begin(), hash.end(), hash.begin(), ::tolower);
    out[path] = {hash, size};
  }
  return out;
}

// The lists file apt stored for `path` of the Release, possibly compressed.
std::optional<std::filesystem::path> stored_index(const std::filesystem::path& lists,
                                                  const std::string& prefix,
                                                  const std::string& path) {
  std::string name = path;
  std::replace(name.begin(), name.end(), '/', '_');
  for (const char* ext : {"", ".lz4", ".gz", ".xz", ".zst", ".bz2", ".lzma"}) {
    auto candidate = lists / (prefix + name + ext);
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

void read_index(const std::filesystem::path& file, const ListedIndex& listed,
                const std::string& signer, ArchiveIndices& out) {
  auto text = read_apt_file(file.string(), listed.size);
  if (!text) {
    out.problems.push_back({file, HeaderVerdict::Malformed, text.error().message});
    return;
  }
  auto hash = sha256_of(text->data(), text->size());
  std::string actual = hash ? to_hex(*hash) : "(none)";
  if (actual != listed.sha256 || text->size() != listed.size) {
    out.problems.push_back({file, HeaderVerdict::Corrupted,
                            "index does not match its signed Release: SHA-256 " + actual +
                                ", size " + std::to_string(text->size()) + "; the Release lists " +
                                listed.sha256 + ", size " + std::to_string(listed.size) +
                                ". Nothing of it is trusted"});
    return;
  }
  auto parsed = for_each_stanza(*text, file.string(), [&](const pkgTagSection& s) {
    std::string sha = s.FindS("SHA256");
    std::string package = s.FindS("Package");
    if (sha.empty() || package.empty()) return;
    std::transform(sha.begin(), sha.end(), sha.begin(), ::tolower);
    out.stanzas[stanza_key(package, s.FindS("Version"), s.FindS("Architecture"))].push_back(
        {sha, s.FindULL("Size"), s.FindS("Filename"), signer});
  });
  if (!parsed) {
    out.problems.push_back({file, HeaderVerdict::Malformed, parsed.error().message});
    return;
  }
  out.verified_indices.push_back(file);
}

}  // namespace

std::string stanza_key(std::string_view package, std::string_view version,
                       std::string_view architecture) {
  std::string key(package);
  key += ' ';
  key += version;
  key += ' ';
  key += architecture;
  return key;
}

Result<ArchiveIndices> read_archive_indices(const std::filesystem::path& lists,
                                            const ArchiveSignatures& signatures) {
  ArchiveIndices out;
  std::error_code ec;
  auto releases = release_files(lists, out.problems, ec);
  if (ec) return Error{ec.value(), "apt lists " + lists.string() + ": " + ec.message()};
  for (const auto& [prefix, file] : releases) {
    bool inline_signed = file.filename().string().ends_with("InRelease");
    auto checked = inline_signed ? signatures.clearsigned(file)
                                 : signatures.detached(file, file.string() + ".gpg");
    if (!checked) {
      out.problems.push_back({file,
                              checked.error().code == EKEYREJECTED ? HeaderVerdict::UntrustedKey
                                                                   : HeaderVerdict::BadSignature,
                              checked.error().message + ". Nothing it lists is trusted"});
      continue;
    }
    std::map<std::string, ListedIndex> listed;
    auto parsed = for_each_stanza(checked->text, file.string(), [&](const pkgTagSection& s) {
      if (listed.empty()) listed = listed_indices(s);
    });
    if (!parsed) {
      out.problems.push_back({file, HeaderVerdict::Malformed, parsed.error().message});
      continue;
    }
    for (const auto& [path, entry] : listed) {
      if (!path.ends_with("/Packages") && path != "Packages") continue;
      if (auto stored = stored_index(lists, prefix, path))
        read_index(*stored, entry, checked->signer, out);
    }
  }
  return out;
}

}  // namespace digestfs
