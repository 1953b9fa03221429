// Loading an index the way the tools do, for tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "cache/index_loader.hpp"

namespace digestfs::test {

inline std::shared_ptr<const DigestIndex> load_packages(
    const std::filesystem::path& keys, const std::vector<std::filesystem::path>& packages,
    bool allow_weak = false) {
  auto trust = TrustStore::load(keys);
  EXPECT_TRUE(trust.ok()) << (trust.ok() ? "" : trust.error().message);
  if (!trust) return nullptr;
  SourceOptions options;
  options.read_rpmdb = false;
  options.packages = packages;
  options.allow_weak_digests = allow_weak;
  auto index = load_digest_index(*trust, options);
  EXPECT_TRUE(index.ok()) << (index.ok() ? "" : index.error().message);
  return index ? index.value() : nullptr;
}

inline Result<std::shared_ptr<const DigestIndex>> load_root(const std::filesystem::path& keys,
                                                            const std::filesystem::path& root) {
  auto trust = TrustStore::load(keys);
  if (!trust) return trust.error();
  SourceOptions options;
  options.root = root;
  return load_digest_index(*trust, options);
}

}  // namespace digestfs::test
