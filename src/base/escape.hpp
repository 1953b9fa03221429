// Names from the filesystem written into line-based logs (syslog, IMA's ASCII list): a name
// may hold any byte but '/' and NUL, so one with a newline could otherwise add or forge a
// line, and one with a space could split a field.
#pragma once

#include <string>
#include <string_view>

namespace digestfs {

// s with control bytes, DEL, '\' and every byte of `also` written as a backslash and three
// octal digits (as /proc/self/mountinfo writes names: "\012" is a newline, "\134" a '\').
std::string octal_escaped(std::string_view s, std::string_view also = {});

// s with only its control bytes and DEL escaped: a whole log line, whose fields were escaped
// already, that must stay one line whatever else reached it.
std::string control_escaped(std::string_view s);

// A value of a "key=value" log field: octal_escaped, spaces and double quotes too, so the
// field ends at the first space whatever the name holds.
inline std::string field_value(std::string_view s) { return octal_escaped(s, " \""); }

}  // namespace digestfs
