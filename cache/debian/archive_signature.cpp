#include "cache/debian/archive_signature.hpp"

#include <cstdlib>
#include <fstream>
#include <system_error>

#include "src/base/file_text.hpp"

namespace digestfs {
namespace {

struct DataDeleter {
  void operator()(gpgme_data_t d) const { gpgme_data_release(d); }
};
using Data = std::unique_ptr<gpgme_data, DataDeleter>;

Result<Data> data_of(const std::string& bytes) {
  gpgme_data_t d = nullptr;
  // copy = 1: GPGME owns its copy, so the caller's string may go away first.
  if (gpgme_error_t e = gpgme_data_new_from_mem(&d, bytes.data(), bytes.size(), 1))
    return Error{EIO, std::string("GPGME: ") + gpgme_strerror(e)};
  return Data(d);
}

Result<Data> empty_data() {
  gpgme_data_t d = nullptr;
  if (gpgme_error_t e = gpgme_data_new(&d))
    return Error{EIO, std::string("GPGME: ") + gpgme_strerror(e)};
  return Data(d);
}

std::string contents(gpgme_data_t d) {
  std::string out;
  gpgme_data_seek(d, 0, SEEK_SET);
  char buf[65536];
  ssize_t n;
  while ((n = gpgme_data_read(d, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

// The private GnuPG home: made with mkdtemp (mode 0700), removed with everything in it.
struct ArchiveSignatures::Home {
  std::filesystem::path dir;
  ~Home() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

ArchiveSignatures::ArchiveSignatures(std::unique_ptr<Home> home, gpgme_ctx_t ctx, size_t imported)
    : home_(std::move(home)), ctx_(ctx), imported_(imported) {}

ArchiveSignatures::ArchiveSignatures(ArchiveSignatures&& other) noexcept
    : home_(std::move(other.home_)),
      ctx_(std::exchange(other.ctx_, nullptr)),
      imported_(other.imported_) {}

ArchiveSignatures::~ArchiveSignatures() {
  if (ctx_) gpgme_release(ctx_);
}

Result<ArchiveSignatures> ArchiveSignatures::create(
    const std::vector<std::filesystem::path>& key_files) {
  gpgme_check_version(nullptr);
  if (gpgme_error_t e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP))
    return Error{ENOPKG, std::string("GnuPG is not usable through GPGME: ") + gpgme_strerror(e)};
  std::string pattern = (std::filesystem::temp_directory_path() / "digestfs-gnupg-XXXXXX");
  if (!::mkdtemp(pattern.data())) return errno_error("mkdtemp " + pattern);
  auto home = std::make_unique<Home>();
  home->dir = pattern;
  // Public keys and signatures need no agent: without this, gpg starts a gpg-agent for the
  // home, which would outlive the load.
  {
    std::ofstream conf(home->dir / "gpg.conf");
    conf << "no-autostart\n";
    if (!conf) return Error{EIO, "cannot write " + (home->dir / "gpg.conf").string()};
  }
  gpgme_ctx_t raw = nullptr;
  if (gpgme_error_t e = gpgme_new(&raw))
    return Error{EIO, std::string("GPGME: ") + gpgme_strerror(e)};
  ArchiveSignatures out(std::move(home), raw, 0);
  if (gpgme_error_t e =
          gpgme_ctx_set_engine_info(raw, GPGME_PROTOCOL_OpenPGP, nullptr, out.home_->dir.c_str()))
    return Error{EIO, std::string("GPGME: ") + gpgme_strerror(e)};
  gpgme_set_offline(raw, 1);
  for (const auto& file : key_files) {
    auto text = read_file_text(file);
    if (!text) continue;  // the trust store reported it already
    auto keys = data_of(*text);
    if (!keys) return keys.error();
    if (gpgme_op_import(raw, keys->get()) != 0) continue;
    if (gpgme_import_result_t r = gpgme_op_import_result(raw))
      out.imported_ += static_cast<size_t>(r->imported + r->unchanged);
  }
  if (out.imported_ == 0) return Error{ENOKEY, "GnuPG imported no key of the trust store's files"};
  return out;
}

Result<SignedText> ArchiveSignatures::verdict(std::string text) const {
  gpgme_verify_result_t result = gpgme_op_verify_result(ctx_);
  std::string seen;
  for (gpgme_signature_t s = result ? result->signatures : nullptr; s; s = s->next) {
    // Only the trust store's keys are in this home, so a good signature is a trusted one;
    // expired or revoked keys and expired signatures are not good.
    if (gpg_err_code(s->status) == GPG_ERR_NO_ERROR &&
        !(s->summary & (GPGME_SIGSUM_RED | GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
                        GPGME_SIGSUM_SIG_EXPIRED)))
      return SignedText{std::move(text), s->fpr ? s->fpr : ""};
    if (!seen.empty()) seen += ", ";
    seen += std::string(s->fpr ? s->fpr : "?") + ": " + gpgme_strerror(s->status);
  }
  if (seen.empty()) return Error{EBADMSG, "no OpenPGP signature"};
  return Error{EKEYREJECTED, "no good signature by a key of the trust store (" + seen + ")"};
}

Result<SignedText> ArchiveSignatures::clearsigned(const std::filesystem::path& file) const {
  auto bytes = read_file_text(file);
  if (!bytes) return bytes.error();
  auto sig = data_of(*bytes);
  if (!sig) return sig.error();
  auto plain = empty_data();
  if (!plain) return plain.error();
  if (gpgme_error_t e = gpgme_op_verify(ctx_, sig->get(), nullptr, plain->get()))
    return Error{EBADMSG,
                 std::string("not a clearsigned OpenPGP message (") + gpgme_strerror(e) + ")"};
  return verdict(contents(plain->get()));
}

Result<SignedText> ArchiveSignatures::detached(const std::filesystem::path& file,
                                               const std::filesystem::path& signature) const {
  auto bytes = read_file_text(file);
  if (!bytes) return bytes.error();
  auto sig_bytes = read_file_text(signature);
  if (!sig_bytes) return sig_bytes.error();
  auto sig = data_of(*sig_bytes);
  if (!sig) return sig.error();
  auto signed_data = data_of(*bytes);
  if (!signed_data) return signed_data.error();
  if (gpgme_error_t e = gpgme_op_verify(ctx_, sig->get(), signed_data->get(), nullptr))
    return Error{EBADMSG,
                 signature.string() + " is not an OpenPGP signature (" + gpgme_strerror(e) + ")"};
  return verdict(std::move(*bytes));
}

}  // namespace digestfs
