#include "cache/debian/deb_contents.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "cache/file_hasher.hpp"
#include "src/base/unique_fd.hpp"

namespace digestfs {
namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using Archive = std::unique_ptr<archive, ArchiveFree>;

// The .deb's bytes as libarchive asks for them, each hashed on its way.
struct HashedInput {
  int fd = -1;
  DigestStream hash;
  uint64_t bytes = 0;
  int error = 0;
  char buf[1 << 16];

  ssize_t next(const void** out) {
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = errno;
        return -1;
      }
      hash.update(buf, static_cast<size_t>(n));
      bytes += static_cast<uint64_t>(n);
      *out = buf;
      return n;
    }
  }
};

la_ssize_t read_outer(archive*, void* input, const void** out) {
  return static_cast<HashedInput*>(input)->next(out);
}

// A tar member read from inside the ar archive.
struct Member {
  archive* outer;
  char buf[1 << 16];
};

la_ssize_t read_member(archive*, void* member, const void** out) {
  auto* m = static_cast<Member*>(member);
  la_ssize_t n = archive_read_data(m->outer, m->buf, sizeof m->buf);
  *out = m->buf;
  return n;
}

Error archive_error(archive* a, const std::string& what) {
  const char* why = archive_error_string(a);
  return Error{EBADMSG, what + ": " + (why ? why : "libarchive gave no reason")};
}

// "./usr/bin/x" or "./usr/bin/" -> "/usr/bin/x", "/usr/bin"; "./" -> "".
std::string installed_path(const char* member_path) {
  std::string p = member_path ? member_path : "";
  if (p.starts_with("./")) p.erase(0, 1);
  if (!p.starts_with("/")) p.insert(0, "/");
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p == "/" ? "" : p;
}

std::string owner_name(const char* name, la_int64_t id) {
  return name && *name ? name : std::to_string(id);
}

// Each tar member: open it over the outer archive's current entry and read every entry.
template <class Each>
Result<void> read_tar_member(archive* outer, const std::string& what, Each each) {
  Archive tar(archive_read_new());
  archive_read_support_filter_all(tar.get());
  archive_read_support_format_tar(tar.get());
  auto member = std::make_unique<Member>();
  member->outer = outer;
  if (archive_read_open(tar.get(), member.get(), nullptr, read_member, nullptr) != ARCHIVE_OK)
    return archive_error(tar.get(), what);
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(tar.get(), &entry)) == ARCHIVE_OK) {
    if (auto ok = each(tar.get(), entry); !ok) return ok;
  }
  if (r != ARCHIVE_EOF) return archive_error(tar.get(), what);
  return {};
}

Result<std::string> entry_text(archive* tar, const std::string& what) {
  std::string out;
  char buf[1 << 14];
  la_ssize_t n;
  while ((n = archive_read_data(tar, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  if (n < 0) return archive_error(tar, what);
  return out;
}

// conffiles: one path per line, possibly after a flag ("remove-on-upgrade /etc/x").
std::set<std::string> conffile_paths(const std::string& text) {
  std::set<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    if (line.find(' ') < slash && line.starts_with("remove-on-upgrade")) continue;
    out.insert(line.substr(slash));
  }
  return out;
}

}  // namespace

Result<DebContents> read_deb(const std::filesystem::path& deb) {
  auto input = std::make_unique<HashedInput>();
  UniqueFd fd(::open(deb.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error(deb.string());
  input->fd = fd.get();
  auto hash = DigestStream::start(digest_algo::kSha256);
  if (!hash) return hash.error();
  input->hash = std::move(*hash);

  Archive ar(archive_read_new());
  archive_read_support_format_ar(ar.get());
  if (archive_read_open(ar.get(), input.get(), nullptr, read_outer, nullptr) != ARCHIVE_OK)
    return archive_error(ar.get(), deb.string());

  DebContents out;
  std::set<std::string> conffiles;
  std::map<std::string, size_t> by_path;
  bool saw_data = false;
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(ar.get(), &entry)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    std::string what = deb.string() + " " + name;
    if (name.starts_with("control.tar")) {
      auto read =
          read_tar_member(ar.get(), what, [&](archive* tar, archive_entry* e) -> Result<void> {
            if (installed_path(archive_entry_pathname(e)) != "/conffiles") return {};
            auto text = entry_text(tar, what);
            if (!text) return text.error();
            conffiles = conffile_paths(*text);
            return {};
          });
      if (!read) return read.error();
    } else if (name.starts_with("data.tar")) {
      saw_data = true;
      auto read =
          read_tar_member(ar.get(), what, [&](archive* tar, archive_entry* e) -> Result<void> {
            DebFile f;
            f.path = installed_path(archive_entry_pathname(e));
            if (f.path.empty()) return {};
            f.mode = static_cast<uint16_t>(archive_entry_mode(e));
            f.user = owner_name(archive_entry_uname(e), archive_entry_uid(e));
            f.group = owner_name(archive_entry_gname(e), archive_entry_gid(e));
            f.mtime = static_cast<uint32_t>(archive_entry_mtime(e));
            f.size = static_cast<uint64_t>(archive_entry_size(e));
            if (const char* target = archive_entry_hardlink(e)) {
              auto it = by_path.find(installed_path(target));
              if (it == by_path.end())
                return Error{EBADMSG, what + ": hard link " + f.path + " to a file not before it"};
              const DebFile& first = out.files[it->second];
              f.digest = first.digest;
              f.size = first.size;
              f.mode = static_cast<uint16_t>((first.mode & S_IFMT) | (f.mode & 07777));
            } else if (archive_entry_filetype(e) == AE_IFLNK) {
              f.linkto = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
              f.size = f.linkto.size();
            } else if (archive_entry_filetype(e) == AE_IFREG) {
              auto content = DigestStream::start(digest_algo::kSha256);
              if (!content) return content.error();
              char buf[1 << 16];
              la_ssize_t n;
              while ((n = archive_read_data(tar, buf, sizeof buf)) > 0)
                content->update(buf, static_cast<size_t>(n));
              if (n < 0) return archive_error(tar, what);
              auto digest = content->finish();
              if (!digest) return digest.error();
              f.digest.assign(reinterpret_cast<const char*>(digest->bytes().data()),
                              digest->bytes().size());
            }
            by_path[f.path] = out.files.size();
            out.files.push_back(std::move(f));
            return {};
          });
      if (!read) return read.error();
    }
  }
  if (r != ARCHIVE_EOF) return archive_error(ar.get(), deb.string());
  if (!saw_data) return Error{EBADMSG, deb.string() + ": no data.tar member"};
  // Whatever libarchive did not ask for still counts towards the .deb's hash.
  const void* rest = nullptr;
  ssize_t n;
  while ((n = input->next(&rest)) > 0) {
  }
  if (n < 0) return Error{input->error, deb.string() + ": read: " + std::strerror(input->error)};
  for (auto& f : out.files) f.conffile = conffiles.count(f.path) != 0;
  auto whole = input->hash.finish();
  if (!whole) return whole.error();
  std::copy(whole->bytes().begin(), whole->bytes().end(), out.sha256.begin());
  out.size = input->bytes;
  return out;
}

}  // namespace digestfs
