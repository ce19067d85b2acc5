// Token grids as `ordo generate` writes them: {"tokens": ROWS} for one image, {"tokens": [ROWS,
// ROWS, ...]} for a batch, ROWS a list of rows of token ids (raster order), optionally "grid":
// "HxW" to cross-check. A bare list (ROWS or a list of ROWS) reads too. The reader is bounded (the
// text by max_token_file_bytes, nesting and memory by json_document) and every malformed file is an
// ordo::error naming the problem: tests/fuzz/fuzz_token_file.cpp throws bytes at it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ordo/io/json.hpp>
#include <ordo/ordo.hpp>

namespace cli {

inline constexpr std::size_t max_token_file_bytes = std::size_t{64} << 20;

// B images of rows x cols token ids, image-major then raster order.
struct token_batch {
    ordo::index_t batch = 0, rows = 0, cols = 0;
    std::vector<ordo::index_t> ids;
};

inline token_batch parse_token_file(std::string_view text, const std::string& source) {
    using doc_t = ordo::detail::json_document;
    using jt = doc_t::type;
    const doc_t doc(text, source, max_token_file_bytes);
    std::uint32_t list = doc.root();
    std::string grid;
    if (doc.at(list).kind == jt::object) {
        const long long t = doc.find(doc.root(), "tokens");
        if (t < 0) throw ordo::error(source + ": no \"tokens\" (a token file is {\"tokens\": [[row], ...]} as `ordo generate` writes it)");
        list = static_cast<std::uint32_t>(t);
        if (const long long g = doc.find(doc.root(), "grid"); g >= 0) {
            if (doc.at(static_cast<std::uint32_t>(g)).kind != jt::string) throw ordo::error(source + ": \"grid\" must be a string like \"16x16\"");
            grid = std::string(doc.string(static_cast<std::uint32_t>(g)));
        }
    }
    const auto is_array = [&](std::uint32_t id) { return doc.at(id).kind == jt::array; };
    if (!is_array(list) || doc.at(list).count == 0) throw ordo::error(source + ": \"tokens\" must be a non-empty list of rows (or of images)");
    // a batch when the elements are lists of lists
    const std::uint32_t first = doc.element(list, 0);
    const bool batched = is_array(first) && doc.at(first).count > 0 && is_array(doc.element(first, 0));
    token_batch b;
    b.batch = batched ? static_cast<ordo::index_t>(doc.at(list).count) : 1;
    for (ordo::index_t img = 0; img < b.batch; ++img) {
        const std::uint32_t rows = batched ? doc.element(list, static_cast<std::uint32_t>(img)) : list;
        const std::string where = batched ? "image " + std::to_string(img) : std::string("the grid");
        if (!is_array(rows) || doc.at(rows).count == 0) throw ordo::error(source + ": " + where + " must be a non-empty list of rows");
        if (img == 0) b.rows = static_cast<ordo::index_t>(doc.at(rows).count);
        else if (static_cast<ordo::index_t>(doc.at(rows).count) != b.rows)
            throw ordo::error(source + ": " + where + " has " + std::to_string(doc.at(rows).count) + " rows, image 0 has " + std::to_string(b.rows));
        for (std::uint32_t r = 0; r < doc.at(rows).count; ++r) {
            const std::uint32_t row = doc.element(rows, r);
            if (!is_array(row) || doc.at(row).count == 0) throw ordo::error(source + ": " + where + ", row " + std::to_string(r) + " is not a non-empty list of token ids");
            if (img == 0 && r == 0) b.cols = static_cast<ordo::index_t>(doc.at(row).count);
            else if (static_cast<ordo::index_t>(doc.at(row).count) != b.cols)
                throw ordo::error(source + ": " + where + ", row " + std::to_string(r) + " has " + std::to_string(doc.at(row).count) + " tokens, row 0 of image 0 has " +
                                  std::to_string(b.cols) + " (rows must be equally long)");
            for (std::uint32_t c = 0; c < doc.at(row).count; ++c) {
                const auto& v = doc.at(doc.element(row, c));
                if (v.kind != jt::number || !v.integral || v.number < 0 || v.number > ordo::max_index)
                    throw ordo::error(source + ": " + where + ", row " + std::to_string(r) + ", column " + std::to_string(c) + " is not a token id (an integer >= 0)");
                b.ids.push_back(static_cast<ordo::index_t>(v.number));
            }
        }
    }
    if (!grid.empty()) {
        const std::string have = std::to_string(b.rows) + "x" + std::to_string(b.cols);
        if (grid != have) throw ordo::error(source + ": \"grid\" says " + grid + ", the token rows are " + have);
    }
    return b;
}

}  // namespace cli
