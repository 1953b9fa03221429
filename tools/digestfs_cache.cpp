// digestfs-cache: inspect the trusted digest cache that digestfs would build from the same
// options: what was accepted, what was rejected and why, and what one path is trusted as.
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "cache/index_report.hpp"
#include "src/base/control_xattrs.hpp"
#include "src/base/hex.hpp"
#include "src/base/json_writer.hpp"
#include "src/base/mount_table.hpp"
#include "src/config/command_line.hpp"
#include "src/config/trusted_index.hpp"
#include "src/ima/ima_log.hpp"

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
    "  state MOUNTPOINT   the order-independent measurement state of a running mount\n"
    "  replay LOG     the PCR values (SHA-1 and SHA-256 banks) an IMA ima-ng log implies\n"
    "  export --format keylime [--boot-aggregate HEX]...\n"
    "                 the trusted index as a Keylime runtime policy (JSON); boot_aggregate\n"
    "                 values to accept (without: Keylime's measured-boot values only)\n"
    "options:\n";

constexpr const char* kExitText =
    "exit status: 0 success, 1 lookup found no entry, 2 usage error, 3 trust store or\n"
    "package source unusable\n";

std::string digest_text(const FileEntry& e) { return e.digest().empty() ? "-" : e.digest().text(); }

void entry_json(JsonWriter& j, const FileEntry& e) {
  j.begin_object();
  j.key("path").value(e.path());
  j.key("algo").value(e.digest().empty() ? "" : digest_algo::name(e.algo()));
  j.key("digest").value(to_hex(e.digest().bytes));
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
      rejected_json(j, r, true);
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

// Whether a digestfs mount's root is at `mountpoint`: any other directory (one beneath a
// mount's root too, whose attributes are the lower's) may carry attributes of the same names.
bool is_digestfs_mount(const std::string& mountpoint) {
  return mounted_type(mount_path(mountpoint)) == "fuse.digestfs";
}

// A running mount answers on its root's status attributes; no trust store is needed.
// One of the attributes the mount root answers itself; nothing (errno set) on failure.
std::optional<std::string> mount_attribute(const std::string& mountpoint, const char* name) {
  ssize_t size = getxattr(mountpoint.c_str(), name, nullptr, 0);
  std::string doc(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  if (size > 0) size = getxattr(mountpoint.c_str(), name, doc.data(), doc.size());
  if (size <= 0) return std::nullopt;
  doc.resize(static_cast<size_t>(size));
  return doc;
}

int not_a_mount(const std::string& mountpoint) {
  std::fprintf(stderr,
               "digestfs-cache: %s: not a digestfs mount (no fuse.digestfs mounted there)\n",
               mountpoint.c_str());
  return kSourceError;
}

int cmd_status(const std::string& mountpoint, bool json) {
  if (!is_digestfs_mount(mountpoint)) return not_a_mount(mountpoint);
  auto doc = mount_attribute(mountpoint, json ? kStatusXattr : kStatusTextXattr);
  if (!doc) {
    std::fprintf(stderr, "digestfs-cache: %s: not a digestfs mount (%s)\n", mountpoint.c_str(),
                 std::strerror(errno));
    return kSourceError;
  }
  std::fputs(doc->c_str(), stdout);
  if (json) std::fputc('\n', stdout);
  return kOk;
}

// The order-independent state of a running mount, from its status document.
int cmd_state(const std::string& mountpoint) {
  if (!is_digestfs_mount(mountpoint)) return not_a_mount(mountpoint);
  const auto doc = mount_attribute(mountpoint, kStatusXattr).value_or("");
  const auto at = doc.find("\"state\":\"");
  if (at == std::string::npos) {
    std::fprintf(stderr,
                 "digestfs-cache: %s: no measurement state (is it a digestfs mount with "
                 "measure-log or tpm?)\n",
                 mountpoint.c_str());
    return kSourceError;
  }
  std::puts(doc.substr(at + 9, 64).c_str());
  return kOk;
}

int cmd_reload(const std::string& mountpoint) {
  if (!is_digestfs_mount(mountpoint)) return not_a_mount(mountpoint);
  if (setxattr(mountpoint.c_str(), kReloadXattr, "1", 1, 0) != 0) {
    std::fprintf(stderr, "digestfs-cache: %s: cannot request a reload (%s)\n", mountpoint.c_str(),
                 std::strerror(errno));
    return kSourceError;
  }
  return kOk;
}

// Replays an IMA-format measurement log: the PCR values it implies, per bank.
int cmd_replay(const std::string& file, bool json) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    std::fprintf(stderr, "digestfs-cache: %s: %s\n", file.c_str(), std::strerror(errno));
    return kSourceError;
  }
  auto log = parse_ascii_log(text.str());
  if (!log) {
    std::fprintf(stderr, "digestfs-cache: %s: %s\n", file.c_str(), log.error().message.c_str());
    return kSourceError;
  }
  auto [sha1, sha256] = replay(*log);
  const std::string h1 = to_hex(sha1.data(), sha1.size()),
                    h256 = to_hex(sha256.data(), sha256.size());
  if (json) {
    JsonWriter j;
    j.begin_object()
        .key("entries")
        .value(static_cast<uint64_t>(log->size()))
        .key("sha1")
        .value(h1)
        .key("sha256")
        .value(h256)
        .end_object();
    std::puts(j.str().c_str());
  } else {
    std::printf("entries: %zu\nsha1:    %s\nsha256:  %s\n", log->size(), h1.c_str(), h256.c_str());
  }
  return kOk;
}

// The trusted index as a Keylime runtime policy (the schema of keylime.ima.ima, version 1):
// each measurement name the log can carry for what was verified -> the hex digests that
// pass there. Files by path (as the log names them: ima_event_name), packages as rpm:NEVRA
// (deb:NAME_VERSION_ARCH) with the digest their entry carries, boot_aggregate with the values
// given. Refusals ("refused:REASON:PATH") and rejected packages ("rpm-rejected:...",
// "deb-rejected:...") are never listed, so they fail attestation unless the operator
// excludes them ("^refused:").
int cmd_export_keylime(const TrustedIndex& t, const std::vector<std::string>& boot_aggregates) {
  const DigestIndex& ix = *t.index;
  JsonWriter j;
  // generator 3 (LegacyAllowList) as keylime-policy writes it: below 2 the verifier treats
  // the agent as having no runtime policy at all.
  j.begin_object().key("meta").begin_object().key("version").value(1).key("generator").value(3);
  j.end_object().key("release").value(0).key("digests").begin_object();
  if (!boot_aggregates.empty()) {
    j.key("boot_aggregate").begin_array();
    for (const auto& d : boot_aggregates) j.value(d);
    j.end_array();
  }
  for (const auto& p : ix.packages()) {
    j.key(ima_event_name(measured_name(p))).begin_array().value(to_hex(measured_digest(p)));
    j.end_array();
  }
  for (size_t i = 0; i < ix.file_count();) {
    const std::string path = ix.entry(i).path();
    std::vector<std::string> digests;
    for (; i < ix.file_count() && ix.entry(i).path() == path; ++i) {
      const FileEntry e = ix.entry(i);
      // Keylime takes digests of 40 to 128 hex digits: MD5 (allow-weak-digests) has none.
      if (S_ISREG(e.mode()) && e.digest().bytes.size() >= 20) {
        digests.push_back(to_hex(e.digest().bytes));
      }
    }
    if (digests.empty()) continue;
    j.key(ima_event_name(path)).begin_array();
    for (const auto& d : digests) j.value(d);
    j.end_array();
  }
  j.end_object().key("excludes").begin_array().end_array().key("keyrings").begin_object();
  j.end_object().key("ima").begin_object().key("ignored_keyrings").begin_array().end_array();
  j.key("log_hash_alg").value("sha1").key("dm_policy").null().end_object();
  j.key("ima-buf").begin_object().end_object().key("verification-keys").value("").end_object();
  std::puts(j.str().c_str());
  return kOk;
}

int run(int argc, char** argv) {
  // export's --format and --boot-aggregate are the tool's own; the rest goes to the registry.
  std::string format;
  std::vector<std::string> boot_aggregates;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--format" && i + 1 < argc) {
      format = argv[++i];
    } else if (arg.starts_with("--format=")) {
      format = arg.substr(9);
    } else if ((arg == "--boot-aggregate" && i + 1 < argc) ||
               arg.starts_with("--boot-aggregate=")) {
      std::string hex = arg == "--boot-aggregate" ? argv[++i] : arg.substr(17);
      std::transform(hex.begin(), hex.end(), hex.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto bytes = from_hex(hex);
      if (!bytes || bytes->size() < 20 || bytes->size() > 64) {
        std::fprintf(stderr, "digestfs-cache: --boot-aggregate %s: not a hex digest\n",
                     hex.c_str());
        return kUsage;
      }
      boot_aggregates.push_back(hex);
    } else {
      rest.push_back(argv[i]);
    }
  }
  auto cl = parse_command_line(static_cast<int>(rest.size()), rest.data(), {"json", "help"});
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
  const size_t want_args = command == "lookup" || command == "status" || command == "reload" ||
                                   command == "replay" || command == "state"
                               ? 2
                               : 1;
  static const std::set<std::string> known = {"stats",     "list",  "lookup", "rejected",
                                              "conflicts", "keys",  "status", "reload",
                                              "replay",    "state", "export"};
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
  if (command == "replay") return cmd_replay(args[1], json);
  if (command == "state") return cmd_state(args[1]);
  if (command == "export" && format != "keylime") {
    std::fprintf(stderr, "digestfs-cache: export needs --format keylime\n");
    return kUsage;
  }
  auto loaded = load_trusted_index(cl->settings);
  if (!loaded) {
    std::fprintf(stderr, "digestfs-cache: %s\n", loaded.error().message.c_str());
    return kSourceError;
  }
  if (command == "export") return cmd_export_keylime(*loaded, boot_aggregates);
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
