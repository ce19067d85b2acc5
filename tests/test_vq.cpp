// The VQ tokenizer's decoder against the official LlamaGen VQModel.decode_code (tests/data/vq, a
// copy of golden/vq: README.md there): every intermediate activation, the decoder output, the
// uint8 image and the bicubic eval resize, on a tiny config whose weights ship as a file and on the
// real VQ-16 shape whose 170 MB of weights are regenerated in memory from their formula (checked
// against the golden checksums). Then the errors: wrong files, wrong tokens, wrong grids.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include <ordo/eigen/threads.hpp>
#include <ordo/eigen/vq.hpp>
#include <ordo/models/vq/checkpoint.hpp>
#include <ordo/models/vq/procedural.hpp>

#include "gpt_helpers.hpp"  // read_f32
#include "tolerance.hpp"

using json = nlohmann::json;
using Catch::Matchers::Contains;
namespace vq = ordo::models::vq;
using gpt_helpers::read_f32;

namespace {

// conventions/vq16.md §7: float32 against the official float32, another summation order
constexpr float kActTolerance = 1e-4f;
constexpr float kDecTolerance = 5e-5f;

std::string vq_data(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/vq/" + name; }

json read_json(const std::string& path) {
    std::ifstream f(path);
    REQUIRE(f.good());
    return json::parse(f);
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<std::int64_t> read_i64(const ordo::io::safetensors& f, const std::string& key) {  // I64 and U8 tensors
    const ordo::io::tensor_info& t = f.at(key);
    std::vector<std::int64_t> v(static_cast<std::size_t>(t.numel()));
    f.read(t, v);
    return v;
}

// Compares a uint8 image [B, H, W, 3] with the official one: equal everywhere except at the
// listed near-boundary pixels [b, y, x, c], which may differ by 1.
void check_uint8(const std::vector<std::uint8_t>& ours, const std::vector<std::int64_t>& official, const std::set<std::vector<std::int64_t>>& near,
                 std::int64_t H, std::int64_t W) {
    REQUIRE(ours.size() == official.size());
    int exact_misses = 0, near_misses = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        const auto c = static_cast<std::int64_t>(i % 3), x = static_cast<std::int64_t>(i / 3) % W, y = static_cast<std::int64_t>(i / 3 / W) % H,
                   b = static_cast<std::int64_t>(i / 3 / W / H);
        const std::int64_t d = std::abs(static_cast<std::int64_t>(ours[i]) - official[i]);
        if (d == 0) continue;
        if (near.count({b, y, x, c}) && d == 1) ++near_misses;
        else ++exact_misses;
    }
    WARN(near_misses << " of " << near.size() << " near-boundary values differ by 1");
    CHECK(exact_misses == 0);
}

std::set<std::vector<std::int64_t>> near_boundary(const json& run) {
    std::set<std::vector<std::int64_t>> s;
    for (const auto& p : run["uint8_near_boundary"]["pixels_byxc"]) s.insert(p.get<std::vector<std::int64_t>>());
    REQUIRE(s.size() == run["uint8_near_boundary"]["count"].get<std::size_t>());
    return s;
}

// Decodes a golden case's codes with `w`, checking every activation, the output and the image.
void check_case(const std::string& name, const vq::vq_weights& w) {
    const json run = read_json(vq_data(name + ".json"));
    const auto outputs = ordo::io::safetensors::open(vq_data(name + ".outputs.safetensors"));
    const auto acts = ordo::io::safetensors::open(vq_data(name + ".acts.safetensors"));
    const std::vector<std::int64_t> codes = read_i64(outputs, "codes");
    const auto h = run["grid_hw"][0].get<ordo::index_t>(), gw = run["grid_hw"][1].get<ordo::index_t>();
    REQUIRE(run["batch"].get<int>() == 1);

    ordo::eigen::vq_decoder dec(w);
    std::vector<std::string> order;
    std::map<std::string, std::vector<float>> seen;
    std::vector<float> image(3 * static_cast<std::size_t>(dec.image_height(h)) * static_cast<std::size_t>(dec.image_width(gw)));
    dec.decode(std::span<const std::int64_t>(codes), h, gw, std::span<float>(image),
               [&](std::string_view module, const float* data, ordo::index_t c, ordo::index_t hh, ordo::index_t ww) {
                   order.emplace_back(module);
                   seen[std::string(module)].assign(data, data + static_cast<std::size_t>(c) * static_cast<std::size_t>(hh) * static_cast<std::size_t>(ww));
                   const auto shape = acts.at(std::string(module)).shape;
                   CHECK(shape == std::vector<std::int64_t>{1, c, hh, ww});
               });
    CHECK(order == run["acts_order"].get<std::vector<std::string>>());
    float worst = 0;
    for (const std::string& module : run["acts_order"].get<std::vector<std::string>>()) {
        INFO(name << ": activation " << module);
        const float d = tolerance::max_abs_diff(seen[module], read_f32(acts, module));
        CHECK(d < kActTolerance);
        worst = std::max(worst, d);
    }
    const std::vector<float> official = read_f32(outputs, "dec");
    INFO(name << ": dec");
    const float dec_diff = tolerance::max_abs_diff(image, official);
    CHECK(dec_diff < kDecTolerance);
    WARN(name << ": max |diff| " << dec_diff << " on dec, " << worst << " over the activations");

    std::vector<std::uint8_t> u8(image.size());
    ordo::eigen::to_uint8(image, dec.image_height(h), dec.image_width(gw), u8);
    check_uint8(u8, read_i64(outputs, "image_uint8"), near_boundary(run), dec.image_height(h), dec.image_width(gw));
    // the demo path (save_image) gives the same picture
    CHECK(read_i64(outputs, "image_uint8_save_image") == read_i64(outputs, "image_uint8"));
}

vq::vq_weights tiny_weights() {
    const auto f = ordo::io::safetensors::open(vq_data("vq_tiny.weights.safetensors"));
    return vq::load_checkpoint(f);
}

// The VQ-16-shaped weights, regenerated once per test run (170 MB).
const vq::vq_weights& vq16_weights() {
    static const vq::vq_weights w = vq::procedural_weights(vq::vq16(), read_json(vq_data("vq16_shapes.weights.json"))["init"]["seed"].get<std::uint64_t>(), 1.0);
    return w;
}

// A safetensors file in memory holding F32 zeros of the given tensors.
std::vector<std::byte> zeros_file(const std::vector<ordo::models::llamagen::tensor_spec>& specs) {
    std::string header = "{";
    std::uint64_t offset = 0;
    for (const auto& s : specs) {
        const std::uint64_t bytes = ordo::models::llamagen::numel(s) * 4;
        header += (header.size() > 1 ? "," : "") + std::string("\"") + s.key + "\":{\"dtype\":\"F32\",\"shape\":" + ordo::io::shape_str(s.shape) +
                  ",\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    std::vector<std::byte> f(8 + header.size() + offset, std::byte{0});
    const std::uint64_t n = header.size();
    std::memcpy(f.data(), &n, 8);
    std::memcpy(f.data() + 8, header.data(), header.size());
    return f;
}

ordo::io::safetensors in_memory(const std::vector<std::byte>& f) { return ordo::io::safetensors::from_memory(f); }

vq::vq_config tiny_config() { return vq::config_from_json(slurp(vq_data("vq_tiny.weights.json")), "vq_tiny.weights.json"); }

}  // namespace

TEST_CASE("vq: the tiny and the VQ-16 configs read off the checkpoints and the JSONs name the official tensors", "[vq][golden]") {
    for (const std::string name : {"vq_tiny", "vq16_shapes"}) {
        INFO(name);
        const json wj = read_json(vq_data(name + ".weights.json"));
        const vq::vq_config c = vq::config_from_json(slurp(vq_data(name + ".weights.json")), name);
        CHECK(vq::parameter_count(c) == wj["param_count_decode_path"].get<std::size_t>());
        const auto specs = vq::checkpoint_tensors(c);
        REQUIRE(specs.size() == wj["keys_saved"].size());
        for (const auto& s : specs) CHECK(wj["tensors"][s.key]["shape"].get<std::vector<std::int64_t>>() == s.shape);
        // the shape read off a file of these tensors is the same config
        const vq::vq_config inferred = vq::config_from_checkpoint(in_memory(zeros_file(specs)));
        CHECK(inferred.str() == c.str());
        CHECK(vq::checkpoint_tensors(inferred).size() == specs.size());
    }
    CHECK(vq::vq16().str() == vq::config_from_json(slurp(vq_data("vq16_shapes.weights.json")), "vq16").str());
    CHECK(tiny_config().downsample() == 4);
    CHECK(vq::vq16().downsample() == 16);
    // conventions §5: about 126 GMAC for 16 x 16 tokens, 2.0 G for 2 x 2
    CHECK(vq::decode_macs(vq::vq16(), 16, 16) == Approx(126e9).epsilon(0.01));
    CHECK(vq::decode_macs(vq::vq16(), 2, 2) == Approx(2.0e9).epsilon(0.03));
}

TEST_CASE("vq_tiny: every activation, the output and the uint8 image equal the official decode_code", "[vq][golden]") {
    const vq::vq_weights w = tiny_weights();
    CHECK(w.config().str() == tiny_config().str());
    check_case("vq_tiny", w);
}

TEST_CASE("vq_tiny: the weights file is the procedural generator's output", "[vq][golden]") {
    const vq::vq_weights file = tiny_weights();
    const vq::vq_weights gen = vq::procedural_weights(tiny_config(), 1101, 0.7);
    for (std::size_t i = 0; i < file.tensors().size(); ++i) {
        INFO(file.tensors()[i].key);
        const auto a = file.storage(i), b = gen.storage(i);
        CHECK(std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
    }
}

TEST_CASE("vq_tiny: the bicubic eval resize to 16 px equals F.interpolate", "[vq][golden]") {
    const auto outputs = ordo::io::safetensors::open(vq_data("vq_tiny.outputs.safetensors"));
    const std::vector<float> dec = read_f32(outputs, "dec"), official = read_f32(outputs, "dec_bicubic16");
    std::vector<float> resized(3 * 16 * 16);
    ordo::eigen::bicubic_resize(dec, 3, 24, 24, resized, 16, 16);
    CHECK(tolerance::max_abs_diff(resized, official) < 1e-5f);
    // from our own decode: the decoder's tolerance carries over
    const vq::vq_weights w = tiny_weights();
    ordo::eigen::vq_decoder d(w);
    const std::vector<std::int64_t> codes = read_i64(outputs, "codes");
    std::vector<float> ours(3 * 24 * 24), ours16(3 * 16 * 16);
    d.decode(std::span<const std::int64_t>(codes), 6, 6, std::span<float>(ours));
    ordo::eigen::bicubic_resize(ours, 3, 24, 24, ours16, 16, 16);
    CHECK(tolerance::max_abs_diff(ours16, official) < kDecTolerance);
    // uint8: exact except where 127.5 x + 128 is within 0.01 of an integer (the golden rule)
    std::set<std::vector<std::int64_t>> near;
    for (std::int64_t y = 0; y < 16; ++y)
        for (std::int64_t x = 0; x < 16; ++x)
            for (std::int64_t c = 0; c < 3; ++c) {
                const double v = 127.5 * official[static_cast<std::size_t>((c * 16 + y) * 16 + x)] + 128.0;
                if (std::abs(v - std::round(v)) < 0.01) near.insert({0, y, x, c});
            }
    std::vector<std::uint8_t> u8(3 * 16 * 16);
    ordo::eigen::to_uint8(ours16, 16, 16, u8);
    check_uint8(u8, read_i64(outputs, "image_uint8_eval16"), near, 16, 16);
    // an upscale and a non-square resize: sizes are checked, values stay finite
    std::vector<float> up(3 * 30 * 50);
    ordo::eigen::bicubic_resize(dec, 3, 24, 24, up, 30, 50);
    CHECK(tolerance::max_abs(up) < 3.0f);
    CHECK_THROWS_WITH(ordo::eigen::bicubic_resize(dec, 3, 24, 24, up, 16, 16), Contains("buffer sizes do not match"));
}

TEST_CASE("vq16_shapes: the procedural weights match the golden checksums, then decode like the official VQ-16", "[vq][golden]") {
    const json wj = read_json(vq_data("vq16_shapes.weights.json"));
    const vq::vq_weights& w = vq16_weights();
    REQUIRE(w.tensors().size() == 197);
    for (std::size_t i = 0; i < w.tensors().size(); ++i) {
        const std::string& key = w.tensors()[i].key;
        INFO(key);
        const json& t = wj["tensors"][key];
        // the recipe's scale is the one the generator used
        const vq::procedural_scale s = vq::procedural_recipe(w.tensors()[i], wj["init"]["conv_out_gain"].get<double>());
        CHECK(s.amp == t["amp"].get<double>());
        CHECK(s.offset == t["offset"].get<double>());
        const auto v = w.storage(i);
        double sum = 0, sum_abs = 0;
        for (const float x : v) sum += x, sum_abs += std::abs(x);
        CHECK(std::abs(sum - t["sum_f64"].get<double>()) <= 1e-9 * t["sum_abs_f64"].get<double>());
        CHECK(sum_abs == Approx(t["sum_abs_f64"].get<double>()).epsilon(1e-12));
        const std::size_t n = t["first4"].size();  // fewer than 4 for conv_out.bias
        REQUIRE((n == std::min<std::size_t>(4, v.size()) && t["last4"].size() == n));
        for (std::size_t k = 0; k < n; ++k) {
            CHECK(v[k] == t["first4"][k].get<float>());
            CHECK(v[v.size() - n + k] == t["last4"][k].get<float>());
        }
    }
    check_case("vq16_shapes", w);
}

TEST_CASE("vq: a second image of the same size reuses the workspace and decodes the same", "[vq]") {
    const vq::vq_weights w = tiny_weights();
    ordo::eigen::vq_decoder dec(w);
    const std::vector<int> codes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, others{63, 0, 5, 9, 33, 2, 7, 7, 7, 1, 2, 3};
    std::vector<float> a(3 * 12 * 16), b(a.size()), c(a.size());
    dec.decode(std::span<const int>(codes), 3, 4, std::span<float>(a));  // non-square: 3 x 4 tokens -> 12 x 16 px
    const std::size_t bytes = dec.workspace_bytes();
    dec.decode(std::span<const int>(others), 3, 4, std::span<float>(b));
    dec.decode(std::span<const int>(codes), 3, 4, std::span<float>(c));
    CHECK(dec.workspace_bytes() == bytes);
    CHECK(a == c);
    CHECK(a != b);
    CHECK(tolerance::max_abs(a) < 10.0f);
    // a batch of two through the uint8 path equals the two images one by one
    std::vector<int> both(codes);
    both.insert(both.end(), others.begin(), others.end());
    std::vector<std::uint8_t> images(2 * 3 * 12 * 16), first(3 * 12 * 16);
    dec.decode_uint8(std::span<const int>(both), 2, 3, 4, std::span<std::uint8_t>(images));
    ordo::eigen::to_uint8(a, 12, 16, first);
    CHECK(std::equal(first.begin(), first.end(), images.begin()));
}

TEST_CASE("vq: a real checkpoint's encoder, quant_conv and usage buffer are skipped; other foreign tensors are refused", "[vq][errors]") {
    auto specs = vq::checkpoint_tensors(tiny_config());
    auto full = specs;
    full.push_back({"encoder.conv_in.weight", {32, 3, 3, 3}});
    full.push_back({"quant_conv.weight", {8, 32, 1, 1}});
    full.push_back({"quant_conv.bias", {8}});
    full.push_back({"quantize.codebook_used", {64}});
    const vq::vq_weights w = vq::load_checkpoint(in_memory(zeros_file(full)));
    CHECK(w.tensors().size() == specs.size());

    auto extra = specs;
    extra.push_back({"decoder.conv_blocks.2.attn.0.norm.bias", {32}});
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(zeros_file(extra))), Contains("unexpected tensor 'decoder.conv_blocks.2.attn.0.norm.bias' [32]"));
    auto foreign = specs;
    foreign.push_back({"tok_embeddings.weight", {64, 8}});
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(zeros_file(foreign))), Contains("unexpected tensor 'tok_embeddings.weight'") && Contains("not a LlamaGen VQ tokenizer"));
    auto missing = specs;
    missing.erase(missing.begin() + 5);
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(zeros_file(missing))), Contains("missing tensor '" + specs[5].key + "'"));
    auto misshaped = specs;
    for (auto& s : misshaped)
        if (s.key == "decoder.conv_out.weight") s.shape = {4, 32, 3, 3};
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(zeros_file(misshaped))),
                      Contains("tensor 'decoder.conv_out.weight' has shape [4, 32, 3, 3], a VQ decoder with") && Contains("needs [3, 32, 3, 3]"));
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(zeros_file({{"post_quant_conv.weight", {32, 8, 1, 1}}}))), Contains("not a VQ tokenizer"));
    auto no_codebook = specs;
    no_codebook.erase(no_codebook.begin());
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(zeros_file(no_codebook))), Contains("missing tensor 'quantize.embedding.weight'"));
}

TEST_CASE("vq: a truncated or malformed file is refused naming the problem", "[vq][errors]") {
    const std::string bytes = slurp(vq_data("vq_tiny.weights.safetensors"));
    std::vector<std::byte> cut(bytes.size() / 2);
    std::memcpy(cut.data(), bytes.data(), cut.size());
    CHECK_THROWS_WITH(vq::load_checkpoint(in_memory(cut)), Contains("truncated file"));
    std::vector<std::byte> junk(64, std::byte{'x'});
    CHECK_THROWS_AS(vq::load_checkpoint(in_memory(junk)), ordo::error);
    CHECK_THROWS_WITH(ordo::io::safetensors::open(vq_data("no_such.safetensors")), Contains("no_such.safetensors"));
    CHECK_THROWS_WITH(vq::config_from_json("{\"model_args\": {\"decoder_ch_mult\": [1, \"2\"]}}", "cfg.json"), Contains("cfg.json: 'decoder_ch_mult' entries must be integers"));
    CHECK_THROWS_WITH(vq::config_from_json("[1]", "cfg.json"), Contains("not a JSON object"));
    CHECK_THROWS_AS(vq::config_from_json("{\"model_args\": {", "cfg.json"), ordo::error);
}

TEST_CASE("vq: GroupNorm widths not divisible by 32 are refused before anything is allocated", "[vq][errors]") {
    vq::vq_config c = tiny_config();
    c.ch = 48;  // widths 48, 96, 96
    CHECK_THROWS_WITH(c.validate(), Contains("GroupNorm(32) needs every decoder width divisible by 32; ch 48 * ch_mult[0] = 48 is not"));
    CHECK_THROWS_WITH(vq::vq_weights(c), Contains("divisible by 32"));
    // a checkpoint of such widths: refused when its shape is read, before the arena
    vq::vq_tensors<float> t;
    t.shape(c);
    std::vector<ordo::models::llamagen::tensor_spec> specs;
    t.each([&](const std::string& key, const float*&, const std::vector<std::int64_t>& shape) { specs.push_back({key, shape}); });
    CHECK_THROWS_WITH(vq::config_from_checkpoint(in_memory(zeros_file(specs))), Contains("is not"));
    c.ch = 1 << 20;
    CHECK_THROWS_WITH(c.validate(), Contains("ch 1048576 is outside"));
}

TEST_CASE("vq: token ids outside the codebook, a vocabulary that is not the codebook, grids the decoder cannot produce", "[vq][errors]") {
    const vq::vq_weights w = tiny_weights();
    ordo::eigen::vq_decoder dec(w);
    std::vector<float> out(3 * 8 * 8);
    const std::vector<int> bad{0, 1, 64, 2};
    CHECK_THROWS_WITH(dec.decode(std::span<const int>(bad), 2, 2, std::span<float>(out)),
                      Contains("token 64 at row 1, column 0 is outside the codebook of 64 entries"));
    const std::vector<std::int64_t> negative{0, -1, 3, 2};
    CHECK_THROWS_WITH(dec.decode(std::span<const std::int64_t>(negative), 2, 2, std::span<float>(out)), Contains("token -1 at row 0, column 1"));
    const std::vector<int> ok{0, 1, 2, 3};
    std::vector<float> small(10);
    CHECK_THROWS_WITH(dec.decode(std::span<const int>(ok), 2, 2, std::span<float>(small)), Contains("the output holds 10 floats, a 8x8 image needs 192"));
    CHECK_THROWS_WITH(dec.decode(std::span<const int>(ok), 1, 3, std::span<float>(out)), Contains("4 token ids for a 1x3 grid"));
    CHECK_THROWS_WITH(dec.decode(std::span<const int>(ok), 0, 4, std::span<float>(out)), Contains("a token grid needs extents >= 1, got 0x4"));
    CHECK_THROWS_WITH(dec.check_grid(4097, 4), Contains("a 4097x4 token grid decodes to 16388x16 pixels, over the 16384-pixel side"));
    CHECK_THROWS_WITH(dec.check_grid(5000, 5000), Contains("over the 16384-pixel side"));
    std::vector<std::uint8_t> images(2 * 3 * 8 * 8);
    const std::vector<int> second_bad{0, 1, 2, 3, 0, 1, 2, 99};
    CHECK_THROWS_WITH(dec.decode_uint8(std::span<const int>(second_bad), 2, 2, 2, std::span<std::uint8_t>(images)), Contains("image 1: token 99"));
    CHECK(dec.workspace_bytes() == 0);  // every refusal came before the workspace
    CHECK_THROWS_WITH(vq::check_vocabulary(w.config(), 16384, "vq_tiny.safetensors"),
                      Contains("VQ tokenizer vq_tiny.safetensors has a codebook of 64 entries, the generator's vocabulary has 16384 tokens"));
    CHECK_NOTHROW(vq::check_vocabulary(w.config(), 64, "vq_tiny.safetensors"));
}

// The pixels do not depend on the thread count: each GEMM is split in fixed column chunks, one
// sequential Eigen GEMM each (vq.hpp, product()), never Eigen's own threaded GEMM, whose depth
// blocks follow the thread count. Every split is forced (minimum work 0) so the small configs run
// the threaded path too; on the code before the chunking, 2 threads changed the tiny decode's bits.
TEST_CASE("vq: the decoded pixels are bit-identical on 1, 2 and 3 threads", "[vq][threads]") {
    const int threads_before = ordo::eigen::threads();
    const double work_before = ordo::eigen::parallel_min_work();
    ordo::eigen::set_parallel_min_work(0);
    auto decode = [](const vq::vq_weights& w, ordo::index_t h, ordo::index_t gw, int threads) {
        ordo::eigen::set_threads(threads);
        ordo::eigen::vq_decoder dec(w);
        std::vector<int> codes(static_cast<std::size_t>(h * gw));
        for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<int>((i * 37 + 5) % static_cast<std::size_t>(w.config().codebook_size));
        std::vector<float> out(static_cast<std::size_t>(3 * dec.image_height(h) * dec.image_width(gw)));
        dec.decode(std::span<const int>(codes), h, gw, std::span<float>(out));
        return out;
    };
    const vq::vq_weights tiny = tiny_weights();
    for (const auto& [w, h, gw] : {std::tuple<const vq::vq_weights&, ordo::index_t, ordo::index_t>{tiny, 6, 6}, {tiny, 5, 9}, {vq16_weights(), 2, 3}}) {
        const std::vector<float> one = decode(w, h, gw, 1);
        CHECK(tolerance::max_abs(one) < 100.0f);
        for (const int n : {2, 3, 1}) {
            INFO(h << "x" << gw << " tokens, " << n << " threads");
            const std::vector<float> again = decode(w, h, gw, n);
            CHECK(std::memcmp(again.data(), one.data(), one.size() * sizeof(float)) == 0);
        }
    }
    ordo::eigen::set_threads(threads_before);
    ordo::eigen::set_parallel_min_work(work_before);
}
