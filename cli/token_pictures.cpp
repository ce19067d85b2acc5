// token_pictures.hpp: decoding and tiling token grids into one PNG, and `ordo decode`.
#include "token_pictures.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <ordo/io/text_file.hpp>

#include "commands.hpp"
#include "pictures.hpp"

namespace cli {

namespace {

constexpr ordo::index_t false_colour_cell = 16;  // px per token, the size VQ-16 would decode to
constexpr int tile_per_row = 4, tile_padding = 2;  // torchvision save_image: nrow=4, padding=2, black

// A token id's false colour: a hash of the id, kept away from black so cells stay visible.
pictures::rgb token_colour(ordo::index_t id) {
    std::uint64_t z = static_cast<std::uint64_t>(id) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    auto channel = [&](int shift) { return static_cast<std::uint8_t>(48 + ((z >> shift) & 0xff) * 207 / 255); };
    return {channel(0), channel(8), channel(16)};
}

}  // namespace

token_pictures::token_pictures(const std::string& vq_path) : vq_path_(vq_path) {
    if (vq_path.empty()) return;
    const ordo::io::safetensors file = ordo::io::safetensors::open(vq_path);
    weights_ = std::make_unique<ordo::models::vq::vq_weights>(ordo::models::vq::load_checkpoint(file));
    decoder_ = std::make_unique<ordo::eigen::vq_decoder>(*weights_);
}

void token_pictures::check(ordo::index_t rows, ordo::index_t cols, ordo::index_t vocab_size) const {
    if (decoder_) {
        if (vocab_size > 0) ordo::models::vq::check_vocabulary(weights_->config(), vocab_size, vq_path_);
        decoder_->check_grid(rows, cols);
        return;
    }
    if (1LL * rows * false_colour_cell > ordo::models::vq::vq_limits::image_side || 1LL * cols * false_colour_cell > ordo::models::vq::vq_limits::image_side)
        throw ordo::error("png: a " + std::to_string(rows) + "x" + std::to_string(cols) + " token grid is too large to draw (" +
                          std::to_string(false_colour_cell) + " px per token, at most " + std::to_string(ordo::models::vq::vq_limits::image_side) + " px a side)");
}

double token_pictures::write(const token_batch& t, const std::string& png_path, ordo::index_t eval_size) {
    check(t.rows, t.cols, 0);
    if (t.batch < 1 || t.ids.size() != static_cast<std::size_t>(t.batch) * static_cast<std::size_t>(t.rows) * static_cast<std::size_t>(t.cols))
        throw ordo::error("png: the token batch does not hold batch x rows x cols ids");
    if (eval_size < 0 || eval_size > ordo::models::vq::vq_limits::image_side)
        throw ordo::error("png: the eval size must be in 1.." + std::to_string(ordo::models::vq::vq_limits::image_side));
    if (eval_size > 0 && !decoder_) throw ordo::error("png: an eval resize needs a decoded image (give --vq)");
    const std::size_t per_codes = static_cast<std::size_t>(t.rows) * static_cast<std::size_t>(t.cols);
    const std::span<const ordo::index_t> ids(t.ids);
    if (decoder_)
        for (ordo::index_t b = 0; b < t.batch; ++b)
            decoder_->check_codes(ids.subspan(static_cast<std::size_t>(b) * per_codes, per_codes), t.cols, t.batch > 1 ? "image " + std::to_string(b) : "token grid");
    const ordo::index_t H = eval_size ? eval_size : image_height(t.rows), W = eval_size ? eval_size : image_width(t.cols);
    const int across = std::min<int>(t.batch, tile_per_row), down = (t.batch + across - 1) / across;
    const int pad = t.batch > 1 ? tile_padding : 0;
    const long long canvas_w = 1LL * across * (W + pad) + pad, canvas_h = 1LL * down * (H + pad) + pad;
    if (canvas_w > (1 << 16) || canvas_h > (1 << 16) || canvas_w * canvas_h > (1LL << 28))
        throw ordo::error("png: " + std::to_string(t.batch) + " images of " + std::to_string(H) + "x" + std::to_string(W) + " px tile to " + std::to_string(canvas_h) +
                          "x" + std::to_string(canvas_w) + " px, too large for one PNG");
    std::vector<std::uint8_t> canvas(static_cast<std::size_t>(canvas_w * canvas_h * 3), 0);
    std::vector<std::uint8_t> one;
    double seconds = 0;
    for (ordo::index_t b = 0; b < t.batch; ++b) {
        seconds += draw(ids.subspan(static_cast<std::size_t>(b) * per_codes, per_codes), t.rows, t.cols, one, eval_size);
        const long long x0 = (b % across) * (W + pad) + pad, y0 = (b / across) * (H + pad) + pad;
        for (ordo::index_t y = 0; y < H; ++y)
            std::copy_n(one.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(W) * 3, static_cast<std::size_t>(W) * 3,
                        canvas.data() + static_cast<std::size_t>(((y0 + y) * canvas_w + x0) * 3));
    }
    pictures::write_png(png_path, static_cast<int>(canvas_w), static_cast<int>(canvas_h), canvas.data());
    return seconds;
}

ordo::index_t token_pictures::image_height(ordo::index_t rows) const { return decoder_ ? decoder_->image_height(rows) : rows * false_colour_cell; }
ordo::index_t token_pictures::image_width(ordo::index_t cols) const { return decoder_ ? decoder_->image_width(cols) : cols * false_colour_cell; }

double token_pictures::draw(std::span<const ordo::index_t> codes, ordo::index_t rows, ordo::index_t cols, std::vector<std::uint8_t>& rgb, ordo::index_t eval_size,
                            const std::string& what) {
    if (codes.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols)) throw ordo::error("png: the token grid does not hold rows x cols ids");
    if (eval_size > 0 && !decoder_) throw ordo::error("png: an eval resize needs a decoded image (give --vq)");
    const ordo::index_t H = eval_size ? eval_size : image_height(rows), W = eval_size ? eval_size : image_width(cols);
    rgb.resize(static_cast<std::size_t>(H) * static_cast<std::size_t>(W) * 3);
    if (!decoder_) {
        for (ordo::index_t y = 0; y < H; ++y)
            for (ordo::index_t x = 0; x < W; ++x) {
                const pictures::rgb c = token_colour(codes[static_cast<std::size_t>(y / false_colour_cell * cols + x / false_colour_cell)]);
                std::uint8_t* p = rgb.data() + (static_cast<std::size_t>(y) * static_cast<std::size_t>(W) + static_cast<std::size_t>(x)) * 3;
                p[0] = c.r, p[1] = c.g, p[2] = c.b;
            }
        return 0;
    }
    decoder_->check_codes(codes, cols, what);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> image(3 * static_cast<std::size_t>(decoder_->image_height(rows)) * static_cast<std::size_t>(decoder_->image_width(cols)));
    decoder_->decode(codes, rows, cols, std::span<float>(image));
    if (eval_size) {
        std::vector<float> resized(3 * static_cast<std::size_t>(H) * static_cast<std::size_t>(W));
        ordo::eigen::bicubic_resize(image, 3, decoder_->image_height(rows), decoder_->image_width(cols), resized, H, W);
        image.swap(resized);
    }
    ordo::eigen::to_uint8(image, H, W, rgb);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void add_decode(CLI::App& app, decode_args& a, CLI::App*& cmd) {
    cmd = app.add_subcommand("decode", "turn saved token grids into pictures with a VQ tokenizer (LlamaGen's VQ-16 decoder on the CPU)");
    cmd->add_option("--tokens", a.tokens, "token grids as `ordo generate --out` writes them ({\"tokens\": ...})")->required();
    cmd->add_option("--vq", a.vq, "VQ tokenizer checkpoint (safetensors, official key names); without it: false colour");
    cmd->add_option("--png", a.png, "where to write the picture (a batch is tiled, 4 per row)")->required();
    cmd->add_option("--eval-size", a.eval_size, "resize each image to N x N px (bicubic, the official eval resize) before the uint8 step")
        ->check(CLI::Range(1, static_cast<int>(ordo::models::vq::vq_limits::image_side)));
    add_threads_option(cmd, a.threads);
}

int run_decode(const decode_args& a) {
    apply_threads(a.threads);
    const token_batch t = parse_token_file(ordo::io::read_text_file(a.tokens, max_token_file_bytes, "token file"), a.tokens);
    token_pictures pics(a.vq);
    pics.check(t.rows, t.cols, 0);
    const double seconds = pics.write(t, a.png, a.eval_size);
    if (pics.decodes()) {
        const double macs = ordo::models::vq::decode_macs(*pics.config(), t.rows, t.cols) * t.batch;
        std::fprintf(stderr, "decoded %d image%s of %dx%d tokens to %s in %.3f s (%.1f GMAC, %.1f GMAC/s)\n", t.batch, t.batch > 1 ? "s" : "", t.rows, t.cols,
                     a.png.c_str(), seconds, macs / 1e9, macs / 1e9 / std::max(seconds, 1e-9));
    } else {
        std::fprintf(stderr, "drew %d token grid%s of %dx%d in false colour to %s\n", t.batch, t.batch > 1 ? "s" : "", t.rows, t.cols, a.png.c_str());
    }
    return 0;
}

}  // namespace cli
