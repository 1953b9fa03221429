// digestfs-cache: inspect the trusted digest cache that digestfs would build from the same
// options: what was accepted, what was rejected and why, and what one path is trusted as.
#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "src/command_line.hpp"
#include "src/json.hpp"
#include "src/status.hpp"
#include "src/trusted_index.hpp"

namespace digestfs {
namespace {

// Exit codes, documented in --help and the man page.
constexpr int kOk = 0;
constexpr int kNotFound = 1;  // lookup: the path is not in the index
constexpr int kUsage = 2;
constexpr int kSourceError = 3;  // trust store or a source could not be read

constexpr const char* kUsageText =
    "usage: digestfs-cache [OPTIONS] [--json] COMMAND\n"
    "commands:\n"
    "  stats          counts of packages, files, rejections and conflicts\n"
    "  list           every indexed file: path, digest, size, mode, owner, attributes, package\n"
    "  lookup PATH    what the index trusts at PATH (exit 1 when nothing)\n"
    "  rejected       packages whose header was rejected, with the reason\n"
    "  conflicts      paths claimed by several packages with different content\n"
    "  keys           the keys of the trust store\n"
    "  status MOUNTPOINT  the state of a running mount (with --json: one JSON document)\n"
    "  reload MOUNTPOINT  make a running mount rebuild its index from its sources now\n"
    "options:\n";

constexpr const char* kExitText =
    "exit status: 0 success, 1 lookup found no entry, 2 usage error, 3 trust store or\n"
    "package source unusable\n";

std::string digest_text(const FileEntry& e) {
  if (e.digest().empty()) return "-";
  return std::string(digest_algo::name(e.algo())) + ":" +
         to_hex(e.digest().data(), e.digest().size());
}

void entry_json(JsonWriter& j, const FileEntry& e) {
  j.begin_object();
  j.key("path").value(e.path());
  j.key("algo").value(e.digest().empty() ? "" : digest_algo::name(e.algo()));
  j.key("digest").value(to_hex(e.digest().data(), e.digest().size()));
  j.key("size").value(e.size());
  j.key("mode").value(static_cast<unsigned>(e.mode()));
  j.key("user").value(e.user());
  j.key("group").value(e.group());
  j.key("mtime").value(static_cast<uint64_t>(e.mtime()));
  j.key("attributes").value(attr_markers(e.attrs()));
  j.key("linkto").value(e.linkto());
  j.key("package").value(e.package().nevra);
  j.end_object();
}

void entry_line(const FileEntry& e) {
  std::printf("%s %s %llu %06o %s %s %s %s %s\n", e.path().c_str(), digest_text(e).c_str(),
              static_cast<unsigned long long>(e.size()), e.mode(), std::string(e.user()).c_str(),
              std::string(e.group()).c_str(),
              attr_markers(e.attrs()).empty() ? "-" : attr_markers(e.attrs()).c_str(),
              e.package().nevra.c_str(),
              e.linkto().empty() ? "" : ("-> " + std::string(e.linkto())).c_str());
}

int cmd_stats(const TrustedIndex& t, bool json) {
  const DigestIndex& ix = *t.index;
  auto conflicts = ix.conflicts();
  if (json) {
    JsonWriter j;
    j.begin_object()
        .key("generation")
        .value(ix.generation())
        .key("packages_accepted")
        .value(static_cast<uint64_t>(ix.packages().size()))
        .key("packages_rejected")
        .value(static_cast<uint64_t>(ix.rejected().size()))
        .key("files")
        .value(static_cast<uint64_t>(ix.file_count()))
        .key("conflicts")
        .value(static_cast<uint64_t>(conflicts.size()))
        .key("keys")
        .value(static_cast<uint64_t>(t.trust->keys().size()))
        .key("index_bytes")
        .value(static_cast<uint64_t>(ix.memory_bytes()))
        .key("load_seconds")
        .value(static_cast<uint64_t>(t.load_seconds * 1e6) / 1000)
        .end_object();
    std::puts(j.str().c_str());
    return kOk;
  }
  std::printf(
      "packages accepted: %zu\npackages rejected: %zu\nfiles indexed:     %zu\n"
      "path conflicts:    %zu\ntrusted keys:      %zu\nindex memory:      %zu bytes\n"
      "load time:         %.3f s\n",
      ix.packages().size(), ix.rejected().size(), ix.file_count(), conflicts.size(),
      t.trust->keys().size(), ix.memory_bytes(), t.load_seconds);
  return kOk;
}

int cmd_list(const TrustedIndex& t, bool json) {
  const DigestIndex& ix = *t.index;
  JsonWriter j;
  if (json) j.begin_array();
  for (size_t i = 0; i < ix.file_count(); ++i) {
    if (json)
      entry_json(j, ix.entry(i));
    else
      entry_line(ix.entry(i));
  }
  if (json) std::puts(j.end_array().str().c_str());
  return kOk;
}

int cmd_lookup(const TrustedIndex& t, const std::string& path, bool json) {
  auto entries = t.index->lookup(path);
  if (json) {
    JsonWriter j;
    j.begin_array();
    for (const auto& e : entries) entry_json(j, e);
    std::puts(j.end_array().str().c_str());
  } else {
    for (const auto& e : entries) entry_line(e);
  }
  if (entries.empty()) {
    std::fprintf(stderr, "digestfs-cache: %s: no entry in the trusted index\n", path.c_str());
    return kNotFound;
  }
  return kOk;
}

int cmd_rejected(const TrustedIndex& t, bool json) {
  JsonWriter j;
  if (json) j.begin_array();
  for (const auto& r : t.index->rejected()) {
    if (json) {
      j.begin_object()
          .key("nevra")
          .value(r.nevra)
          .key("verdict")
          .value(verdict_name(r.verdict))
          .key("origin")
          .value(r.origin)
          .key("reason")
          .value(r.reason)
          .end_object();
    } else {
      std::printf("%s %s %s: %s\n", r.nevra.c_str(), std::string(verdict_name(r.verdict)).c_str(),
                  r.origin.c_str(), r.reason.c_str());
    }
  }
  if (json) std::puts(j.end_array().str().c_str());
  return kOk;
}

int cmd_conflicts(const TrustedIndex& t, bool json) {
  JsonWriter j;
  if (json) j.begin_array();
  for (const auto& c : t.index->conflicts()) {
    if (json) {
      j.begin_object().key("path").value(c.path).key("packages").begin_array();
      for (const auto& p : c.packages) j.value(p);
      j.end_array().end_object();
    } else {
      std::string pkgs;
      for (const auto& p : c.packages) pkgs += " " + p;
      std::printf("%s%s\n", c.path.c_str(), pkgs.c_str());
    }
  }
  if (json) std::puts(j.end_array().str().c_str());
  return kOk;
}

int cmd_keys(const TrustedIndex& t, bool json) {
  JsonWriter j;
  if (json) j.begin_array();
  for (const auto& k : t.trust->keys()) {
    if (json) {
      j.begin_object()
          .key("key_id")
          .value(k.key_id)
          .key("user_id")
          .value(k.user_id)
          .key("file")
          .value(k.file.string())
          .key("subkey")
          .value(k.subkey)
          .end_object();
    } else {
      std::printf("%s %s%s (%s)\n", k.key_id.c_str(), k.subkey ? "subkey of " : "",
                  k.user_id.c_str(), k.file.c_str());
    }
  }
  if (json) std::puts(j.end_array().str().c_str());
  for (const auto& p : t.trust->problems()) {
    std::fprintf(stderr, "digestfs-cache: %s: %s\n", p.file.c_str(), p.reason.c_str());
  }
  return kOk;
}

// A running mount answers on its root's status attributes; no trust store is needed.
int cmd_status(const std::string& mountpoint, bool json) {
  const char* name = json ? kStatusXattr : kStatusTextXattr;
  ssize_t size = getxattr(mountpoint.c_str(), name, nullptr, 0);
  std::string doc(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  if (size > 0) size = getxattr(mountpoint.c_str(), name, doc.data(), doc.size());
  if (size <= 0) {
    std::fprintf(stderr, "digestfs-cache: %s: not a digestfs mount (%s)\n", mountpoint.c_str(),
                 std::strerror(errno));
    return kSourceError;
  }
  doc.resize(static_cast<size_t>(size));
  std::fputs(doc.c_str(), stdout);
  if (json) std::fputc('\n', stdout);
  return kOk;
}

int cmd_reload(const std::string& mountpoint) {
  if (setxattr(mountpoint.c_str(), kReloadXattr, "1", 1, 0) != 0) {
    std::fprintf(stderr, "digestfs-cache: %s: cannot request a reload (%s)\n", mountpoint.c_str(),
                 std::strerror(errno));
    return kSourceError;
  }
  return kOk;
}

int run(int argc, char** argv) {
  auto cl = parse_command_line(argc, argv, {"json", "help"});
  if (!cl) {
    std::fprintf(stderr, "digestfs-cache: %s\n%s%s", cl.error().message.c_str(), kUsageText,
                 options_help().c_str());
    return kUsage;
  }
  if (cl->flags.count("help")) {
    std::printf("%s%s  --json                  machine-readable output\n%s", kUsageText,
                options_help().c_str(), kExitText);
    return kOk;
  }
  const auto& args = cl->positional;
  const std::string command = args.empty() ? "" : args[0];
  const size_t want_args =
      command == "lookup" || command == "status" || command == "reload" ? 2 : 1;
  static const std::set<std::string> known = {"stats",     "list", "lookup", "rejected",
                                              "conflicts", "keys", "status", "reload"};
  if (!known.count(command) || args.size() != want_args) {
    std::fprintf(stderr, "digestfs-cache: %s\n%s",
                 command.empty()         ? "no command given"
                 : !known.count(command) ? ("unknown command '" + command + "'").c_str()
                                         : ("wrong number of arguments for " + command).c_str(),
                 kUsageText);
    return kUsage;
  }
  const bool json = cl->flags.count("json") > 0;
  if (command == "status") return cmd_status(args[1], json);
  if (command == "reload") return cmd_reload(args[1]);
  auto loaded = load_trusted_index(cl->settings);
  if (!loaded) {
    std::fprintf(stderr, "digestfs-cache: %s\n", loaded.error().message.c_str());
    return kSourceError;
  }
  if (command == "stats") return cmd_stats(*loaded, json);
  if (command == "list") return cmd_list(*loaded, json);
  if (command == "lookup") return cmd_lookup(*loaded, args[1], json);
  if (command == "rejected") return cmd_rejected(*loaded, json);
  if (command == "conflicts") return cmd_conflicts(*loaded, json);
  return cmd_keys(*loaded, json);
}

}  // namespace
}  // namespace digestfs

int main(int argc, char** argv) { return digestfs::run(argc, argv); }
