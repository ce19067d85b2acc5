// The CPU backend's inputs are bounded: a config is read with a size cap and a nesting bound, its
// numbers parse the same in any locale, its sizes have upper limits, a config that does not match
// the checkpoint is refused before the weight arena exists, and the oracle refuses a grid whose
// covariance would not fit, naming the memory it would need.
#include <catch2/catch.hpp>

#include <clocale>
#include <cstdio>
#include <fstream>
#include <locale>
#include <string>

#include <nlohmann/json.hpp>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/oracle/oracle.hpp>
#include <ordo/io/text_file.hpp>
#include <ordo/ordo.hpp>

using Catch::Contains;

namespace {

std::string e2e(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }

// A file under the working directory, removed when the test ends.
struct temp_file {
    std::string path;
    temp_file(const std::string& name, const std::string& text) : path(name) { std::ofstream(path, std::ios::binary) << text; }
    ~temp_file() { std::remove(path.c_str()); }
};

// ',' as the decimal point for iostreams (a facet a host application might install globally)
struct comma_numpunct : std::numpunct<char> {
    char do_decimal_point() const override { return ','; }
    char do_thousands_sep() const override { return '.'; }
    std::string do_grouping() const override { return "\3"; }
};

}  // namespace

TEST_CASE("a config that does not match the checkpoint is refused before the weight arena is allocated", "[gpt][errors][limits]") {
    const auto raster = ordo::io::safetensors::open(e2e("raster_G8_cfg2.0_label3.weights.safetensors"));
    // the golden config, edited and written to a file: a width and depth whose arena would be 13 TB
    nlohmann::json j = nlohmann::json::parse(ordo::io::read_text_file(e2e("raster_G8_cfg2.0_label3.weights.json"), 1 << 20));
    j["model_args"]["dim"] = 16384;
    j["model_args"]["n_layer"] = 1024;
    const temp_file edited("ordo_test_edited_config.json", j.dump());
    const ordo::models::llamagen::gpt_config big = ordo::models::llamagen::model_args_from_file(edited.path);
    CHECK(big.n_layer == 1024);
    REQUIRE_THROWS_WITH(ordo::models::llamagen::load_weights(raster, big),
                        Contains("tensor 'cls_embedding.embedding_table.weight' has shape [11, 64]") && Contains("needs [11, 16384]"));
    // one layer too many: named by the first missing tensor
    j = nlohmann::json::parse(ordo::io::read_text_file(e2e("raster_G8_cfg2.0_label3.weights.json"), 1 << 20));
    j["model_args"]["n_layer"] = 3;
    const temp_file deeper("ordo_test_deeper_config.json", j.dump());
    REQUIRE_THROWS_WITH(ordo::models::llamagen::load_weights(raster, ordo::models::llamagen::model_args_from_file(deeper.path)), Contains("missing tensor 'layers.2.attention.wqkv.weight'"));
}

TEST_CASE("gpt_config::validate() has upper bounds", "[gpt][errors][limits]") {
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"n_layer": 100000})"), Contains("n_layer + medusa_attention_num 100000 is over the limit of 1024"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"n_layer": 1000, "medusa_attention_num": 100})"), Contains("1100 is over the limit of 1024"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": 131072, "n_head": 1024})"), Contains("dim 131072 is over the limit of 65536"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": 65536, "n_head": 4096})"), Contains("n_head 4096 is over the limit of 1024"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"vocab_size": 2000000000})"), Contains("vocab_size 2000000000 is over the limit of 4194304"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"num_classes": 2147483647})"), Contains("num_classes 2147483647 is over the limit"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"multiple_of": 2147483647})"), Contains("multiple_of 2147483647 is over the limit of 65536"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"spe_token_num": 2147483647})"), Contains("spe_token_num 2147483647 is over the limit of 4194304"));
    // a multiplier that would overflow the hidden size's arithmetic
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"ffn_dim_multiplier": 1e30})"), Contains("ffn_dim_multiplier must be in [0, 64]"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"norm_eps": 1e300})"), Contains("'norm_eps' must be a number in the range of a float"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"rope_base": 1e999})"), Contains("'rope_base' must be a number in the range of a double"));
    // products of sizes each within its limit: the class table of a wide model
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": 16384, "n_head": 256, "vocab_size": 16, "num_classes": 4194304})"),
                      Contains("class embedding size overflows the 32-bit index type"));
    // every published size passes
    for (const ordo::models::llamagen::gpt_preset& p : ordo::models::llamagen::gpt_presets) CHECK_NOTHROW(ordo::models::llamagen::make_preset(p.name).validate());
}

TEST_CASE("a config is read with a size cap and a nesting bound", "[gpt][errors][limits]") {
    // /dev/zero never ends: the read stops one byte past the cap
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_file("/dev/zero"), Contains("config /dev/zero is larger than 1.0 MiB, the limit for a config"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_file("ordo_test_no_such_config.json"), Contains("cannot read config ordo_test_no_such_config.json"));
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(std::string(2 << 20, ' ') + "{}"), Contains("2.0 MiB of model args, over the 1.0 MiB limit"));
    // "model_args" inside "model_args" 60000 deep (900 kB): each level recursed, and overflowed the stack
    const int n = 60000;
    std::string deep;
    for (int i = 0; i < n; ++i) deep += "{\"model_args\":";
    deep += "{}" + std::string(static_cast<std::size_t>(n), '}');
    REQUIRE(deep.size() < ordo::models::llamagen::max_model_args_bytes);
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(deep), Contains("nesting deeper than 64 levels"));
    // 100000 nested '[' in a field the reader skips
    const std::string brackets = "{\"extras\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
    CHECK_THROWS_WITH(ordo::models::llamagen::model_args_from_json(brackets), Contains("nesting deeper than 64 levels"));
    // a real config through the file reader
    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::model_args_from_file(e2e("nar_G8_cfg2.0_label3.weights.json"));
    CHECK(c.dim == 64);
    CHECK(c.extra_blocks == 1);
}

TEST_CASE("config numbers parse the same in any locale", "[gpt][limits]") {
    const std::string text = R"({"dim": 64, "n_head": 4, "norm_eps": 1.5e-06, "rope_base": 10000.5, "ffn_dim_multiplier": 1.5})";
    auto check = [&] {
        const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::model_args_from_json(text);
        CHECK(c.norm_eps == 1.5e-06f);
        CHECK(c.rope_base == 10000.5f);
        CHECK(c.ffn_dim_multiplier == 1.5f);
    };
    check();
    // iostreams: a global locale whose decimal point is ','
    {
        const std::locale before = std::locale::global(std::locale(std::locale::classic(), new comma_numpunct));
        check();
        std::locale::global(before);
    }
    // the C library (strtod and friends): a named locale with ',' (LOCPATH may point at one made by localedef)
    const std::string before = std::setlocale(LC_NUMERIC, nullptr);
    bool found = false;
    for (const char* name : {"de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8", "nl_NL.UTF-8", "it_IT.UTF-8"}) {
        if (!std::setlocale(LC_NUMERIC, name)) continue;
        if (std::localeconv()->decimal_point[0] != ',') continue;
        found = true;
        INFO("C locale " << name);
        check();
        break;
    }
    std::setlocale(LC_NUMERIC, before.c_str());
    if (!found) WARN("no locale with a ',' decimal point is installed (locale -a): the C-library half of this test did not run");
}

TEST_CASE("the oracle refuses a grid whose covariance would not fit, naming the memory", "[oracle][errors][limits]") {
    const ordo::grid_shape big = ordo::grid_shape::make(256, 256);
    const ordo::oracle::field_kernel k = ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0);
    CHECK(ordo::oracle::oracle_bytes(65536) == 3ull * 8 * 65536 * 65536);
    CHECK(ordo::oracle::oracle_bytes(ordo::max_index) == UINT64_MAX);
    CHECK_THROWS_WITH(ordo::oracle::field_covariance(big, k), Contains("grid 256x256 (65536 positions) needs 96.0 GiB") && Contains("limit of 2.0 GiB"));
    CHECK_THROWS_WITH(ordo::oracle::exact_kl(ordo::make_plan(ordo::raster{}, big).view(), k), Contains("needs 96.0 GiB"));
    // the limit is the caller's: 8x8 needs 96 KiB
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    CHECK_THROWS_WITH(ordo::oracle::field_covariance(g, k, 1000), Contains("needs 96.0 KiB") && Contains("limit of 1000 bytes"));
    CHECK(ordo::oracle::field_covariance(g, k, ordo::oracle::oracle_bytes(64)).rows() == 64);
}
