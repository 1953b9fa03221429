#include "src/config/settings.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

namespace digestfs {
namespace {

Result<void> need_absolute(std::string_view name, std::string_view value) {
  if (value.empty() || value.front() != '/') {
    return Error{EINVAL,
                 std::string(name) + ": '" + std::string(value) + "' is not an absolute path"};
  }
  return {};
}

std::vector<std::string> one(std::string_view v) { return {std::string(v)}; }

// A path that is unset by default is not printed until it is set.
std::vector<std::string> one_path(const std::filesystem::path& p) {
  return p.empty() ? std::vector<std::string>{} : one(p.string());
}

// A flag: given alone (or as yes|true|1) it is on; as no|false|0 it is off.
Result<bool> parse_flag(std::string_view name, std::string_view v) {
  if (v.empty() || v == "yes" || v == "true" || v == "1") return true;
  if (v == "no" || v == "false" || v == "0") return false;
  return Error{EINVAL, std::string(name) + ": '" + std::string(v) + "' is not yes or no"};
}

OptionSpec flag_option(std::string_view name, std::string_view help,
                       std::function<bool(const Settings&)> get,
                       std::function<void(Settings&, bool)> put) {
  return {name, "", help,
          [name, put](Settings& s, std::string_view v) -> Result<void> {
            auto on = parse_flag(name, v);
            if (!on) return on.error();
            put(s, *on);
            return {};
          },
          [get](const Settings& s) { return one(get(s) ? "yes" : "no"); }};
}

Result<unsigned> parse_number(std::string_view name, std::string_view value, unsigned min,
                              unsigned max) {
  unsigned n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < min || n > max) {
    return Error{EINVAL, std::string(name) + ": '" + std::string(value) +
                             "' is not a number from " + std::to_string(min) + " to " +
                             std::to_string(max)};
  }
  return n;
}

Result<unsigned> parse_count(std::string_view name, std::string_view value) {
  return parse_number(name, value, 0, 1024);
}

// An option that sets one of the policy's enumerations by name.
template <class E>
OptionSpec policy_option(std::string_view name, std::string_view values, std::string_view help,
                         Result<E> (*parse)(std::string_view), E Policy::*field) {
  return {name, values, help,
          [parse, field](Settings& s, std::string_view v) -> Result<void> {
            auto parsed = parse(v);
            if (!parsed) return parsed.error();
            s.policy.*field = *parsed;
            return {};
          },
          [field](const Settings& s) { return one(to_string(s.policy.*field)); }};
}

// An absolute path of the Debian source's options; printed only once it is set.
OptionSpec debian_path_option(std::string_view name, std::string_view value_name,
                              std::string_view help,
                              std::filesystem::path DebianSourceOptions::*field) {
  return {name, value_name, help,
          [name, field](Settings& s, std::string_view v) -> Result<void> {
            if (auto ok = need_absolute(name, v); !ok) return ok;
            s.sources.debian.*field = v;
            return {};
          },
          [field](const Settings& s) { return one_path(s.sources.debian.*field); }};
}

// Where trust comes from: the keys, the database and package sources, how they are read.
void add_source_options(std::vector<OptionSpec>& r) {
  r.push_back({"keys", "DIR",
               "directory of OpenPGP public keys to trust, armored or binary keyrings (default "
               "/etc/digestfs/keys.d); nothing else is trusted",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (v.empty()) return Error{EINVAL, "keys: needs a directory"};
                 s.keys = v;
                 return {};
               },
               [](const Settings& s) { return one(s.keys.string()); }});
  r.push_back({"root", "DIR", "root whose rpm database describes the tree (default /)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("root", v); !ok) return ok;
                 s.sources.root = v;
                 s.database_named = true;
                 return {};
               },
               [](const Settings& s) { return one(s.sources.root.string()); }});
  r.push_back({"dbpath", "PATH",
               "rpm database directory, relative to the root (default /var/lib/rpm)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("dbpath", v); !ok) return ok;
                 s.sources.dbpath = v;
                 s.database_named = true;
                 s.dbpath_named = true;
                 return {};
               },
               [](const Settings& s) { return one(s.sources.dbpath.string()); }});
  r.push_back({"packages", "DIR",
               "directory of .rpm files (or one .rpm file) whose headers are trusted when "
               "signed; may be repeated. Given alone, the rpm database is not read",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (v.empty()) return Error{EINVAL, "packages: needs a directory or file"};
                 s.sources.packages.emplace_back(v);
                 return {};
               },
               [](const Settings& s) {
                 std::vector<std::string> out;
                 for (const auto& p : s.sources.packages) out.push_back(p.string());
                 return out;
               }});
  r.push_back(debian_path_option(
      "apt-lists", "DIR",
      "apt's lists directory (/var/lib/apt/lists): trust the installed .debs its signed Release "
      "files vouch for (the Debian source). Given without dbpath, the rpm database is not read",
      &DebianSourceOptions::lists));
  r.push_back({"debs", "DIR",
               "directory of .deb files for the Debian source; may be repeated (default: the "
               "root's /var/cache/apt/archives)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("debs", v); !ok) return ok;
                 s.sources.debian.debs.emplace_back(v);
                 return {};
               },
               [](const Settings& s) {
                 std::vector<std::string> out;
                 for (const auto& p : s.sources.debian.debs) out.push_back(p.string());
                 return out;
               }});
  r.push_back(
      debian_path_option("dpkg-status", "FILE",
                         "dpkg's status file: which packages are installed (default: the root's "
                         "/var/lib/dpkg/status)",
                         &DebianSourceOptions::status));
  r.push_back(debian_path_option(
      "deb-cache", "FILE",
      "sealed cache of the file lists read from .debs, so a later load reads no .deb (sealed "
      "with deb-cache-key)",
      &DebianSourceOptions::cache));
  r.push_back(debian_path_option(
      "deb-cache-key", "FILE",
      "key that seals the .deb cache, readable by root only; made when missing (default "
      "/etc/digestfs/deb-cache.key)",
      &DebianSourceOptions::cache_key));
  r.push_back(flag_option(
      "allow-weak-digests",
      "also trust packages whose file digests are MD5 or SHA-1 (logged loudly)",
      [](const Settings& s) { return s.sources.allow_weak_digests; },
      [](Settings& s, bool on) { s.sources.allow_weak_digests = on; }));
  r.push_back({"jobs", "N", "threads for loading and scanning (default 0: every core)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 auto n = parse_count("jobs", v);
                 if (!n) return n.error();
                 s.sources.jobs = *n;
                 return {};
               },
               [](const Settings& s) { return one(std::to_string(s.sources.jobs)); }});
}

// What the mount does with what does not verify, or has no entry.
void add_policy_options(std::vector<OptionSpec>& r) {
  r.push_back(policy_option("mode", "enforce|audit|permissive",
                            "enforce refuses what does not verify; audit logs and allows; "
                            "permissive allows",
                            parse_mode, &Policy::mode));
  r.push_back(policy_option("unknown", "deny|audit|allow",
                            "files no accepted package claims (default deny)", parse_unknown,
                            &Policy::unknown));
  for (const auto& exception : {std::pair{"unknown-allow", UnknownPolicy::Allow},
                                std::pair{"unknown-audit", UnknownPolicy::Audit},
                                std::pair{"unknown-deny", UnknownPolicy::Deny}}) {
    // Named copies: lambdas cannot capture structured bindings before clang 16.
    const char* name = exception.first;
    const UnknownPolicy policy = exception.second;
    r.push_back({name, "GLOB",
                 "exception to unknown= for index paths matching GLOB; may be repeated, the "
                 "first matching one applies",
                 [policy](Settings& s, std::string_view v) -> Result<void> {
                   if (v.empty() || v.front() != '/') {
                     return Error{EINVAL, "unknown exceptions: '" + std::string(v) +
                                              "' is not an absolute path glob"};
                   }
                   s.policy.unknown_exceptions.push_back({std::string(v), policy});
                   return {};
                 },
                 [policy](const Settings& s) {
                   std::vector<std::string> out;
                   for (const auto& e : s.policy.unknown_exceptions) {
                     if (e.policy == policy) out.push_back(e.glob);
                   }
                   return out;
                 }});
  }
  r.push_back(policy_option("config", "verify|audit|skip",
                            "%config files (default audit: log changes, allow)", parse_config,
                            &Policy::config));
}

// How the mount maps its tree onto the index, and what it does after mounting.
void add_mount_options(std::vector<OptionSpec>& r) {
  r.push_back({"prefix", "PATH",
               "the absolute path the mounted source stands for in the index (default: the "
               "source's own path)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("prefix", v); !ok) return ok;
                 s.prefix = v;
                 return {};
               },
               [](const Settings& s) {
                 return s.prefix.empty() ? std::vector<std::string>{} : one(s.prefix);
               }});
  r.push_back(flag_option(
      "prime",
      "verify every indexed file in the background right after mounting "
      "(idle I/O priority), so later opens are answered from memory",
      [](const Settings& s) { return s.prime; }, [](Settings& s, bool on) { s.prime = on; }));
  r.push_back(flag_option(
      "watch-source",
      "watch the source's filesystem with fanotify and tell the kernel of every change made "
      "beneath the mount, so that it may cache names and attributes until then (default yes; "
      "no, or where fanotify cannot be had: cached for 1 s)",
      [](const Settings& s) { return s.watch_source; },
      [](Settings& s, bool on) { s.watch_source = on; }));
  r.push_back(flag_option(
      "file-handles",
      "keep the files the kernel knows as file handles (connectable ones, Linux 6.13) instead "
      "of an open fd each, so that a tree of any size is served under the open-file limit "
      "(default yes; no, or where the kernel or filesystem has none: an fd each, and past three "
      "quarters of the limit the kernel is asked to drop cached entries)",
      [](const Settings& s) { return s.file_handles; },
      [](Settings& s, bool on) { s.file_handles = on; }));
  r.push_back(flag_option(
      "block-checks",
      "check every block read from a verified file against the Merkle tree (fs-verity's) built "
      "when it was verified, so that bytes changed beneath it are refused as they are read "
      "(default yes)",
      [](const Settings& s) { return s.block_checks.on; },
      [](Settings& s, bool on) { s.block_checks.on = on; }));
  r.push_back(
      {"block-check-memory", "MIB",
       "memory the block trees may take (48 bytes per 4 KiB of verified file; default "
       "256): past it, the trees used least recently are dropped and their files are "
       "hashed again at their next open",
       [](Settings& s, std::string_view v) -> Result<void> {
         auto n = parse_number("block-check-memory", v, 1, 1 << 20);
         if (!n) return n.error();
         s.block_checks.memory_bytes = size_t{*n} << 20;
         return {};
       },
       [](const Settings& s) { return one(std::to_string(s.block_checks.memory_bytes >> 20)); }});
  r.push_back({"reload-wait", "MS",
               "how long an open that would be refused waits when the package sources changed "
               "since the index in force was read (a package installed a moment ago), for the "
               "reload that follows (default 5000; 0 never waits); past it, the refusal stands",
               [](Settings& s, std::string_view v) -> Result<void> {
                 auto n = parse_number("reload-wait", v, 0, 600000);
                 if (!n) return n.error();
                 s.reload_wait_ms = *n;
                 return {};
               },
               [](const Settings& s) { return one(std::to_string(s.reload_wait_ms)); }});
  r.push_back(
      {"keep-open", "COUNT",
       "how many verified files stay open after their last close, so that reopening "
       "one costs an fstat, not an open and a judgement (default auto: a quarter of "
       "the open-file limit, at most one per 64 KiB of memory; 0 keeps none)",
       [](Settings& s, std::string_view v) -> Result<void> {
         if (v == "auto") {
           s.keep_open.reset();
           return {};
         }
         auto n = parse_number("keep-open", v, 0, 1 << 24);
         if (!n) return n.error();
         s.keep_open = *n;
         return {};
       },
       [](const Settings& s) { return one(s.keep_open ? std::to_string(*s.keep_open) : "auto"); }});
  r.push_back({"read-ahead", "KIB",
               "how far the kernel reads ahead of a sequential reader of the mount (default "
               "4096; 0 leaves the kernel's 128): more requests in flight, each hashed on its own "
               "core",
               [](Settings& s, std::string_view v) -> Result<void> {
                 auto n = parse_number("read-ahead", v, 0, 1 << 20);
                 if (!n) return n.error();
                 s.read_ahead_kib = *n;
                 return {};
               },
               [](const Settings& s) { return one(std::to_string(s.read_ahead_kib)); }});
  r.push_back(flag_option(
      "noverify", "serve every file without checking it (benchmarks only)",
      [](const Settings& s) { return !s.verify; }, [](Settings& s, bool on) { s.verify = !on; }));
}

// The measurement log and the TPM.
void add_measurement_options(std::vector<OptionSpec>& r) {
  r.push_back({"measure-log", "FILE",
               "write an IMA ima-ng measurement log here (ASCII; FILE.bin the binary form): "
               "accepted package headers sorted by digest, then refusals, unknown files served "
               "and rejected packages",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("measure-log", v); !ok) return ok;
                 s.measure_log = v;
                 return {};
               },
               [](const Settings& s) {
                 return s.measure_log.empty() ? std::vector<std::string>{}
                                              : one(s.measure_log.string());
               }});
  r.push_back(
      {"tpm", "TCTI",
       "extend every measurement into a TPM PCR through this tpm2-tss TCTI (for "
       "example device:/dev/tpmrm0 or swtpm:port=2321), in a background queue; it also seals "
       "the deb-cache key",
       [](Settings& s, std::string_view v) -> Result<void> {
         if (v.empty()) return Error{EINVAL, "tpm: needs a TCTI configuration"};
         s.tpm = v;
         return {};
       },
       [](const Settings& s) { return s.tpm.empty() ? std::vector<std::string>{} : one(s.tpm); }});
  r.push_back({"pcr", "N",
               "the PCR measurements are extended into (default 11; 10, which Keylime checks, "
               "only while the kernel's IMA measures nothing into it)",
               [](Settings& s, std::string_view v) -> Result<void> {
                 auto n = parse_count("pcr", v);
                 if (!n) return n.error();
                 if (*n > 23) {
                   return Error{EINVAL, "pcr: " + std::to_string(*n) + " is not a PCR (0-23)"};
                 }
                 s.pcr = *n;
                 return {};
               },
               [](const Settings& s) { return one(std::to_string(s.pcr)); }});
}

std::vector<OptionSpec> make_registry() {
  std::vector<OptionSpec> r;
  add_source_options(r);
  const size_t sources = r.size();
  add_policy_options(r);
  add_mount_options(r);
  add_measurement_options(r);
  for (size_t i = sources; i < r.size(); ++i) r[i].scope = OptionScope::MountOnly;
  r.push_back({"config-file", "FILE",
               "configuration file of name = value lines with these same options (default "
               "/etc/digestfs/digestfs.conf, when it exists); the command line wins over it",
               [](Settings& s, std::string_view v) -> Result<void> {
                 if (auto ok = need_absolute("config-file", v); !ok) return ok;
                 s.config_file = v;
                 return {};
               },
               [](const Settings&) { return std::vector<std::string>{}; }});
  return r;
}

}  // namespace

const std::vector<OptionSpec>& option_registry() {
  static const std::vector<OptionSpec> registry = make_registry();
  return registry;
}

const OptionSpec* find_option(std::string_view name) {
  for (const auto& spec : option_registry()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

Result<void> apply_option(Settings& settings, std::string_view name,
                          std::optional<std::string_view> value) {
  const OptionSpec* spec = find_option(name);
  if (!spec) return Error{EINVAL, "unknown option '" + std::string(name) + "'"};
  if (!spec->value_name.empty() && !value) {
    return Error{EINVAL, "option '" + std::string(name) + "' needs a value (" +
                             std::string(spec->value_name) + ")"};
  }
  return spec->set(settings, value.value_or(""));
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// `name = value` or `name` lines; '#' starts a comment line. Errors name the file and line.
Result<void> apply_config_file(Settings& settings, const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return errno_error("configuration file " + file.string());
  return apply_config_text(settings, text.str(), file.string());
}

}  // namespace

Result<void> apply_config_text(Settings& settings, std::string_view text,
                               const std::string& origin) {
  int number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.empty() || line.front() == '#') continue;
    std::string_view name = line;
    std::optional<std::string_view> value;
    if (auto eq = line.find('='); eq != std::string_view::npos) {
      name = trim(line.substr(0, eq));
      value = trim(line.substr(eq + 1));
    }
    Result<void> ok =
        name == "config-file"
            ? Result<void>(Error{EINVAL, "config-file cannot be set in a configuration file"})
            : apply_option(settings, name, value);
    if (!ok) {
      return Error{ok.error().code,
                   origin + ":" + std::to_string(number) + ": " + ok.error().message};
    }
  }
  return {};
}

Result<Settings> settle(const GivenOptions& given) {
  Settings settings;
  std::optional<std::filesystem::path> config;
  for (const auto& [name, value] : given) {
    if (name == "config-file") {
      if (auto ok = apply_option(settings, name, value); !ok) return ok.error();
      config = settings.config_file;
    }
  }
  if (!config && std::filesystem::exists(kDefaultConfigFile)) config = kDefaultConfigFile;
  if (config) {
    if (auto ok = apply_config_file(settings, *config); !ok) return ok.error();
    settings.config_file = *config;
  }
  for (const auto& [name, value] : given) {
    if (name == "config-file") continue;
    if (auto ok = apply_option(settings, name, value); !ok) return ok.error();
  }
  // One TPM for the mount's measurements and for sealing the Debian source's cache key.
  settings.sources.debian.tpm = settings.tpm;
  // The Debian source reads the root too (dpkg's status, its apt cache): there, only a named
  // dbpath asks for the rpm database as well.
  settings.sources.read_rpmdb = settings.sources.debian.enabled()
                                    ? settings.dbpath_named
                                    : settings.database_named || settings.sources.packages.empty();
  return settings;
}

std::string print_config(const Settings& settings) {
  std::string out;
  if (!settings.config_file.empty()) out += "# read from " + settings.config_file.string() + "\n";
  for (const auto& spec : option_registry()) {
    for (const auto& v : spec.show(settings)) out += std::string(spec.name) + " = " + v + "\n";
  }
  return out;
}

}  // namespace digestfs
