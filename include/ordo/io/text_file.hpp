// ordo/io/text_file.hpp - a text input (a config, a plan) read whole, but never more than a cap:
// a file that is too large, or endless (/dev/zero, a pipe that never closes), is an error after
// at most cap + 1 bytes, in bounded memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <string>

#include "../config.hpp"

namespace ordo::io {

// The whole of the file at `path` if it holds at most `max_bytes`; else throws naming the file,
// `what` it is, and the cap. Reads in chunks, so the file's reported size is never trusted.
inline std::string read_text_file(const std::string& path, std::size_t max_bytes, const std::string& what = "file") {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw error("cannot read " + what + " " + path);
    std::string text;
    constexpr std::size_t chunk = std::size_t{1} << 16;
    while (f) {
        const std::size_t at = text.size();
        text.resize(at + std::min(chunk, max_bytes + 1 - at));  // one byte past the cap tells "too large"
        f.read(text.data() + at, static_cast<std::streamsize>(text.size() - at));
        text.resize(at + static_cast<std::size_t>(f.gcount()));
        if (text.size() > max_bytes)
            throw error(what + " " + path + " is larger than " + ordo::detail::bytes_str(max_bytes) + ", the limit for a " + what);
    }
    if (f.bad()) throw error("reading " + what + " " + path + " failed");
    return text;
}

}  // namespace ordo::io
