// ordo/io/safetensors.hpp - a strict reader for the safetensors format (weights, golden data).
// A file is an 8-byte little-endian header length N, N bytes of JSON header naming every tensor
// ({"dtype", "shape", "data_offsets"} plus an optional "__metadata__" object of strings), then the
// data section that the offsets index. open() reads and checks the header only; read() fetches one
// tensor straight into the caller's buffer, so loading never holds a second copy of a tensor, and
// nothing is allocated in proportion to what a header merely claims (a fuzzed header can say 2^60).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"

namespace ordo::io {

// The data section is read with memcpy, element by element as the file stores them.
static_assert(std::endian::native == std::endian::little, "ordo/io/safetensors.hpp reads little-endian data on a little-endian host only");
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559, "ordo/io/safetensors.hpp assumes IEEE 754 float and double");

enum class dtype : std::uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

inline std::size_t dtype_size(dtype t) {
    switch (t) {
        case dtype::f64: case dtype::i64: return 8;
        case dtype::f32: case dtype::i32: return 4;
        case dtype::f16: case dtype::bf16: case dtype::i16: return 2;
        case dtype::i8: case dtype::u8: case dtype::boolean: return 1;
    }
    return 0;
}

inline std::string_view dtype_name(dtype t) {
    switch (t) {
        case dtype::f64: return "F64";
        case dtype::f32: return "F32";
        case dtype::f16: return "F16";
        case dtype::bf16: return "BF16";
        case dtype::i64: return "I64";
        case dtype::i32: return "I32";
        case dtype::i16: return "I16";
        case dtype::i8: return "I8";
        case dtype::u8: return "U8";
        case dtype::boolean: return "BOOL";
    }
    return "?";
}

// IEEE half to float, exact: every half (subnormals, infinities, NaN payloads) is a float.
inline float f16_to_f32(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));  // rebias 15 -> 127
    // zero or subnormal: mant * 2^-24 is exact in float (a normal float for mant > 0)
    return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(static_cast<float>(mant) * 0x1p-24f));
}

// bfloat16 is the top half of a float.
inline float bf16_to_f32(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

struct tensor_info {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0, end = 0;  // byte offsets in the data section

    std::int64_t numel() const {  // checked at open: fits int64 (extents past a 0 may be huge)
        if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
        std::int64_t n = 1;
        for (std::int64_t d : shape) n *= d;
        return n;
    }
    std::string shape_str() const;
};

// "[256, 64]": a shape as messages (and safetensors headers) write it.
inline std::string shape_str(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + ordo::detail::itos(shape[i]);
    return s + "]";
}
inline std::string tensor_info::shape_str() const { return io::shape_str(shape); }

namespace detail {

using ordo::detail::itos;

inline constexpr int json_max_depth = 64;
inline constexpr std::uint64_t max_header_bytes = 100ull << 20;
inline constexpr std::size_t read_chunk_bytes = 1u << 20;  // a multiple of every dtype size

// A strict JSON cursor (RFC 8259: UTF-8, no comments, no trailing commas, no leading zeros, no
// lone surrogates). skip_value() checks any value's grammar without allocating; the typed readers
// (object, array, string, number) serve a reader that knows what it expects where. Syntax errors
// read "<source>: not valid JSON: <problem> at byte N".
class json_cursor {
public:
    json_cursor(std::string_view text, std::string source) : s_(text), src_(std::move(source)) {}  // text must outlive the cursor

    std::size_t pos() const { return i_; }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool at_end() { ws(); return i_ == s_.size(); }
    char peek() { ws(); return i_ < s_.size() ? s_[i_] : '\0'; }  // '\0' never starts a value
    bool consume(char c) {
        if (peek() != c) return false;
        ++i_;
        return true;
    }
    void expect(char c, const char* what) {
        if (!consume(c)) syntax(std::string("expected ") + what + (i_ < s_.size() ? "" : " but the text ended"));
    }

    [[noreturn]] void syntax(const std::string& msg) const { syntax_at(msg, i_); }
    [[noreturn]] void syntax_at(const std::string& msg, std::size_t at) const {
        throw error(src_ + ": not valid JSON: " + msg + " at byte " + itos(static_cast<long long>(at)));
    }

    // The object at the cursor: member() is called with each key decoded into *key (unless null)
    // and the cursor on its value, which member() must consume.
    template <class F>
    void object(std::string* key, F&& member) {
        expect('{', "'{'");
        if (consume('}')) return;
        do {
            if (peek() != '"') syntax("expected a string key");
            string(key);
            expect(':', "':' after a key");
            member();
        } while (consume(','));
        expect('}', "',' or '}'");
    }
    // The array at the cursor: item() consumes each element.
    template <class F>
    void array(F&& item) {
        expect('[', "'['");
        if (consume(']')) return;
        do item();
        while (consume(','));
        expect(']', "',' or ']'");
    }

    // Checks one value and everything inside it, containers at most json_max_depth deep.
    void skip_value(int depth = 0) {
        const char c = peek();
        if (c == '{' || c == '[') {
            if (depth >= json_max_depth) syntax("nesting deeper than " + itos(json_max_depth) + " levels");
            if (c == '{') object(nullptr, [&] { skip_value(depth + 1); });
            else array([&] { skip_value(depth + 1); });
        } else if (c == '"') {
            string(nullptr);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            number();
        } else if (c == 't') {
            literal("true");
        } else if (c == 'f') {
            literal("false");
        } else if (c == 'n') {
            literal("null");
        } else {
            syntax(i_ < s_.size() ? "unexpected character '" + printable(c) + "'" : "expected a value but the text ended");
        }
    }

    // A string at the cursor, decoded into *out unless out is null.
    void string(std::string* out) {
        const std::size_t start = i_;
        expect('"', "a string");
        if (out) out->clear();
        for (;;) {
            if (i_ >= s_.size()) syntax_at("unterminated string", start);
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                ++i_;
                return;
            }
            if (c < 0x20) syntax("control character in a string (escape it)");
            if (c == '\\') {
                escape(out);
            } else if (c < 0x80) {
                if (out) out->push_back(static_cast<char>(c));
                ++i_;
            } else {
                const std::size_t n = utf8_length();
                if (out) out->append(s_.substr(i_, n));
                i_ += n;
            }
        }
    }

    struct number_t {
        bool negative = false, integer = true, overflow = false;
        std::uint64_t magnitude = 0;  // valid for an integer that does not overflow u64
        std::size_t at = 0;
    };
    number_t number() {
        number_t n;
        n.at = i_;
        if (i_ < s_.size() && s_[i_] == '-') { n.negative = true; ++i_; }
        if (!digit()) syntax("expected a digit");
        if (s_[i_] == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9') syntax("leading zero in a number");
        while (digit()) {
            const auto d = static_cast<std::uint64_t>(s_[i_++] - '0');
            if (n.magnitude > (std::numeric_limits<std::uint64_t>::max() - d) / 10) n.overflow = true;
            else n.magnitude = n.magnitude * 10 + d;
        }
        if (i_ < s_.size() && s_[i_] == '.') {
            n.integer = false;
            ++i_;
            if (!digit()) syntax("expected a digit after '.'");
            while (digit()) ++i_;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            n.integer = false;
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digit()) syntax("expected a digit in the exponent");
            while (digit()) ++i_;
        }
        return n;
    }

private:
    static std::string printable(char c) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) return std::string(1, c);
        const char* hex = "0123456789abcdef";
        return std::string("\\x") + hex[u >> 4] + hex[u & 15];
    }
    bool digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }
    void literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) syntax("invalid literal (expected '" + std::string(word) + "')");
        i_ += word.size();
    }
    unsigned hex4() {
        if (s_.size() - i_ < 4) syntax("\\u needs four hex digits");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
            else syntax_at("\\u needs four hex digits", i_ - 1);
        }
        return v;
    }
    void escape(std::string* out) {
        const std::size_t at = i_;
        ++i_;  // the backslash
        if (i_ >= s_.size()) syntax_at("unterminated string", at);
        const char c = s_[i_++];
        char plain = 0;
        switch (c) {
            case '"': plain = '"'; break;
            case '\\': plain = '\\'; break;
            case '/': plain = '/'; break;
            case 'b': plain = '\b'; break;
            case 'f': plain = '\f'; break;
            case 'n': plain = '\n'; break;
            case 'r': plain = '\r'; break;
            case 't': plain = '\t'; break;
            case 'u': break;
            default: syntax_at("invalid escape '\\" + printable(c) + "'", at);
        }
        if (c != 'u') {
            if (out) out->push_back(plain);
            return;
        }
        std::uint32_t cp = hex4();
        if (cp >= 0xdc00 && cp <= 0xdfff) syntax_at("lone low surrogate \\u escape", at);
        if (cp >= 0xd800 && cp <= 0xdbff) {  // a high surrogate must be followed by a low one
            if (s_.substr(i_, 2) != "\\u") syntax_at("high surrogate \\u escape without its low half", at);
            i_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) syntax_at("high surrogate \\u escape without its low half", at);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (out) append_utf8(*out, cp);
    }
    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
    }
    // Length of the well-formed UTF-8 sequence at the cursor.
    std::size_t utf8_length() const {
        const std::size_t n = ordo::detail::utf8_sequence_length(s_, i_);
        if (n == 0) syntax("invalid UTF-8 in a string");
        return n;
    }

    std::string_view s_;
    std::string src_;  // names the text in messages
    std::size_t i_ = 0;
};

// Bytes a tensor of this shape and dtype takes; false if the count or the size overflows.
inline bool tensor_bytes(const std::vector<std::int64_t>& shape, dtype t, std::uint64_t& bytes) {
    if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; })) return false;
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {  // empty, whatever the other extents
        bytes = 0;
        return true;
    }
    std::uint64_t n = 1;  // the element count must fit int64 (numel), the byte size u64
    for (std::int64_t d : shape) {
        if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / static_cast<std::uint64_t>(d)) return false;
        n *= static_cast<std::uint64_t>(d);
    }
    if (n > std::numeric_limits<std::uint64_t>::max() / dtype_size(t)) return false;
    bytes = n * dtype_size(t);
    return true;
}

}  // namespace detail

class safetensors {
public:
    // Reads the header of the file at `path` and checks it against the file's size.
    static safetensors open(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        if (!f) throw error(path + ": cannot open the file");
        f.seekg(0, std::ios::end);
        const std::streamoff size = f.tellg();
        if (size < 0) throw error(path + ": cannot read the file's size");
        f.seekg(0);
        unsigned char len[8] = {};
        if (size >= 8 && !f.read(reinterpret_cast<char*>(len), 8)) throw error(path + ": cannot read the header length");
        const std::uint64_t n = check_header_length(path, len, static_cast<std::uint64_t>(size));
        std::string header(static_cast<std::size_t>(n), '\0');  // n <= 100 MiB and <= the file's size
        if (!f.read(header.data(), static_cast<std::streamsize>(n))) throw error(path + ": cannot read the header (truncated file?)");
        safetensors st;
        st.source_ = path;
        st.parse(header, 8 + n, static_cast<std::uint64_t>(size) - 8 - n);
        return st;
    }

    // The whole file in memory; the bytes must outlive the object (tensors are read from them).
    static safetensors from_memory(std::span<const std::byte> file) {
        safetensors st;
        st.source_ = "<memory>";
        st.memory_ = file;
        st.in_memory_ = true;
        unsigned char len[8] = {};
        if (file.size() >= 8) std::memcpy(len, file.data(), 8);
        const std::uint64_t n = check_header_length(st.source_, len, file.size());
        st.parse(std::string_view(reinterpret_cast<const char*>(file.data()) + 8, static_cast<std::size_t>(n)), 8 + n, file.size() - 8 - n);
        return st;
    }

    std::span<const tensor_info> tensors() const { return tensors_; }  // in header order

    const tensor_info* find(std::string_view name) const {
        const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                         [&](std::size_t i, std::string_view n) { return tensors_[i].name < n; });
        return it != by_name_.end() && tensors_[*it].name == name ? &tensors_[*it] : nullptr;
    }
    const tensor_info& at(std::string_view name) const {
        if (const tensor_info* t = find(name)) return *t;
        throw error(source_ + ": no tensor '" + std::string(name) + "'");
    }

    const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }  // in header order
    const std::string& source() const { return source_; }  // the path, or "<memory>"

    // A float tensor (F32, F16, BF16; F64 narrowed) into out, which must hold exactly numel() values.
    void read(const tensor_info& t, std::span<float> out) const {
        check_read(t, out.size());
        switch (t.type) {
            case dtype::f32:
                if (!in_memory_) return read_file_direct(t, reinterpret_cast<char*>(out.data()));
                return each_chunk(t, [&](const std::byte* p, std::size_t bytes, std::size_t first) { std::memcpy(out.data() + first, p, bytes); });
            case dtype::f16: return convert<std::uint16_t>(t, out, [](std::uint16_t v) { return f16_to_f32(v); });
            case dtype::bf16: return convert<std::uint16_t>(t, out, [](std::uint16_t v) { return bf16_to_f32(v); });
            case dtype::f64: return convert<double>(t, out, [](double v) { return static_cast<float>(v); });  // IEEE: out of range -> inf
            default: throw error(source_ + ": tensor '" + t.name + "' has dtype " + std::string(dtype_name(t.type)) + ", which read() cannot give as float (F32, F16, BF16 or F64 needed)");
        }
    }

    // An integer tensor (I64, I32, I16, I8, U8; BOOL as 0/1) widened to int64.
    void read(const tensor_info& t, std::span<std::int64_t> out) const {
        check_read(t, out.size());
        switch (t.type) {
            case dtype::i64:
                if (!in_memory_) return read_file_direct(t, reinterpret_cast<char*>(out.data()));
                return each_chunk(t, [&](const std::byte* p, std::size_t bytes, std::size_t first) { std::memcpy(out.data() + first, p, bytes); });
            case dtype::i32: return convert<std::int32_t>(t, out, [](std::int32_t v) { return std::int64_t{v}; });
            case dtype::i16: return convert<std::int16_t>(t, out, [](std::int16_t v) { return std::int64_t{v}; });
            case dtype::i8: return convert<std::int8_t>(t, out, [](std::int8_t v) { return std::int64_t{v}; });
            case dtype::u8: return convert<std::uint8_t>(t, out, [](std::uint8_t v) { return std::int64_t{v}; });
            case dtype::boolean: return convert<std::uint8_t>(t, out, [](std::uint8_t v) { return std::int64_t{v != 0}; });
            default: throw error(source_ + ": tensor '" + t.name + "' has dtype " + std::string(dtype_name(t.type)) + ", which read() cannot give as int64 (I64, I32, I16, I8, U8 or BOOL needed)");
        }
    }

private:
    safetensors() = default;

    static std::uint64_t check_header_length(const std::string& src, const unsigned char (&len)[8], std::uint64_t file_size) {
        if (file_size < 8) throw error(src + ": file is " + detail::itos(static_cast<long long>(file_size)) + " bytes, shorter than the 8-byte header length (truncated?)");
        std::uint64_t n = 0;
        for (int k = 7; k >= 0; --k) n = (n << 8) | len[k];
        if (n == 0) throw error(src + ": header length is 0 (not a safetensors file?)");
        if (n > detail::max_header_bytes) throw error(src + ": header length " + std::to_string(n) + " exceeds the 100 MiB limit (not a safetensors file?)");
        if (n > file_size - 8)
            throw error(src + ": header length " + std::to_string(n) + " is past the end of the " + std::to_string(file_size) + "-byte file (truncated?)");
        return n;
    }

    [[noreturn]] void fail(const std::string& key, const std::string& msg) const { throw error(source_ + ": tensor '" + key + "': " + msg); }

    // Two passes over the header: the grammar first (so a syntax error is reported as one), then the schema.
    void parse(std::string_view header, std::uint64_t data_start, std::uint64_t data_size) {
        data_start_ = data_start;
        data_size_ = data_size;
        detail::json_cursor cur(header, source_ + ": header");
        cur.skip_value();
        if (!cur.at_end()) cur.syntax("trailing characters after the header");  // padding spaces are fine
        if (detail::json_cursor(header, source_).peek() != '{') throw error(source_ + ": header is not a JSON object");

        detail::json_cursor in(header, source_ + ": header");
        bool have_metadata = false;
        std::string key;
        in.object(&key, [&] {
            if (key == "__metadata__") {
                if (have_metadata) throw error(source_ + ": __metadata__ appears twice");
                have_metadata = true;
                read_metadata(in);
            } else {
                read_entry(in, key);
            }
        });
        check_names();
        check_overlaps();
    }

    void read_metadata(detail::json_cursor& in) {
        if (in.peek() != '{') throw error(source_ + ": __metadata__ must be an object of strings");
        std::string k, v;
        in.object(&k, [&] {
            if (in.peek() != '"') throw error(source_ + ": __metadata__ value for '" + k + "' must be a string");
            in.string(&v);
            metadata_.emplace_back(k, v);
        });
        std::vector<std::string_view> keys;
        for (const auto& kv : metadata_) keys.push_back(kv.first);
        std::sort(keys.begin(), keys.end());
        if (const auto d = std::adjacent_find(keys.begin(), keys.end()); d != keys.end())
            throw error(source_ + ": __metadata__ key '" + std::string(*d) + "' appears twice");
    }

    // An integer where the format needs one (a shape entry or an offset): no sign for offsets,
    // no fraction or exponent, and it must fit.
    std::uint64_t read_uint(detail::json_cursor& in, const std::string& key, const char* what, std::uint64_t max) const {
        const char c = in.peek();
        if (c != '-' && (c < '0' || c > '9')) fail(key, std::string(what) + " must be an integer");
        const auto n = in.number();
        if (!n.integer) fail(key, std::string(what) + " must be an integer, not a fraction or exponent (header byte " + detail::itos(static_cast<long long>(n.at)) + ")");
        if (n.negative && (n.overflow || n.magnitude != 0)) fail(key, std::string(what) + " is negative");
        if (n.overflow || n.magnitude > max) fail(key, std::string(what) + " is too large");
        return n.magnitude;
    }

    void read_entry(detail::json_cursor& in, const std::string& key) {
        if (in.peek() != '{') fail(key, "entry must be an object with dtype, shape and data_offsets");
        tensor_info t;
        t.name = key;
        bool have_dtype = false, have_shape = false, have_offsets = false;
        std::string field, dt;
        in.object(&field, [&] {
            const auto once = [&](bool& have) {
                if (have) fail(key, "'" + field + "' appears twice");
                have = true;
            };
            if (field == "dtype") {
                once(have_dtype);
                if (in.peek() != '"') fail(key, "dtype must be a string");
                in.string(&dt);
                t.type = parse_dtype(key, dt);
            } else if (field == "shape") {
                once(have_shape);
                if (in.peek() != '[') fail(key, "shape must be an array of integers");
                in.array([&] { t.shape.push_back(static_cast<std::int64_t>(read_uint(in, key, "shape entry", static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())))); });
            } else if (field == "data_offsets") {
                once(have_offsets);
                if (in.peek() != '[') fail(key, "data_offsets must be an array of two integers");
                std::uint64_t v[2] = {};
                int n = 0;
                in.array([&] {
                    const std::uint64_t x = read_uint(in, key, "data_offsets entry", std::numeric_limits<std::uint64_t>::max());
                    if (n < 2) v[n] = x;
                    ++n;
                });
                if (n != 2) fail(key, "data_offsets must be an array of two integers, not " + detail::itos(n));
                t.begin = v[0];
                t.end = v[1];
            } else {
                fail(key, "unknown field '" + field + "' (expected dtype, shape and data_offsets)");
            }
        });
        if (!have_dtype) fail(key, "missing dtype");
        if (!have_shape) fail(key, "missing shape");
        if (!have_offsets) fail(key, "missing data_offsets");

        std::uint64_t bytes = 0;
        if (!detail::tensor_bytes(t.shape, t.type, bytes)) fail(key, "shape " + t.shape_str() + " of " + std::string(dtype_name(t.type)) + " is too large (its byte size overflows 64 bits)");
        if (t.begin > t.end) fail(key, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] begin after they end");
        if (t.end - t.begin != bytes)
            fail(key, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] span " + std::to_string(t.end - t.begin) + " bytes, but shape " +
                          t.shape_str() + " of " + std::string(dtype_name(t.type)) + " needs " + std::to_string(bytes));
        if (t.end > data_size_)
            fail(key, "data ends at byte " + std::to_string(t.end) + " of the data section, which holds only " + std::to_string(data_size_) + " bytes (truncated file)");
        tensors_.push_back(std::move(t));
    }

    dtype parse_dtype(const std::string& key, std::string_view s) const {
        for (int k = 0; k <= static_cast<int>(dtype::boolean); ++k)
            if (dtype_name(static_cast<dtype>(k)) == s) return static_cast<dtype>(k);
        fail(key, "unknown or unsupported dtype '" + std::string(s) + "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    }

    void check_names() {
        by_name_.resize(tensors_.size());
        for (std::size_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
        std::sort(by_name_.begin(), by_name_.end(), [&](std::size_t a, std::size_t b) { return tensors_[a].name < tensors_[b].name; });
        for (std::size_t i = 1; i < by_name_.size(); ++i)
            if (tensors_[by_name_[i - 1]].name == tensors_[by_name_[i]].name) fail(tensors_[by_name_[i]].name, "appears twice (duplicate tensor name)");
    }

    // No byte belongs to two tensors (empty tensors hold no bytes).
    void check_overlaps() const {
        std::vector<std::size_t> order;
        for (std::size_t i = 0; i < tensors_.size(); ++i)
            if (tensors_[i].begin != tensors_[i].end) order.push_back(i);
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tensors_[a].begin < tensors_[b].begin; });
        for (std::size_t k = 1; k < order.size(); ++k) {
            const tensor_info &a = tensors_[order[k - 1]], &b = tensors_[order[k]];
            if (b.begin < a.end)  // sorted by begin and disjoint so far, so only the previous one can overlap
                throw error(source_ + ": tensors '" + a.name + "' [" + std::to_string(a.begin) + ", " + std::to_string(a.end) + ") and '" + b.name + "' [" +
                            std::to_string(b.begin) + ", " + std::to_string(b.end) + ") overlap");
        }
    }

    // A tensor_info is a plain struct the caller may have copied or edited: check it against this file.
    void check_read(const tensor_info& t, std::size_t out_size) const {
        std::uint64_t bytes = 0;
        if (!detail::tensor_bytes(t.shape, t.type, bytes) || t.begin > t.end || t.end > data_size_ || t.end - t.begin != bytes)
            throw error(source_ + ": tensor '" + t.name + "' does not describe data in this file");
        const std::uint64_t n = bytes / dtype_size(t.type);
        if (n != out_size)
            throw error(source_ + ": tensor '" + t.name + "' " + t.shape_str() + " has " + std::to_string(n) + " elements, but the output buffer holds " + std::to_string(out_size));
    }

    std::ifstream open_at(const tensor_info& t) const {
        std::ifstream f(source_, std::ios::binary);
        if (!f) throw error(source_ + ": cannot open the file to read tensor '" + t.name + "'");
        f.seekg(static_cast<std::streamoff>(data_start_ + t.begin));
        if (!f) throw error(source_ + ": tensor '" + t.name + "': cannot seek to its data (truncated file)");
        return f;
    }

    // A same-size dtype straight into the caller's buffer.
    void read_file_direct(const tensor_info& t, char* out) const {
        const std::uint64_t bytes = t.end - t.begin;
        if (bytes == 0) return;
        std::ifstream f = open_at(t);
        f.read(out, static_cast<std::streamsize>(bytes));
        if (static_cast<std::uint64_t>(f.gcount()) != bytes)
            throw error(source_ + ": tensor '" + t.name + "': read " + std::to_string(f.gcount()) + " of " + std::to_string(bytes) + " bytes (truncated file)");
    }

    // Calls fn(bytes, size, index of the first element) over the tensor's data: all at once in
    // memory, in chunks of at most 1 MiB from a file.
    template <class Fn>
    void each_chunk(const tensor_info& t, Fn&& fn) const {
        const std::uint64_t bytes = t.end - t.begin;
        if (bytes == 0) return;
        const std::size_t esize = dtype_size(t.type);
        if (in_memory_) return fn(memory_.data() + data_start_ + t.begin, static_cast<std::size_t>(bytes), std::size_t{0});
        std::ifstream f = open_at(t);
        std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(bytes, detail::read_chunk_bytes)));
        for (std::uint64_t done = 0; done < bytes;) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes - done, buf.size()));
            f.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
            if (static_cast<std::size_t>(f.gcount()) != n)
                throw error(source_ + ": tensor '" + t.name + "': read " + std::to_string(done + static_cast<std::uint64_t>(f.gcount())) + " of " + std::to_string(bytes) + " bytes (truncated file)");
            fn(buf.data(), n, static_cast<std::size_t>(done / esize));
            done += n;
        }
    }

    template <class Src, class Out, class Cvt>
    void convert(const tensor_info& t, std::span<Out> out, Cvt cvt) const {
        each_chunk(t, [&](const std::byte* p, std::size_t bytes, std::size_t first) {
            for (std::size_t k = 0; k < bytes / sizeof(Src); ++k) {
                Src v;
                std::memcpy(&v, p + k * sizeof(Src), sizeof(Src));
                out[first + k] = cvt(v);
            }
        });
    }

    std::string source_;
    std::span<const std::byte> memory_;  // the whole file, for from_memory
    bool in_memory_ = false;
    std::uint64_t data_start_ = 0, data_size_ = 0;  // the data section: file bytes [data_start_, data_start_ + data_size_)
    std::vector<tensor_info> tensors_;               // header order
    std::vector<std::size_t> by_name_;               // indices into tensors_, sorted by name, for find()
    std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace ordo::io
