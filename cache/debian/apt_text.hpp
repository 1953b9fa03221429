// Small glue to libapt-pkg: its errors as our Error, and deb822 text already held in memory
// (a verified signed text, a verified index) handed to its stanza scanner where it lies,
// without being read from a path again, so what is parsed is exactly what was checked.
#pragma once

#include <apt-pkg/tagfile.h>

#include <functional>
#include <string>

#include "src/base/result.hpp"

namespace digestfs {

// Every message libapt-pkg queued (and clears them), "; "-joined.
std::string apt_errors();

// Calls `each` for every stanza of `text`; fails when libapt-pkg cannot parse it.
Result<void> for_each_stanza(const std::string& text, const std::string& what,
                             const std::function<void(const pkgTagSection&)>& each);

// The whole (decompressed, by its name's extension) content of a file, through libapt-pkg;
// `expected_size` (what a Release lists for it, say) only sizes the first read.
Result<std::string> read_apt_file(const std::string& path, size_t expected_size = 0);

}  // namespace digestfs
