// IMA's ima-ng template and its measurement list formats: the ASCII runtime measurement
// lines and the binary_runtime_measurements entries, parsing and replaying them. What the
// mount writes and what digestfs-cache reads; nothing here knows where a log lives.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/base/digest.hpp"
#include "src/base/result.hpp"

namespace digestfs {

// The ima-ng template data for a file digest (algorithm name, binary digest) and a name.
std::string ima_ng_template(const std::string& algo, const std::string& digest,
                            const std::string& name);

struct Measurement {
  std::string algo;    // of the measured digest: "sha256"
  std::string digest;  // binary
  std::string name;    // path, or "rpm:NEVRA"
  Sha1 template_sha1{};
  Sha256 template_sha256{};
};

// name: already in the form the log carries (ima_event_name of a path).
Measurement make_measurement(std::string algo, std::string digest, std::string name);

// A path as a measurement's name: the kernel's rule (a space becomes '_', so that the ASCII
// list splits into its fields), and ours on top of it, where the kernel writes bytes raw:
// control bytes, DEL and '\' as octal escapes (octal_escaped), so that no name can add,
// split or forge a line. The template, and so the PCR, covers the name in this form.
std::string ima_event_name(std::string_view path);

// One ASCII line: "PCR SHA1-TEMPLATE-HASH ima-ng ALGO:HEX NAME".
std::string ascii_line(unsigned pcr, const Measurement& m);
// The PCR values (SHA-1 bank, SHA-256 bank) after extending every measurement from zero.
std::pair<Sha1, Sha256> replay(const std::vector<Measurement>& log);
// Parses an ASCII log; every line's template hash is checked against its fields.
Result<std::vector<Measurement>> parse_ascii_log(const std::string& text);

// A PCR extend as the TPM does it: the hash of the old value and the new one, concatenated.
Sha1 extend_sha1(const Sha1& pcr, const Sha1& value);
Sha256 extend_sha256(const Sha256& pcr, const Sha256& value);

// One entry of IMA's binary_runtime_measurements: pcr, SHA-1 template hash, template name,
// template data, each length-prefixed as the kernel writes them.
std::string binary_entry(unsigned pcr, const Measurement& m);

}  // namespace digestfs
