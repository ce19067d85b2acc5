// Token grids as pictures (`ordo generate --png`, `ordo decode`): decoded by a VQ tokenizer (the
// official uint8 images), or without one as false colour (each token id a colour, one block of
// 16 x 16 px per token) so that every run shows something. A batch is tiled as torchvision's
// save_image tiles it (4 per row, 2 px black padding; one image alone is written as it is).
#pragma once

#include <memory>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <ordo/eigen/vq.hpp>
#include <ordo/models/vq/checkpoint.hpp>

#include "token_file.hpp"

namespace cli {

class token_pictures {
public:
    // Loads the tokenizer at `vq_path` (checked strictly); empty: false colour.
    explicit token_pictures(const std::string& vq_path);

    bool decodes() const { return decoder_ != nullptr; }
    const ordo::models::vq::vq_config* config() const { return weights_ ? &weights_->config() : nullptr; }
    // Throws unless grids of rows x cols from a generator of `vocab_size` tokens can be drawn: the
    // codebook must be the vocabulary and the decoder must produce the grid (or, in false colour,
    // the picture must fit a PNG). Runs before anything is generated or written.
    void check(ordo::index_t rows, ordo::index_t cols, ordo::index_t vocab_size) const;
    // The picture of a rows x cols grid in px: decoded, or 16 px per token in false colour.
    ordo::index_t image_height(ordo::index_t rows) const;
    ordo::index_t image_width(ordo::index_t cols) const;
    // Draws one token grid (its ids checked against the codebook first; `what` names it in that
    // error) as image_height(rows) x image_width(cols) RGB bytes, or eval_size x eval_size when
    // eval_size > 0. Returns the seconds spent decoding.
    double draw(std::span<const ordo::index_t> codes, ordo::index_t rows, ordo::index_t cols, std::vector<std::uint8_t>& rgb, ordo::index_t eval_size = 0,
                const std::string& what = "token grid");
    // Writes the batch as one PNG (every id checked first); `eval_size` > 0 resizes each decoded
    // image to eval_size x eval_size (bicubic, the official eval resize) before the uint8 step.
    // Returns the seconds spent decoding.
    double write(const token_batch& tokens, const std::string& png_path, ordo::index_t eval_size = 0);

private:
    std::string vq_path_;
    std::unique_ptr<ordo::models::vq::vq_weights> weights_;
    std::unique_ptr<ordo::eigen::vq_decoder> decoder_;
};

}  // namespace cli
