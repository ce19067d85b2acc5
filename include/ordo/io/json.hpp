// ordo/io/json.hpp - a small, bounded JSON reader (and string writer) for ordo's own files, standard
// library only. Bounded: the text by a byte cap the caller gives, nesting by max_json_depth, memory
// by the text (a node per value, at most one per byte); numbers through std::from_chars (no locale);
// strings with every JSON escape. Any malformed input is an ordo::error naming the line and column.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../config.hpp"

namespace ordo::detail {

// Appends s as a JSON string literal (escaped by json_escape, config.hpp).
inline void json_string(std::string& o, std::string_view s) {
    o += '"';
    o += json_escape(s);
    o += '"';
}

inline constexpr int max_json_depth = 32;  // ordo's files nest 7 deep

// A parsed document: every value is a node; an array's elements (an object's key, value pairs)
// are consecutive entries of `kids`. Strings are decoded into `text`.
class json_document {
public:
    enum class type : std::uint8_t { null, boolean, number, string, array, object };
    struct node {
        double number = 0;       // number; boolean: 0 or 1
        std::uint32_t first = 0; // string: offset in text; array/object: first entry in kids
        std::uint32_t count = 0; // string: length; array: elements; object: key, value pairs
        type kind = type::null;
        bool integral = false;   // a number written without fraction or exponent
    };

    // Parses `in`; `what` names the input in errors ("plan JSON").
    json_document(std::string_view in, std::string_view what, std::size_t max_bytes) : in_(in), what_(what) {
        if (in.size() > max_bytes || in.size() >= UINT32_MAX)  // node offsets are 32-bit
            throw error(what_ + ": " + itos(static_cast<long long>(in.size())) + " bytes is more than the limit of " +
                        itos(static_cast<long long>(std::min<std::size_t>(max_bytes, UINT32_MAX - 1))) + " bytes");
        nodes_.reserve(in.size() / 8 + 16);
        skip_ws();
        root_ = value(0);
        skip_ws();
        if (pos_ != in_.size()) fail("text after the document");
        std::vector<std::uint32_t>().swap(stack_);
    }

    std::uint32_t root() const { return root_; }
    const node& at(std::uint32_t id) const { return nodes_[id]; }
    std::string_view string(std::uint32_t id) const { return std::string_view(text_).substr(nodes_[id].first, nodes_[id].count); }
    std::uint32_t element(std::uint32_t array, std::uint32_t i) const { return kids_[nodes_[array].first + i]; }
    std::uint32_t key(std::uint32_t object, std::uint32_t i) const { return kids_[nodes_[object].first + 2 * i]; }
    std::uint32_t member(std::uint32_t object, std::uint32_t i) const { return kids_[nodes_[object].first + 2 * i + 1]; }
    // The first member named k, or -1.
    long long find(std::uint32_t object, std::string_view k) const {
        for (std::uint32_t i = 0; i < nodes_[object].count; ++i)
            if (string(key(object, i)) == k) return member(object, i);
        return -1;
    }
    static const char* type_name(type t) {
        switch (t) {
            case type::null: return "null";
            case type::boolean: return "a boolean";
            case type::number: return "a number";
            case type::string: return "a string";
            case type::array: return "an array";
            case type::object: return "an object";
        }
        return "?";
    }

private:
    [[noreturn]] void fail(const std::string& msg) const {
        std::size_t line = 1, col = 1;
        for (std::size_t i = 0; i < pos_ && i < in_.size(); ++i) {
            if (in_[i] == '\n') { ++line; col = 1; } else ++col;
        }
        throw error(what_ + ": " + msg + " at line " + itos(static_cast<long long>(line)) + ", column " + itos(static_cast<long long>(col)));
    }
    void skip_ws() {
        while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\n' || in_[pos_] == '\r' || in_[pos_] == '\t')) ++pos_;
    }
    bool eat(char c) {
        if (pos_ < in_.size() && in_[pos_] == c) { ++pos_; return true; }
        return false;
    }
    void expect(char c, const char* where) {
        if (!eat(c)) fail(pos_ < in_.size() ? std::string("expected '") + c + "' " + where : std::string("unexpected end ") + where);
    }
    bool word(std::string_view w) {
        if (in_.substr(pos_, w.size()) != w) return false;
        pos_ += w.size();
        return true;
    }
    std::uint32_t add(node n) {
        nodes_.push_back(n);
        return static_cast<std::uint32_t>(nodes_.size() - 1);
    }
    // Moves the entries stacked since `mark` into kids (consecutive) and returns their start.
    std::uint32_t settle(std::size_t mark) {
        const auto first = static_cast<std::uint32_t>(kids_.size());
        kids_.insert(kids_.end(), stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
        stack_.resize(mark);
        return first;
    }

    std::uint32_t value(int depth) {
        if (pos_ >= in_.size()) fail("unexpected end, expected a value");
        const char c = in_[pos_];
        if (c == '{' || c == '[') {
            if (depth >= max_json_depth) fail("nesting deeper than " + itos(max_json_depth) + " levels");
            ++pos_;
            const bool object = c == '{';
            const std::size_t mark = stack_.size();
            std::uint32_t count = 0;
            skip_ws();
            if (!eat(object ? '}' : ']')) {
                while (true) {
                    skip_ws();
                    if (object) {
                        if (pos_ >= in_.size() || in_[pos_] != '"') fail(pos_ >= in_.size() ? "unexpected end in an object" : "expected a key string");
                        stack_.push_back(string_value());
                        skip_ws();
                        expect(':', "after a key");
                        skip_ws();
                    }
                    stack_.push_back(value(depth + 1));
                    ++count;
                    skip_ws();
                    if (eat(',')) continue;
                    expect(object ? '}' : ']', object ? "or ',' in an object" : "or ',' in an array");
                    break;
                }
            }
            node n;
            n.kind = object ? type::object : type::array;
            n.count = count;
            n.first = settle(mark);
            return add(n);
        }
        if (c == '"') return string_value();
        if (c == '-' || (c >= '0' && c <= '9')) return number_value();
        node n;
        if (word("true")) { n.kind = type::boolean; n.number = 1; return add(n); }
        if (word("false")) { n.kind = type::boolean; return add(n); }
        if (word("null")) return add(n);
        fail("expected a value");
    }

    std::uint32_t number_value() {
        const std::size_t start = pos_;
        auto digits = [&] {
            const std::size_t d = pos_;
            while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
            return pos_ - d;
        };
        eat('-');
        if (pos_ < in_.size() && in_[pos_] == '0') ++pos_;
        else if (digits() == 0) fail("a number needs digits");
        bool integral = true;
        if (eat('.')) {
            integral = false;
            if (digits() == 0) fail("a number needs digits after '.'");
        }
        if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
            ++pos_;
            integral = false;
            if (!eat('+')) eat('-');
            if (digits() == 0) fail("a number needs digits in its exponent");
        }
        node n;
        n.kind = type::number;
        n.integral = integral;
        const auto res = std::from_chars(in_.data() + start, in_.data() + pos_, n.number);
        if (res.ec != std::errc() || res.ptr != in_.data() + pos_) {
            const std::string shown(in_.substr(start, std::min<std::size_t>(pos_ - start, 32)));
            pos_ = start;
            fail("number " + shown + " is out of range");
        }
        return add(n);
    }

    unsigned hex4() {
        if (in_.size() - pos_ < 4) fail("unexpected end in a \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = in_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
            else fail("bad hex digit in a \\u escape");
        }
        return v;
    }
    void utf8(unsigned cp) {
        if (cp < 0x80) text_ += static_cast<char>(cp);
        else if (cp < 0x800) { text_ += static_cast<char>(0xC0 | (cp >> 6)); text_ += static_cast<char>(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
            text_ += static_cast<char>(0xE0 | (cp >> 12)); text_ += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            text_ += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            text_ += static_cast<char>(0xF0 | (cp >> 18)); text_ += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            text_ += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); text_ += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    std::uint32_t string_value() {
        ++pos_;  // the opening quote
        node n;
        n.kind = type::string;
        n.first = static_cast<std::uint32_t>(text_.size());
        while (true) {
            if (pos_ >= in_.size()) fail("unexpected end in a string");
            const char c = in_[pos_++];
            if (c == '"') break;
            if (static_cast<unsigned char>(c) < 0x20) { --pos_; fail("unescaped control character in a string"); }
            if (c != '\\') { text_ += c; continue; }
            if (pos_ >= in_.size()) fail("unexpected end in a string");
            switch (const char e = in_[pos_++]) {
                case '"': text_ += '"'; break;
                case '\\': text_ += '\\'; break;
                case '/': text_ += '/'; break;
                case 'b': text_ += '\b'; break;
                case 'f': text_ += '\f'; break;
                case 'n': text_ += '\n'; break;
                case 'r': text_ += '\r'; break;
                case 't': text_ += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("a \\u escape holds a lone low surrogate");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
                        if (!eat('\\') || !eat('u')) fail("a \\u escape holds a high surrogate without its low half");
                        const unsigned lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("a \\u escape holds a high surrogate without its low half");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    utf8(cp);
                    break;
                }
                default: --pos_; fail(std::string("unknown escape '\\") + e + "' in a string");
            }
        }
        n.count = static_cast<std::uint32_t>(text_.size() - n.first);
        return add(n);
    }

    std::string_view in_;
    std::string what_;
    std::size_t pos_ = 0;
    std::vector<node> nodes_;
    std::vector<std::uint32_t> kids_, stack_;
    std::string text_;
    std::uint32_t root_ = 0;
};

}  // namespace ordo::detail
