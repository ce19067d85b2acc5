// Pictures for `ordo compare` and lesson 1: step maps, per-step KL curves, the KL-vs-steps scatter
// and sample fields, as PNG files. The drawing and the stb implementation live in pictures.cpp
// (target ordo_pictures).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <ordo/ordo.hpp>

namespace pictures {

struct rgb {
    std::uint8_t r = 255, g = 255, b = 255;
};

struct series_data {
    std::string name;
    std::vector<double> x, y;
};

// viridis, sampled at 9 points and interpolated: perceptually even, readable in grey
rgb viridis(double t);
// A qualitative palette for series (one colour per policy).
rgb series(std::size_t i);
// Each cell coloured by the step that emits it (early dark, late bright); frames side by side.
void step_map(const ordo::plan& p, const std::string& title, const std::string& path);
// A line plot with axes, ticks at the ends and a legend. log_x/log_y: logarithmic axes (values
// <= 0 are drawn at the bottom of a log axis).
void plot(const std::vector<series_data>& s, const std::string& title, const std::string& xlabel, const std::string& ylabel, bool log_x, bool log_y, bool points, const std::string& path);
// An RGB image, `height` rows of width * 3 bytes, as a PNG file.
void write_png(const std::string& path, int width, int height, const std::uint8_t* rgb);
// Images of width x height RGB bytes side by side, each with its name above it; images narrower
// than 128 px are enlarged (nearest neighbour, whole factors) so that a tiny tokenizer's stay visible.
void labelled_strip(const std::vector<std::string>& names, const std::vector<std::vector<std::uint8_t>>& images, int width, int height, const std::string& path);
// Sample fields side by side: the true field, then what each order generates from the same noise.
void samples(const ordo::grid_shape& g, const std::vector<std::pair<std::string, Eigen::VectorXd>>& fields, const std::string& title, const std::string& path);

}  // namespace pictures
