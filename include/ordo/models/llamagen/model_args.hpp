// ordo/models/llamagen/model_args.hpp - a gpt_config from the official ModelArgs written as JSON
// (`json.dumps(dataclasses.asdict(args))`): a bare object, or a file holding it under
// "model_args" (the golden .weights.json files), or RandAR's constructor keyword arguments under
// "constructor_args" (RandARTransformer(**args): the same names). Fields that do not shape the
// weights (dropouts, init range, batch and sequence limits) are accepted and ignored; a shaping
// field of the wrong type is an error naming it. RandAR's own arguments (position_order,
// num_inference_steps, zero_class_qk) mark a RandARTransformer, which always holds the
// position-instruction vector: any of them sets gpt_config::position_instruction (as does ordo's
// own "position_instruction": true/false).
#pragma once

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "../../io/safetensors.hpp"
#include "../../io/text_file.hpp"
#include "gpt_config.hpp"

namespace ordo::models::llamagen {

// The most text a ModelArgs config may hold (the official ones are under 1 kB).
inline constexpr std::size_t max_model_args_bytes = std::size_t{1} << 20;

namespace detail {
class model_args_reader {
public:
    model_args_reader(std::string_view text, const std::string& source) : text_(text), src_(source), in_(text, source) {}

    // depth: how many "model_args" objects enclose this one (each is a level of recursion)
    gpt_config read(int depth = 0) {
        if (depth > io::detail::json_max_depth) in_.syntax("nesting deeper than " + ordo::detail::itos(io::detail::json_max_depth) + " levels");
        gpt_config c;
        c.multiple_of = 256;  // the ModelArgs defaults that differ from a preset's
        bool found = false;
        in_.expect('{', "a JSON object");
        if (!in_.consume('}')) {
            do {
                std::string key;
                if (in_.peek() != '"') in_.syntax("expected a string key");
                in_.string(&key);
                in_.expect(':', "':' after a key");
                if (key == "model_args" || key == "constructor_args") {
                    if (in_.peek() != '{') fail(key, "an object");
                    c = read(depth + 1);  // the nested object is the config
                    found = true;
                } else if (!found) {
                    field(key, c);
                } else {
                    in_.skip_value();
                }
            } while (in_.consume(','));
            in_.expect('}', "',' or '}'");
        }
        return c;
    }
    void finish() {
        if (!in_.at_end()) in_.syntax("trailing characters after the object");
    }

private:
    void field(const std::string& key, gpt_config& c) {
        if (key == "dim") c.dim = integer(key);
        else if (key == "n_layer") c.n_layer = integer(key);
        else if (key == "n_head") c.n_head = integer(key);
        else if (key == "n_kv_head") c.n_kv_head = null_or_integer(key, 0);
        else if (key == "vocab_size") c.vocab_size = integer(key);
        else if (key == "num_classes") c.num_classes = integer(key);
        else if (key == "cls_token_num") c.cls_token_num = integer(key);
        else if (key == "multiple_of") c.multiple_of = integer(key);
        else if (key == "ffn_dim_multiplier") c.ffn_dim_multiplier = null_or_real(key, 0.0);
        else if (key == "norm_eps") c.norm_eps = real_float(key);
        else if (key == "rope_base") c.rope_base = real_float(key);
        else if (key == "spe_token_num") c.transition_tokens = null_or_integer(key, 0);
        else if (key == "medusa_attention_num") c.extra_blocks = null_or_integer(key, 0);
        else if (key == "position_instruction") c.position_instruction = boolean(key);
        else if (key == "position_order" || key == "num_inference_steps" || key == "zero_class_qk") {
            in_.skip_value();  // RandARTransformer's own arguments: they shape no weight but mark the model
            c.position_instruction = true;
        }
        else if (key == "model_type") {
            std::string t;
            if (in_.peek() != '"') fail(key, "a string");
            in_.string(&t);
            if (t != "c2i") throw error(src_ + ": model_type '" + t + "': this backend runs class-conditional (c2i) models");
        } else {
            in_.skip_value();
        }
    }
    [[noreturn]] void fail(const std::string& key, const char* want) const {
        throw error(src_ + ": model args field '" + key + "' must be " + want);
    }
    double real(const std::string& key) {
        const char c = in_.peek();
        if (c != '-' && (c < '0' || c > '9')) fail(key, "a number");
        const auto n = in_.number();
        // from_chars: '.' is the decimal point whatever the process locale (strtod would follow it)
        const char* first = text_.data() + n.at;
        const char* last = text_.data() + in_.pos();
        double v = 0;
        const auto r = std::from_chars(first, last, v);
        if (r.ec == std::errc::result_out_of_range) fail(key, "a number in the range of a double");
        if (r.ec != std::errc() || r.ptr != last) fail(key, "a number");
        return v;
    }
    float real_float(const std::string& key) {
        const double v = real(key);
        if (!(std::fabs(v) <= std::numeric_limits<float>::max())) fail(key, "a number in the range of a float");
        return static_cast<float>(v);
    }
    index_t integer(const std::string& key) {
        const char c = in_.peek();
        if (c != '-' && (c < '0' || c > '9')) fail(key, "an integer");
        const auto n = in_.number();
        if (!n.integer || n.overflow || n.magnitude > static_cast<std::uint64_t>(max_index)) fail(key, "an integer in the 32-bit range");
        return n.negative ? -static_cast<index_t>(n.magnitude) : static_cast<index_t>(n.magnitude);
    }
    bool boolean(const std::string& key) {
        const char c = in_.peek();
        if (c != 't' && c != 'f') fail(key, "true or false");
        const std::size_t at = in_.pos();
        in_.skip_value();
        return text_[at] == 't';
    }
    index_t null_or_integer(const std::string& key, index_t none) {
        if (in_.peek() == 'n') { in_.skip_value(); return none; }
        return integer(key);
    }
    float null_or_real(const std::string& key, double none) {
        if (in_.peek() == 'n') { in_.skip_value(); return static_cast<float>(none); }
        return real_float(key);
    }

    std::string_view text_;
    std::string src_;
    io::detail::json_cursor in_;
};
}  // namespace detail

// `source` names the text in error messages (a file name).
inline gpt_config model_args_from_json(std::string_view text, const std::string& source = "model args") {
    if (text.size() > max_model_args_bytes)
        throw error(source + ": " + ordo::detail::bytes_str(text.size()) + " of model args, over the " + ordo::detail::bytes_str(max_model_args_bytes) +
                    " limit (ordo::models::llamagen::max_model_args_bytes)");
    detail::model_args_reader r(text, source);
    gpt_config c = r.read();
    r.finish();
    c.validate();
    return c;
}

// A config file (see model_args_from_json), read with the max_model_args_bytes cap.
inline gpt_config model_args_from_file(const std::string& path) {
    return model_args_from_json(io::read_text_file(path, max_model_args_bytes, "config"), path);
}
}  // namespace ordo::models::llamagen
