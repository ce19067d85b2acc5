// The safetensors reader: the golden LlamaGen files, exact dtype conversions, and a clear error for
// every malformed file (each validation the reader makes, and every truncation of a valid file).
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <ordo/io/safetensors.hpp>

using Catch::Contains;
namespace io = ordo::io;

namespace {
using bytes = std::vector<std::byte>;

// A file from raw header text (padded to 8 bytes with spaces, as the format's writers do) and data.
bytes st_file(std::string header, const bytes& data = {}, bool pad = true) {
    while (pad && header.size() % 8) header += ' ';
    bytes f(8);
    for (int k = 0; k < 8; ++k) f[k] = static_cast<std::byte>((static_cast<std::uint64_t>(header.size()) >> (8 * k)) & 0xff);
    for (char c : header) f.push_back(static_cast<std::byte>(c));
    f.insert(f.end(), data.begin(), data.end());
    return f;
}

template <class T>
bytes le(const std::vector<T>& v) {  // the host is little-endian (the reader asserts it)
    bytes b(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
    return b;
}

// Builds a valid file tensor by tensor, offsets consecutive in the order added.
struct writer {
    std::string entries;
    bytes data;
    template <class T>
    writer& add(const std::string& name, const std::string& dt, const std::string& shape, const std::vector<T>& values) {
        const bytes b = le(values);
        sep();
        entries += "\"" + name + "\":{\"dtype\":\"" + dt + "\",\"shape\":" + shape;
        entries += ",\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + b.size()) + "]}";
        data.insert(data.end(), b.begin(), b.end());
        return *this;
    }
    writer& meta(const std::string& object) {
        sep();
        entries += "\"__metadata__\":" + object;
        return *this;
    }
    void sep() {
        if (!entries.empty()) entries += ',';
    }
    bytes file() const { return st_file("{" + entries + "}", data); }
};

io::safetensors load(const bytes& f) { return io::safetensors::from_memory(f); }

// One F32 tensor "a" of shape [2] with the given entry text replacing the default.
bytes one(const std::string& entry, std::size_t data_bytes = 8) { return st_file("{\"a\":" + entry + "}", bytes(data_bytes)); }

std::string temp_path(const std::string& name) { return (std::filesystem::temp_directory_path() / ("ordo_test_" + name + ".safetensors")).string(); }

void write_file(const std::string& path, const bytes& f) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
    REQUIRE(out.good());
}

bytes read_whole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

const std::string golden_weights = ORDO_TEST_DATA "/e2e/raster_G8_cfg2.0_label3.weights.safetensors";
const std::string golden_teacher = ORDO_TEST_DATA "/e2e/raster_G8_cfg2.0_label3.teacher.safetensors";
}  // namespace

TEST_CASE("safetensors: dtype names, sizes and half-float decoding", "[safetensors]") {
    CHECK(io::dtype_name(io::dtype::f64) == "F64");
    CHECK(io::dtype_name(io::dtype::bf16) == "BF16");
    CHECK(io::dtype_name(io::dtype::boolean) == "BOOL");
    CHECK(io::dtype_size(io::dtype::f64) == 8);
    CHECK(io::dtype_size(io::dtype::f16) == 2);
    CHECK(io::dtype_size(io::dtype::i32) == 4);
    CHECK(io::dtype_size(io::dtype::boolean) == 1);

    // every half against the definition: (-1)^s * 2^(e-15) * 1.m, subnormals 2^-14 * 0.m
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const float got = io::f16_to_f32(static_cast<std::uint16_t>(h));
        const int e = static_cast<int>((h >> 10) & 0x1f), m = static_cast<int>(h & 0x3ff);
        const bool neg = h & 0x8000;
        if (e == 0x1f) {
            if (m == 0) REQUIRE(got == (neg ? -INFINITY : INFINITY));
            else REQUIRE(std::isnan(got));
            continue;
        }
        const double mag = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
        REQUIRE(static_cast<double>(got) == (neg ? -mag : mag));
        REQUIRE(std::signbit(got) == neg);  // -0 stays -0
    }
    CHECK(io::f16_to_f32(0x0001) == 0x1p-24f);  // smallest subnormal
    CHECK(io::f16_to_f32(0x7bff) == 65504.0f);
    CHECK(bits(io::f16_to_f32(0x7e01)) == 0x7fc02000u);  // NaN payload kept

    CHECK(io::bf16_to_f32(0x3f80) == 1.0f);
    CHECK(io::bf16_to_f32(0xc040) == -3.0f);
    CHECK(io::bf16_to_f32(0x0001) == std::bit_cast<float>(0x00010000u));  // subnormal
    CHECK(io::bf16_to_f32(0xff80) == -INFINITY);
    CHECK(std::isnan(io::bf16_to_f32(0x7fc1)));
}

TEST_CASE("safetensors: golden LlamaGen weights", "[safetensors]") {
    REQUIRE(std::filesystem::exists(golden_weights));
    const auto st = io::safetensors::open(golden_weights);
    CHECK(st.source() == golden_weights);
    REQUIRE(st.tensors().size() == 18);  // 19 header keys, __metadata__ not a tensor
    CHECK(st.tensors().front().name == "cls_embedding.embedding_table.weight");  // header order
    CHECK(st.tensors().back().name == "output.weight");
    CHECK(st.find("__metadata__") == nullptr);

    const io::tensor_info& tok = st.at("tok_embeddings.weight");
    CHECK(tok.type == io::dtype::f32);
    CHECK(tok.shape == std::vector<std::int64_t>{256, 64});
    CHECK(tok.shape_str() == "[256, 64]");
    CHECK(tok.numel() == 16384);
    CHECK(tok.begin == 2816);
    CHECK(tok.end == 68352);
    CHECK(st.at("norm.weight").shape_str() == "[64]");
    CHECK(st.at("layers.1.feed_forward.w2.weight").shape_str() == "[64, 192]");

    REQUIRE(st.metadata().size() == 3);
    CHECK(st.metadata()[0] == std::pair<std::string, std::string>{"case", "raster_G8_cfg2.0_label3"});
    CHECK(st.metadata()[1].second == "FoundationVision/LlamaGen");

    std::vector<float> v(static_cast<std::size_t>(tok.numel()));
    st.read(tok, v);
    CHECK(bits(v.front()) == 0xbd4740b7u);
    CHECK(bits(v.back()) == 0xbdb377d2u);
    std::vector<float> norm(64);
    st.read(st.at("norm.weight"), norm);
    CHECK(bits(norm.front()) == 0x3f82a670u);
    CHECK(bits(norm.back()) == 0x3f8b643cu);

    // the same bytes through from_memory give the same tensors, bit for bit
    const bytes whole = read_whole(golden_weights);
    const auto mem = load(whole);
    REQUIRE(mem.tensors().size() == st.tensors().size());
    for (const auto& t : st.tensors()) {
        const io::tensor_info& m = mem.at(t.name);
        CHECK(m.shape == t.shape);
        std::vector<float> a(static_cast<std::size_t>(t.numel())), b(a.size());
        st.read(t, a);
        mem.read(m, b);
        CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
    std::vector<float> out(16384);
    mem.read(mem.at("output.weight"), out);
    CHECK(bits(out.front()) == 0x3f8e811cu);
    CHECK(bits(out.back()) == 0xbeb6bb02u);
}

TEST_CASE("safetensors: golden teacher tokens are I64", "[safetensors]") {
    REQUIRE(std::filesystem::exists(golden_teacher));
    const auto st = io::safetensors::open(golden_teacher);
    const io::tensor_info& tok = st.at("tokens_raster");
    CHECK(tok.type == io::dtype::i64);
    CHECK(tok.shape_str() == "[64]");
    std::vector<std::int64_t> v(64);
    st.read(tok, v);
    CHECK(v[0] == 24);
    CHECK(v[1] == 105);
    CHECK(v[63] == 244);
    for (std::int64_t x : v) CHECK((x >= 0 && x < 256));
    std::vector<std::int64_t> label(1);
    st.read(st.at("label"), label);
    CHECK(label[0] == 3);
    CHECK(st.at("logits").shape_str() == "[64, 256]");
    std::vector<std::int64_t> wrong(64 * 256);
    CHECK_THROWS_WITH(st.read(st.at("logits"), wrong), Contains("'logits' has dtype F32"));
}

TEST_CASE("safetensors: every dtype converts exactly, from memory and from a file", "[safetensors]") {
    const std::vector<std::uint16_t> f16 = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555};
    const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc040, 0x0001, 0x7f80, 0x7fc0, 0x4049};
    const std::vector<double> f64 = {0.1, -2.5, 1e300, -1e300, 1e-50, 65504.0};
    const std::vector<float> f32 = {1.5f, -0.0f, 3.4028235e38f, 1e-45f};
    const std::vector<std::int64_t> i64 = {std::numeric_limits<std::int64_t>::min(), -1, 0, std::numeric_limits<std::int64_t>::max()};
    const std::vector<std::int32_t> i32 = {std::numeric_limits<std::int32_t>::min(), -7, 2147483647};
    const std::vector<std::int16_t> i16 = {-32768, -1, 32767};
    const std::vector<std::int8_t> i8 = {-128, -1, 127};
    const std::vector<std::uint8_t> u8 = {0, 128, 255};
    const std::vector<std::uint8_t> boolean = {0, 1, 1, 0};
    const bytes f = writer{}
                        .add("h", "F16", "[11]", f16)
                        .add("b", "BF16", "[2, 3]", bf16)
                        .add("d", "F64", "[6]", f64)
                        .add("s", "F32", "[4]", f32)
                        .add("scalar", "F32", "[]", std::vector<float>{42.0f})
                        .add("empty", "F32", "[0, 3]", std::vector<float>{})
                        .add("q", "I64", "[4]", i64)
                        .add("i", "I32", "[3]", i32)
                        .add("w", "I16", "[3]", i16)
                        .add("c", "I8", "[3]", i8)
                        .add("u", "U8", "[3]", u8)
                        .add("z", "BOOL", "[2, 2]", boolean)
                        .meta(R"({"format":"pt"})")
                        .file();
    const std::string path = temp_path("dtypes");
    write_file(path, f);
    const auto mem = load(f);
    const auto disk = io::safetensors::open(path);
    for (const io::safetensors* st : {&mem, &disk}) {
        INFO(st->source());
        REQUIRE(st->tensors().size() == 12);
        const auto floats = [&](const char* name) {
            std::vector<float> v(static_cast<std::size_t>(st->at(name).numel()));
            st->read(st->at(name), v);
            return v;
        };
        const auto ints = [&](const char* name) {
            std::vector<std::int64_t> v(static_cast<std::size_t>(st->at(name).numel()));
            st->read(st->at(name), v);
            return v;
        };
        const auto h = floats("h");
        for (std::size_t k = 0; k < f16.size(); ++k) CHECK(bits(h[k]) == bits(io::f16_to_f32(f16[k])));
        CHECK(h[0] == 1.0f);
        CHECK(h[2] == 0x1p-24f);
        CHECK(h[7] == INFINITY);
        CHECK(std::isnan(h[9]));
        const auto b = floats("b");
        CHECK(b[0] == 1.0f);
        CHECK(b[1] == -3.0f);
        CHECK(b[5] == 3.140625f);
        const auto d = floats("d");
        CHECK(d[0] == 0.1f);  // rounded to nearest
        CHECK(d[1] == -2.5f);
        CHECK(d[2] == INFINITY);
        CHECK(d[3] == -INFINITY);
        CHECK(d[4] == 0.0f);
        CHECK(d[5] == 65504.0f);
        const auto s = floats("s");
        for (std::size_t k = 0; k < f32.size(); ++k) CHECK(bits(s[k]) == bits(f32[k]));
        CHECK(st->at("scalar").numel() == 1);
        CHECK(st->at("scalar").shape_str() == "[]");
        CHECK(floats("scalar") == std::vector<float>{42.0f});
        CHECK(st->at("empty").numel() == 0);
        CHECK(floats("empty").empty());
        CHECK(ints("q") == i64);
        CHECK(ints("i") == std::vector<std::int64_t>{-2147483648LL, -7, 2147483647});
        CHECK(ints("w") == std::vector<std::int64_t>{-32768, -1, 32767});
        CHECK(ints("c") == std::vector<std::int64_t>{-128, -1, 127});
        CHECK(ints("u") == std::vector<std::int64_t>{0, 128, 255});
        CHECK(ints("z") == std::vector<std::int64_t>{0, 1, 1, 0});
        CHECK(st->metadata() == std::vector<std::pair<std::string, std::string>>{{"format", "pt"}});
    }
    std::filesystem::remove(path);
}

TEST_CASE("safetensors: a file is read in chunks, and one cut short after open is 'truncated'", "[safetensors]") {
    // more than the 1 MiB conversion buffer, so the chunk boundaries are crossed
    std::vector<std::uint16_t> h(700001), bf(300001);
    for (std::size_t k = 0; k < h.size(); ++k) h[k] = static_cast<std::uint16_t>(k * 7919);
    for (std::size_t k = 0; k < bf.size(); ++k) bf[k] = static_cast<std::uint16_t>(k * 104729);
    std::vector<std::int32_t> ints(300001);
    for (std::size_t k = 0; k < ints.size(); ++k) ints[k] = static_cast<std::int32_t>(k * 2654435761u);
    const bytes f = writer{}.add("h", "F16", "[700001]", h).add("bf", "BF16", "[300001]", bf).add("i", "I32", "[300001]", ints).file();
    const std::string path = temp_path("chunks");
    write_file(path, f);
    const auto st = io::safetensors::open(path);
    std::vector<float> out(h.size());
    st.read(st.at("h"), out);
    for (std::size_t k = 0; k < h.size(); ++k)
        if (bits(out[k]) != bits(io::f16_to_f32(h[k]))) FAIL("F16 element " << k);
    out.resize(bf.size());
    st.read(st.at("bf"), out);
    for (std::size_t k = 0; k < bf.size(); ++k)
        if (bits(out[k]) != bits(io::bf16_to_f32(bf[k]))) FAIL("BF16 element " << k);
    std::vector<std::int64_t> iout(ints.size());
    st.read(st.at("i"), iout);
    for (std::size_t k = 0; k < ints.size(); ++k)
        if (iout[k] != ints[k]) FAIL("I32 element " << k);

    std::filesystem::resize_file(path, f.size() - 3);
    CHECK_THROWS_WITH(st.read(st.at("i"), iout), Contains("tensor 'i'") && Contains("truncated"));
    std::filesystem::resize_file(path, f.size() - 1300000);  // all of 'i' and the end of 'bf'
    CHECK_THROWS_WITH(st.read(st.at("i"), iout), Contains("read 0 of 1200004 bytes (truncated file)"));
    out.resize(bf.size());
    CHECK_THROWS_WITH(st.read(st.at("bf"), out), Contains("tensor 'bf'") && Contains("truncated"));
    std::filesystem::remove(path);
    out.resize(h.size());
    CHECK_THROWS_WITH(st.read(st.at("h"), out), Contains("cannot open the file to read tensor 'h'"));
}

TEST_CASE("safetensors: lookup, metadata and read argument checks", "[safetensors]") {
    const bytes f = writer{}
                        .add("zeta", "F32", "[2, 2]", std::vector<float>{1, 2, 3, 4})
                        .add("alpha", "I64", "[1]", std::vector<std::int64_t>{5})
                        .meta(R"({"b":"x","a":"\u00e9"})")
                        .add("mid", "BF16", "[1]", std::vector<std::uint16_t>{0x3f80})
                        .file();
    const auto st = load(f);
    CHECK(st.source() == "<memory>");
    REQUIRE(st.tensors().size() == 3);
    CHECK(st.tensors()[0].name == "zeta");  // header order, not sorted
    CHECK(st.tensors()[1].name == "alpha");
    CHECK(st.tensors()[2].name == "mid");
    CHECK(st.find("alpha") == &st.tensors()[1]);
    CHECK(st.find("alph") == nullptr);
    CHECK(st.find("") == nullptr);
    CHECK_THROWS_WITH(st.at("nope"), Contains("<memory>: no tensor 'nope'"));
    CHECK(st.metadata() == std::vector<std::pair<std::string, std::string>>{{"b", "x"}, {"a", "\xc3\xa9"}});

    std::vector<float> three(3), four(4);
    std::vector<std::int64_t> one(1);
    CHECK_THROWS_WITH(st.read(st.at("zeta"), three), Contains("'zeta' [2, 2] has 4 elements, but the output buffer holds 3"));
    CHECK_THROWS_WITH(st.read(st.at("alpha"), std::span<float>(four).first(1)), Contains("'alpha' has dtype I64"));
    CHECK_THROWS_WITH(st.read(st.at("zeta"), std::span<std::int64_t>()), Contains("holds 0"));
    std::vector<std::int64_t> ifour(4);
    CHECK_THROWS_WITH(st.read(st.at("zeta"), ifour), Contains("'zeta' has dtype F32"));
    CHECK_THROWS_WITH(st.read(st.at("mid"), one), Contains("'mid' has dtype BF16"));
    st.read(st.at("zeta"), four);
    CHECK(four == std::vector<float>{1, 2, 3, 4});

    // a tensor_info edited (or from another file) is checked against this file before reading
    io::tensor_info t = st.at("zeta");
    t.end = 1000;
    t.shape = {250};
    std::vector<float> many(250);
    CHECK_THROWS_WITH(st.read(t, many), Contains("'zeta' does not describe data in this file"));
    t = st.at("zeta");
    t.type = io::dtype::f64;
    CHECK_THROWS_WITH(st.read(t, four), Contains("does not describe data"));

    CHECK(load(st_file("{}")).tensors().empty());  // no tensors is a valid file
    CHECK(load(st_file("  {\"__metadata__\":{}}\n\t", {}, false)).metadata().empty());  // whitespace around the object
}

TEST_CASE("safetensors: framing errors", "[safetensors]") {
    CHECK_THROWS_WITH(load(bytes{}), Contains("<memory>: file is 0 bytes, shorter than the 8-byte header length"));
    CHECK_THROWS_WITH(load(bytes(7)), Contains("file is 7 bytes"));
    CHECK_THROWS_WITH(load(bytes(8)), Contains("header length is 0"));
    CHECK_THROWS_WITH(load(bytes(64)), Contains("header length is 0"));
    bytes big = st_file("{}");
    big[3] = std::byte{0x10};  // 2^28 + 8
    CHECK_THROWS_WITH(load(big), Contains("exceeds the 100 MiB limit"));
    big[3] = std::byte{0};
    big[7] = std::byte{0x80};
    CHECK_THROWS_WITH(load(big), Contains("exceeds the 100 MiB limit"));
    bytes past = st_file("{}");
    past[0] = std::byte{9};
    CHECK_THROWS_WITH(load(past), Contains("header length 9 is past the end of the 16-byte file"));

    CHECK_THROWS_WITH(io::safetensors::open("/nonexistent/ordo.safetensors"), Contains("/nonexistent/ordo.safetensors: cannot open"));
    const std::string path = temp_path("framing");
    write_file(path, bytes(5));
    CHECK_THROWS_WITH(io::safetensors::open(path), Contains(path + ": file is 5 bytes"));
    write_file(path, past);
    CHECK_THROWS_WITH(io::safetensors::open(path), Contains("past the end"));
    write_file(path, one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4));
    CHECK_THROWS_WITH(io::safetensors::open(path), Contains(path + ": tensor 'a'") && Contains("truncated"));
    std::filesystem::remove(path);
}

TEST_CASE("safetensors: the header must be strict JSON", "[safetensors]") {
    const auto bad = [](const std::string& header) { return load(st_file(header)); };
    CHECK_THROWS_WITH(bad("{"), Contains("<memory>: header: not valid JSON: expected a string key at byte 8"));
    CHECK_THROWS_WITH(bad("x"), Contains("header: not valid JSON: unexpected character 'x' at byte 0"));
    CHECK_THROWS_WITH(bad("[]"), Contains("header is not a JSON object"));
    CHECK_THROWS_WITH(bad("\"a\""), Contains("header is not a JSON object"));
    CHECK_THROWS_WITH(bad("{} {}"), Contains("trailing characters after the header at byte 3"));
    CHECK_THROWS_WITH(bad("{}x"), Contains("trailing characters"));
    CHECK_THROWS_WITH(load(st_file(std::string("{}\0", 3), {}, false)), Contains("trailing characters"));  // NUL is not padding
    CHECK_THROWS_WITH(bad(R"({"a":1,})"), Contains("expected a string key"));
    CHECK_THROWS_WITH(bad(R"({"a" 1})"), Contains("expected ':' after a key"));
    CHECK_THROWS_WITH(bad(R"({"a":[1 2]})"), Contains("expected ',' or ']'"));
    CHECK_THROWS_WITH(bad(R"({"a":{"b":1 "c":2}})"), Contains("expected ',' or '}'"));
    CHECK_THROWS_WITH(bad(R"({"a":tru})"), Contains("invalid literal (expected 'true')"));
    CHECK_THROWS_WITH(bad(R"({"a":nul)"), Contains("invalid literal (expected 'null')"));
    CHECK_THROWS_WITH(bad(R"({"a":01})"), Contains("leading zero"));
    CHECK_THROWS_WITH(bad(R"({"a":-})"), Contains("expected a digit"));
    CHECK_THROWS_WITH(bad(R"({"a":1.})"), Contains("expected a digit after '.'"));
    CHECK_THROWS_WITH(bad(R"({"a":1e+})"), Contains("expected a digit in the exponent"));
    CHECK_THROWS_WITH(bad(R"({"a":+1})"), Contains("unexpected character '+'"));
    CHECK_THROWS_WITH(bad(R"({"a":"x)"), Contains("unterminated string at byte 5"));
    CHECK_THROWS_WITH(bad(R"({"a\q":1})"), Contains("invalid escape '\\q' at byte 3"));
    CHECK_THROWS_WITH(bad(R"({"\u12":1})"), Contains("\\u needs four hex digits"));
    CHECK_THROWS_WITH(bad(R"({"\ud800":1})"), Contains("high surrogate \\u escape without its low half"));
    CHECK_THROWS_WITH(bad(R"({"\ud800\u0041":1})"), Contains("without its low half"));
    CHECK_THROWS_WITH(bad(R"({"\udc00":1})"), Contains("lone low surrogate"));
    CHECK_THROWS_WITH(bad("{\"a\tb\":1}"), Contains("control character in a string"));
    CHECK_THROWS_WITH(bad("{\"\xff\":1}"), Contains("invalid UTF-8 in a string at byte 2"));
    CHECK_THROWS_WITH(bad("{\"\xc0\x80\":1}"), Contains("invalid UTF-8"));          // overlong NUL
    CHECK_THROWS_WITH(bad("{\"\xed\xa0\x80\":1}"), Contains("invalid UTF-8"));      // encoded surrogate
    CHECK_THROWS_WITH(bad("{\"\xf4\x90\x80\x80\":1}"), Contains("invalid UTF-8"));  // past U+10FFFF
    CHECK_THROWS_WITH(bad("{\"\xe2\x82\":1}"), Contains("invalid UTF-8"));          // cut short
    CHECK_THROWS_WITH(bad("{\"a\":1}\x01"), Contains("trailing characters"));

    // nesting: 64 levels are JSON (then not a tensor entry), 65 are refused before any recursion deeper
    const auto nested = [](int n) { return "{\"a\":" + std::string(static_cast<std::size_t>(n - 1), '[') + std::string(static_cast<std::size_t>(n - 1), ']') + "}"; };
    CHECK_THROWS_WITH(bad(nested(64)), Contains("tensor 'a': entry must be an object"));
    CHECK_THROWS_WITH(bad(nested(65)), Contains("nesting deeper than 64 levels"));
    CHECK_THROWS_WITH(bad(nested(100000)), Contains("nesting deeper than 64 levels"));

    // any JSON value passes the grammar check (the schema decides what is allowed where)
    const std::string src = "test";
    ordo::io::detail::json_cursor any(R"( {"a":[true,false,null,-0,1.5e-3,2E+10,0.25,"\"\\\/\b\f\n\r\t"],"b":{},"c":[]} )", src);
    any.skip_value();
    CHECK(any.at_end());

    // escapes decode to UTF-8, surrogate pairs included; raw UTF-8 passes through
    const bytes names = st_file(R"({"\u00e9\ud83d\ude00\n\"\\\/x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                "\"\xe6\x97\xa5\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                                bytes(2));
    const auto st = load(names);
    CHECK(st.find("\xc3\xa9\xf0\x9f\x98\x80\n\"\\/x") != nullptr);
    CHECK(st.find("\xe6\x97\xa5\xf0\x9f\x98\x80") != nullptr);
}

TEST_CASE("safetensors: tensor entry errors name the tensor and the problem", "[safetensors]") {
    const std::string ok = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    REQUIRE(load(one(ok)).at("a").numel() == 2);

    CHECK_THROWS_WITH(load(one("[1]")), Contains("<memory>: tensor 'a': entry must be an object with dtype, shape and data_offsets"));
    CHECK_THROWS_WITH(load(one("null")), Contains("entry must be an object"));
    CHECK_THROWS_WITH(load(one(R"({"shape":[2],"data_offsets":[0,8]})")), Contains("tensor 'a': missing dtype"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","data_offsets":[0,8]})")), Contains("tensor 'a': missing shape"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2]})")), Contains("tensor 'a': missing data_offsets"));
    CHECK_THROWS_WITH(load(one("{}")), Contains("missing dtype"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]})")), Contains("tensor 'a': 'dtype' appears twice"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]})")), Contains("'shape' appears twice"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"data_offsets":[0,8]})")), Contains("'data_offsets' appears twice"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1})")), Contains("tensor 'a': unknown field 'extra'"));

    CHECK_THROWS_WITH(load(one(R"({"dtype":"U32","shape":[2],"data_offsets":[0,8]})")), Contains("tensor 'a': unknown or unsupported dtype 'U32'"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"f32","shape":[2],"data_offsets":[0,8]})")), Contains("unsupported dtype 'f32'"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]})", 2)), Contains("unsupported dtype 'F8_E4M3'"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":32,"shape":[2],"data_offsets":[0,8]})")), Contains("tensor 'a': dtype must be a string"));

    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})")), Contains("tensor 'a': shape must be an array of integers"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})")), Contains("shape entry must be an integer"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})")), Contains("tensor 'a': shape entry is negative"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})")), Contains("shape entry must be an integer, not a fraction or exponent"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2e0],"data_offsets":[0,8]})")), Contains("not a fraction or exponent"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})")), Contains("shape entry is too large"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,8]})")), Contains("shape entry is too large"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})")),
                      Contains("tensor 'a': shape [4294967296, 4294967296] of F32 is too large (its byte size overflows 64 bits)"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]})")), Contains("overflows 64 bits"));
    // a zero extent makes the tensor empty whatever the others are
    CHECK(load(one(R"({"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[8,8]})")).at("a").numel() == 0);
    CHECK(load(one(R"({"dtype":"F32","shape":[-0, 5],"data_offsets":[0,0]})")).at("a").numel() == 0);

    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})")), Contains("tensor 'a': data_offsets must be an array of two integers, not 1"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4,8]})")), Contains("two integers, not 3"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[]})")), Contains("two integers, not 0"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":"0,8"})")), Contains("data_offsets must be an array of two integers"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8.5]})")), Contains("data_offsets entry must be an integer, not a fraction"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[-1,8]})")), Contains("data_offsets entry is negative"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]})")), Contains("data_offsets entry is too large"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})")), Contains("tensor 'a': data_offsets [8, 0] begin after they end"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,12]})", 12)),
                      Contains("tensor 'a': data_offsets [0, 12] span 12 bytes, but shape [2] of F32 needs 8"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 7)),
                      Contains("tensor 'a': data ends at byte 8 of the data section, which holds only 7 bytes (truncated file)"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]})")), Contains("span 7 bytes"));
    CHECK_THROWS_WITH(load(one(R"({"dtype":"U8","shape":[2],"data_offsets":[18446744073709551613,18446744073709551615]})")), Contains("truncated"));
    // trailing bytes after the last tensor are allowed
    CHECK(load(one(ok, 100)).tensors().size() == 1);

    const bytes two(16);
    CHECK_THROWS_WITH(load(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", two)),
                      Contains("tensor 'x': appears twice (duplicate tensor name)"));
    CHECK_THROWS_WITH(load(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two)),
                      Contains("<memory>: tensors 'y' [0, 8) and 'x' [4, 12) overlap"));
    CHECK_THROWS_WITH(load(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", two)),
                      Contains("tensors 'x' [0, 8) and 'y' [0, 8) overlap"));
    CHECK_THROWS_WITH(load(st_file(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"y":{"dtype":"U8","shape":[1],"data_offsets":[9,10]}})", two)),
                      Contains("overlap"));
    // empty tensors hold no bytes, so they overlap nothing; adjacent tensors are fine
    CHECK(load(st_file(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})", two)).tensors().size() == 2);
    CHECK(load(st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two)).tensors().size() == 2);

    CHECK_THROWS_WITH(load(st_file(R"({"__metadata__":{"k":1}})")), Contains("<memory>: __metadata__ value for 'k' must be a string"));
    CHECK_THROWS_WITH(load(st_file(R"({"__metadata__":{"k":null}})")), Contains("value for 'k' must be a string"));
    CHECK_THROWS_WITH(load(st_file(R"({"__metadata__":{"k":{"x":"y"}}})")), Contains("value for 'k' must be a string"));
    CHECK_THROWS_WITH(load(st_file(R"({"__metadata__":["k"]})")), Contains("__metadata__ must be an object of strings"));
    CHECK_THROWS_WITH(load(st_file(R"({"__metadata__":{"k":"a","k":"b"}})")), Contains("__metadata__ key 'k' appears twice"));
    CHECK_THROWS_WITH(load(st_file(R"({"__metadata__":{},"__metadata__":{}})")), Contains("__metadata__ appears twice"));
}

TEST_CASE("safetensors: every prefix of a valid file throws", "[safetensors]") {
    const bytes f = writer{}
                        .add("w", "F32", "[2, 3]", std::vector<float>{1, 2, 3, 4, 5, 6})
                        .add("t", "I64", "[2]", std::vector<std::int64_t>{7, 8})
                        .meta(R"({"k":"v"})")
                        .add("h", "F16", "[3]", std::vector<std::uint16_t>{1, 2, 3})
                        .file();
    REQUIRE(load(f).tensors().size() == 3);
    for (std::size_t n = 0; n < f.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        const bytes prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));  // its own allocation: no reading past it
        CHECK_THROWS_AS(load(prefix), ordo::error);
    }
    // past the header, the message says which tensor is cut short
    const bytes cut(f.begin(), f.end() - 1);
    CHECK_THROWS_WITH(load(cut), Contains("tensor 'h'") && Contains("truncated file"));
}
