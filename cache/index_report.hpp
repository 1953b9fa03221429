// How the index's facts are written for people and machines, the same in every command.
#pragma once

#include <cstdint>
#include <string>

#include "cache/digest_index.hpp"
#include "src/base/json_writer.hpp"

namespace digestfs {

// One rejected header as a JSON object: nevra, verdict, reason (and origin, when asked).
void rejected_json(JsonWriter& j, const RejectedHeader& r, bool with_origin);

// "c", "d", "g", ... as rpm prints file attributes (config, doc, ghost, license, missingok,
// noreplace, readme), for listings.
std::string attr_markers(uint16_t attrs);

}  // namespace digestfs
