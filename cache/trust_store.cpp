#include "cache/trust_store.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "cache/rpm_library.hpp"
#include "src/base/hex.hpp"

namespace digestfs {
namespace {

constexpr std::string_view kBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
constexpr std::string_view kEnd = "-----END PGP PUBLIC KEY BLOCK-----";

// Distribution key files may hold several armored blocks (RHEL's holds two keys), and
// librpm's armor parser reads only the first block of what it is given.
std::vector<std::string> armored_blocks(const std::string& text) {
  std::vector<std::string> blocks;
  size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != std::string::npos) {
    size_t end = text.find(kEnd, pos);
    if (end == std::string::npos) {
      blocks.push_back(text.substr(pos));  // unterminated: librpm will say what is wrong
      break;
    }
    end += kEnd.size();
    blocks.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return blocks;
}

// A binary keyring (Debian's /usr/share/keyrings/*.gpg) starts with a public-key packet:
// tag 6 in the old packet format (0x98..0x9b) or the new one (0xc6).
bool looks_binary(const std::string& text) {
  if (text.empty()) return false;
  auto first = static_cast<unsigned char>(text[0]);
  return (first & 0xfc) == 0x98 || first == 0xc6;
}

TrustedKey describe(rpmPubkey key, const std::filesystem::path& file, bool subkey) {
  TrustedKey info{file, "", "", subkey};
  if (pgpDigParams params = rpmPubkeyPgpDigParams(key)) {
    info.key_id = to_hex(pgpDigParamsSignID(params), 8);
    if (const char* uid = pgpDigParamsUserID(params)) info.user_id = uid;
  }
  return info;
}

}  // namespace

TrustStore::TrustStore(std::filesystem::path dir)
    : dir_(std::move(dir)), keyring_(rpmKeyringNew()) {}

void TrustStore::add_key_file(const std::filesystem::path& file, const std::string& text) {
  auto blocks = armored_blocks(text);
  if (blocks.empty()) {
    if (looks_binary(text)) {
      add_binary_keyring(file, text);
      return;
    }
    problems_.push_back(
        {file, "no OpenPGP public key (neither ASCII-armored nor a binary keyring)"});
    return;
  }
  for (const auto& block : blocks) {
    uint8_t* raw = nullptr;
    size_t raw_len = 0;
    pgpArmor kind = pgpParsePkts(block.c_str(), &raw, &raw_len);
    rpm::Malloced<uint8_t> packets(raw);
    if (kind != PGPARMOR_PUBKEY || raw_len == 0) {
      problems_.push_back({file, "malformed OpenPGP public key block"});
      continue;
    }
    add_key(file, packets.get(), raw_len);
  }
}

void TrustStore::add_binary_keyring(const std::filesystem::path& file, const std::string& text) {
  const auto* packets = reinterpret_cast<const uint8_t*>(text.data());
  size_t left = text.size();
  while (left > 0) {
    size_t cert_len = 0;
    if (pgpPubKeyCertLen(packets, left, &cert_len) != 0 || cert_len == 0 || cert_len > left) {
      problems_.push_back({file, "malformed OpenPGP key in a binary keyring"});
      return;
    }
    add_key(file, packets, cert_len);
    packets += cert_len;
    left -= cert_len;
  }
}

void TrustStore::add_key(const std::filesystem::path& file, const uint8_t* packets, size_t len) {
  rpm::PubkeyPtr key(rpmPubkeyNew(packets, len));
  if (!key) {
    problems_.push_back({file, "librpm cannot use this public key"});
    return;
  }
  if (rpmKeyringAddKey(keyring_.get(), key.get()) < 0) {
    problems_.push_back({file, "librpm cannot add this public key to the keyring"});
    return;
  }
  keys_.push_back(describe(key.get(), file, false));
  int count = 0;
  rpmPubkey* subkeys = rpmGetSubkeys(key.get(), &count);
  for (int i = 0; i < count; ++i) {
    rpm::PubkeyPtr subkey(subkeys[i]);
    if (rpmKeyringAddKey(keyring_.get(), subkey.get()) < 0) {
      problems_.push_back({file, "librpm cannot add a subkey to the keyring"});
      continue;
    }
    keys_.push_back(describe(subkey.get(), file, true));
  }
  std::free(subkeys);
}

Result<TrustStore> TrustStore::load(const std::filesystem::path& dir) {
  rpm::ensure_initialized();
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  if (ec) return Error{ec.value(), "trust store " + dir.string() + ": " + ec.message()};
  std::sort(files.begin(), files.end());

  TrustStore store(dir);
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      store.problems_.push_back({file, "cannot read file"});
      continue;
    }
    store.add_key_file(file, text.str());
  }
  if (store.keys_.empty()) {
    std::string why = "trust store " + dir.string() + " holds no usable OpenPGP public key";
    if (!store.problems_.empty()) {
      why += " (" + store.problems_.front().file.filename().string() + ": " +
             store.problems_.front().reason + ")";
    }
    return Error{ENOKEY, why};
  }
  return store;
}

}  // namespace digestfs
