// Lower-case hex of bytes and back, for key ids, digests and measurement logs alike.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace digestfs {

std::string to_hex(std::span<const unsigned char> bytes);
inline std::string to_hex(const unsigned char* data, size_t len) { return to_hex({data, len}); }
// The bytes of a hex string (either case); nothing when it is not an even run of hex digits.
std::optional<std::string> from_hex(std::string_view hex);

}  // namespace digestfs
