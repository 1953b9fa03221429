#include "src/ima/ima_log.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <sstream>

#include "src/base/escape.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

void put_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <size_t N>
std::array<unsigned char, N> digest_of(const EVP_MD* md, const std::string& data) {
  std::array<unsigned char, N> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  return out;
}

template <size_t N>
std::array<unsigned char, N> extend(const std::array<unsigned char, N>& pcr,
                                    const std::array<unsigned char, N>& value, const EVP_MD* md) {
  std::string both(reinterpret_cast<const char*>(pcr.data()), N);
  both.append(reinterpret_cast<const char*>(value.data()), N);
  return digest_of<N>(md, both);
}

}  // namespace

Sha1 extend_sha1(const Sha1& pcr, const Sha1& value) { return extend(pcr, value, EVP_sha1()); }
Sha256 extend_sha256(const Sha256& pcr, const Sha256& value) {
  return extend(pcr, value, EVP_sha256());
}

std::string binary_entry(unsigned pcr, const Measurement& m) {
  std::string entry;
  put_le32(entry, pcr);
  entry.append(reinterpret_cast<const char*>(m.template_sha1.data()), m.template_sha1.size());
  put_le32(entry, 6);
  entry += "ima-ng";
  const std::string data = ima_ng_template(m.algo, m.digest, m.name);
  put_le32(entry, static_cast<uint32_t>(data.size()));
  entry += data;
  return entry;
}

std::string ima_ng_template(const std::string& algo, const std::string& digest,
                            const std::string& name) {
  // d-ng: "ALGO:" NUL digest; n-ng: the name with its NUL; each behind a le32 length.
  std::string d = algo + ":";
  d.push_back('\0');
  d += digest;
  std::string n = name;
  n.push_back('\0');
  std::string out;
  put_le32(out, static_cast<uint32_t>(d.size()));
  out += d;
  put_le32(out, static_cast<uint32_t>(n.size()));
  out += n;
  return out;
}

Measurement make_measurement(std::string algo, std::string digest, std::string name) {
  Measurement m{std::move(algo), std::move(digest), std::move(name), {}, {}};
  const std::string data = ima_ng_template(m.algo, m.digest, m.name);
  m.template_sha1 = digest_of<20>(EVP_sha1(), data);
  m.template_sha256 = digest_of<32>(EVP_sha256(), data);
  return m;
}

std::string ima_event_name(std::string_view path) {
  std::string name = octal_escaped(path);
  std::replace(name.begin(), name.end(), ' ', '_');
  return name;
}

std::string ascii_line(unsigned pcr, const Measurement& m) {
  return std::to_string(pcr) + " " + to_hex(m.template_sha1.data(), m.template_sha1.size()) +
         " ima-ng " + m.algo + ":" +
         to_hex(reinterpret_cast<const unsigned char*>(m.digest.data()), m.digest.size()) + " " +
         m.name;
}

std::pair<Sha1, Sha256> replay(const std::vector<Measurement>& log) {
  Sha1 sha1{};
  Sha256 sha256{};
  for (const auto& m : log) {
    sha1 = extend_sha1(sha1, m.template_sha1);
    sha256 = extend_sha256(sha256, m.template_sha256);
  }
  return {sha1, sha256};
}

Result<std::vector<Measurement>> parse_ascii_log(const std::string& text) {
  std::vector<Measurement> out;
  std::istringstream in(text);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string pcr, hash, tmpl, digest, name;
    f >> pcr >> hash >> tmpl >> digest;
    std::getline(f, name);
    if (!name.empty() && name.front() == ' ') name.erase(0, 1);
    const auto colon = digest.find(':');
    const auto bytes = colon == std::string::npos
                           ? std::nullopt
                           : from_hex(std::string_view(digest).substr(colon + 1));
    if (tmpl != "ima-ng" || !bytes || name.empty() || hash.size() != 40) {
      return Error{EINVAL, "line " + std::to_string(number) + ": not an ima-ng measurement"};
    }
    Measurement m = make_measurement(digest.substr(0, colon), *bytes, name);
    if (to_hex(m.template_sha1.data(), m.template_sha1.size()) != hash) {
      return Error{EINVAL,
                   "line " + std::to_string(number) + ": template hash does not match its fields"};
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace digestfs
