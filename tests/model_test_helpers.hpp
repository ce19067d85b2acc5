// What the model tests of the checkpoint families share (tests/test_lpd_model.cpp,
// tests/test_randar_model.cpp, tests/test_arpg_model.cpp): reading the golden files, and rewriting a
// golden checkpoint in memory (a tensor dropped, reshaped or added) to test strict loading.
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <ordo/io/safetensors.hpp>

#include "gpt_helpers.hpp"  // read_f32

namespace model_test {

inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f.good());
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

using gpt_helpers::read_f32;

inline std::vector<ordo::index_t> read_ints(const ordo::io::safetensors& f, const std::string& key) {
    const ordo::io::tensor_info& t = f.at(key);
    std::vector<std::int64_t> v(static_cast<std::size_t>(t.numel()));
    f.read(t, v);
    return {v.begin(), v.end()};
}

// A safetensors file (F32 / I64 entries) built in memory, tensor by tensor.
struct st_writer {
    std::string entries;
    std::vector<std::byte> data;
    st_writer& add(const std::string& name, const std::vector<std::int64_t>& shape, const void* bytes, std::size_t n, const char* dtype = "F32") {
        if (!entries.empty()) entries += ',';
        entries += "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + ordo::io::shape_str(shape) + ",\"data_offsets\":[" + std::to_string(data.size()) +
                   "," + std::to_string(data.size() + n) + "]}";
        const auto* b = static_cast<const std::byte*>(bytes);
        data.insert(data.end(), b, b + n);
        return *this;
    }
    st_writer& add(const std::string& name, const std::vector<std::int64_t>& shape, const std::vector<float>& v) {
        return add(name, shape, v.data(), v.size() * sizeof(float));
    }
    std::vector<std::byte> file() const {
        std::string header = "{" + entries + "}";
        while (header.size() % 8) header += ' ';
        std::vector<std::byte> f(8);
        for (int k = 0; k < 8; ++k) f[static_cast<std::size_t>(k)] = static_cast<std::byte>((static_cast<std::uint64_t>(header.size()) >> (8 * k)) & 0xff);
        for (char c : header) f.push_back(static_cast<std::byte>(c));
        f.insert(f.end(), data.begin(), data.end());
        return f;
    }
};

// A checkpoint copied through st_writer: `edit(name, shape, values)` may change a tensor's shape or
// values, or return false to drop it; `extra` adds tensors at the end.
inline std::vector<std::byte> rewritten(const ordo::io::safetensors& src,
                                        const std::function<bool(const std::string&, std::vector<std::int64_t>&, std::vector<float>&)>& edit,
                                        const std::function<void(st_writer&)>& extra = {}) {
    st_writer w;
    for (const ordo::io::tensor_info& t : src.tensors()) {
        std::vector<std::int64_t> shape = t.shape;
        std::vector<float> v = read_f32(src, t.name);
        if (edit(t.name, shape, v)) w.add(t.name, shape, v);
    }
    if (extra) extra(w);
    return w.file();
}

// rewritten()'s edit that keeps every tensor as it is.
inline const auto keep = [](const std::string&, std::vector<std::int64_t>&, std::vector<float>&) { return true; };

}  // namespace model_test
