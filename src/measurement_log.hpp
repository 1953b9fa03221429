// MeasurementLog: what this machine trusted and what it let through or refused, as IMA's
// ima-ng template (so IMA tooling can parse and replay it), written in IMA's ASCII runtime
// measurement format and its binary form. Accepted package headers come first, sorted by
// digest; then run-time events (refusals, files allowed or audited without an entry,
// rejected packages). Each distinct measurement is logged once.
//
// The state is order-independent: the SHA-256 extend chain over the sorted set of template
// hashes, so machines that trusted the same packages and saw the same events agree on it
// whatever order opens came in.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "src/result.hpp"

namespace digestfs {

using Sha1 = std::array<unsigned char, 20>;
using Sha256 = std::array<unsigned char, 32>;

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

Measurement make_measurement(std::string algo, std::string digest, std::string name);

// One ASCII line: "PCR SHA1-TEMPLATE-HASH ima-ng ALGO:HEX NAME".
std::string ascii_line(unsigned pcr, const Measurement& m);
// The PCR values (SHA-1 bank, SHA-256 bank) after extending every measurement from zero.
std::pair<Sha1, Sha256> replay(const std::vector<Measurement>& log);
// Parses an ASCII log; every line's template hash is checked against its fields.
Result<std::vector<Measurement>> parse_ascii_log(const std::string& text);

class MeasurementLog {
 public:
  // Called with each new measurement, in log order (the TPM extender's queue).
  using Sink = std::function<void(const Measurement&)>;

  MeasurementLog(unsigned pcr, std::FILE* ascii, std::FILE* binary, Sink sink);
  // Appends m unless it was logged before; thread-safe.
  void add(const Measurement& m);
  Sha256 state() const;
  size_t size() const;

 private:
  unsigned pcr_;
  std::FILE* ascii_;
  std::FILE* binary_;
  Sink sink_;
  mutable std::mutex mutex_;
  std::set<Sha256> seen_;  // sorted: the order-independent state is folded over it
};

}  // namespace digestfs
