#include "cache/debian/sealed_deb_cache.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "cache/tpm_sealed_secret.hpp"
#include "src/base/file_text.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {
namespace {

constexpr std::string_view kMagic = "digestfs-deb-cache 1\n";
constexpr size_t kSealSize = 32;

std::string seal_of(const std::string& key, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

void put_int(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_text(std::string& out, const std::string& s) {
  put_int(out, s.size(), 4);
  out += s;
}

// Reads what put_int and put_text wrote; any read past the end marks the body bad.
struct Reader {
  std::string_view in;
  bool bad = false;
  uint64_t num(int bytes) {
    if (in.size() < static_cast<size_t>(bytes)) {
      bad = true;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(bytes);
    return v;
  }
  std::string text() {
    uint64_t n = num(4);
    if (bad || in.size() < n) {
      bad = true;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

Result<std::string> key_of(const std::filesystem::path& key_file, const std::string& tpm) {
  if (!tpm.empty()) return tpm_sealed_secret(tpm, key_file);
  UniqueFd fd(::open(key_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd && errno == ENOENT) {
    std::string key(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32) != 1)
      return Error{EIO, "no random bytes for the cache key"};
    UniqueFd out(::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return errno_error("create cache key " + key_file.string());
    if (::write(out.get(), key.data(), key.size()) != 32 || ::fsync(out.get()) != 0) {
      Error e = errno_error("write cache key " + key_file.string());
      ::unlink(key_file.c_str());  // a short key would only fail every later load
      return e;
    }
    return key;
  }
  if (!fd) return errno_error("cache key " + key_file.string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("fstat " + key_file.string());
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || (st.st_uid != 0 && st.st_uid != ::geteuid()))
    return Error{EPERM, "cache key " + key_file.string() +
                            " must be a regular file only its owner (root) can read or write"};
  auto key = read_file_text(key_file);
  if (!key) return key.error();
  if (std::string_view(*key).starts_with(kTpmSealedMagic))
    return Error{EINVAL, "cache key " + key_file.string() + " is sealed by a TPM: name it (tpm=)"};
  if (key->size() < 32) return Error{EINVAL, "cache key " + key_file.string() + " is too short"};
  return key;
}

}  // namespace

Result<SealedDebCache> SealedDebCache::open(const std::filesystem::path& file,
                                            const std::filesystem::path& key_file,
                                            const std::string& tpm) {
  auto key = key_of(key_file, tpm);
  if (!key) return key.error();
  SealedDebCache cache;
  cache.file_ = file;
  cache.key_ = std::move(*key);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return cache;
  auto text = read_file_text(file);
  if (!text) {
    cache.problem_ = text.error().message;
    return cache;
  }
  std::string_view all(*text);
  if (!all.starts_with(kMagic) || all.size() < kMagic.size() + kSealSize) {
    cache.problem_ = "not a digestfs .deb cache";
    return cache;
  }
  std::string_view seal = all.substr(kMagic.size(), kSealSize);
  std::string_view body = all.substr(kMagic.size() + kSealSize);
  std::string expected = seal_of(cache.key_, body);
  if (expected.size() != kSealSize || CRYPTO_memcmp(expected.data(), seal.data(), kSealSize) != 0) {
    cache.problem_ = "its seal does not verify under " + key_file.string() +
                     " (changed by someone without the key, or sealed with another key)";
    return cache;
  }
  Reader r{body};
  uint64_t debs = r.num(4);
  for (uint64_t d = 0; d < debs && !r.bad; ++d) {
    DebContents c;
    std::string sha = r.text();
    if (sha.size() != c.sha256.size()) r.bad = true;
    std::memcpy(c.sha256.data(), sha.data(), std::min(sha.size(), c.sha256.size()));
    c.size = r.num(8);
    uint64_t files = r.num(4);
    for (uint64_t i = 0; i < files && !r.bad; ++i) {
      DebFile f;
      f.path = r.text();
      f.digest = r.text();
      f.user = r.text();
      f.group = r.text();
      f.linkto = r.text();
      f.size = r.num(8);
      f.mtime = static_cast<uint32_t>(r.num(4));
      f.mode = static_cast<uint16_t>(r.num(2));
      f.conffile = r.num(1) != 0;
      c.files.push_back(std::move(f));
    }
    if (!r.bad) cache.entries_[c.sha256] = std::move(c);
  }
  if (r.bad) {
    cache.entries_.clear();
    cache.problem_ = "sealed, but not in this version's layout";
  }
  return cache;
}

const DebContents* SealedDebCache::find(const Sha256& deb) const {
  auto it = entries_.find(deb);
  return it == entries_.end() ? nullptr : &it->second;
}

void SealedDebCache::keep_only(const std::vector<Sha256>& used) {
  std::set<Sha256> keep(used.begin(), used.end());
  std::erase_if(entries_, [&](const auto& e) { return !keep.count(e.first); });
}

Result<void> SealedDebCache::save() const {
  std::string body;
  put_int(body, entries_.size(), 4);
  for (const auto& [sha, c] : entries_) {
    put_text(body, std::string(reinterpret_cast<const char*>(sha.data()), sha.size()));
    put_int(body, c.size, 8);
    put_int(body, c.files.size(), 4);
    for (const auto& f : c.files) {
      put_text(body, f.path);
      put_text(body, f.digest);
      put_text(body, f.user);
      put_text(body, f.group);
      put_text(body, f.linkto);
      put_int(body, f.size, 8);
      put_int(body, f.mtime, 4);
      put_int(body, f.mode, 2);
      put_int(body, f.conffile ? 1 : 0, 1);
    }
  }
  std::string out(kMagic);
  out += seal_of(key_, body);
  out += body;
  auto temp = file_;
  temp += ".new";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return errno_error("create " + temp.string());
  // On a full disk the old cache stays as it was, and the half-written new one goes.
  auto failed = [&](const std::string& what) {
    Error e = errno_error(what + " " + temp.string());
    ::unlink(temp.c_str());
    return e;
  };
  for (size_t done = 0; done < out.size();) {
    ssize_t n = ::write(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) return failed("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return failed("fsync");
  if (::rename(temp.c_str(), file_.c_str()) != 0) return failed("rename");
  return {};
}

}  // namespace digestfs
