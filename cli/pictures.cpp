// The pictures of pictures.hpp, drawn with stb_image_write (Debian's libstb-dev; text with
// stb_easy_font), whose implementation is compiled here, once.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <ordo/oracle/oracle.hpp>
#include <ordo/ordo.hpp>

#include "pictures.hpp"

namespace pictures {


// viridis, sampled at 9 points and interpolated: perceptually even, readable in grey
rgb viridis(double t) {
    static const double c[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                   {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
    t = std::clamp(t, 0.0, 1.0) * 8.0;
    const int i = std::min(7, static_cast<int>(t));
    const double f = t - i;
    auto mix = [&](int k) { return static_cast<std::uint8_t>(std::lround(c[i][k] + (c[i + 1][k] - c[i][k]) * f)); };
    return {mix(0), mix(1), mix(2)};
}

// A qualitative palette for series (one colour per policy).
rgb series(std::size_t i) {
    static const rgb p[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
    return p[i % (sizeof p / sizeof p[0])];
}

class image {
public:
    image(int w, int h, rgb bg = {}) : w_(w), h_(h), px_(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), bg) {}
    int width() const { return w_; }
    int height() const { return h_; }
    void set(int x, int y, rgb c) {
        if (x >= 0 && y >= 0 && x < w_ && y < h_) px_[static_cast<std::size_t>(y) * static_cast<std::size_t>(w_) + static_cast<std::size_t>(x)] = c;
    }
    void fill(int x0, int y0, int w, int h, rgb c) {
        for (int y = y0; y < y0 + h; ++y)
            for (int x = x0; x < x0 + w; ++x) set(x, y, c);
    }
    void line(double x0, double y0, double x1, double y1, rgb c, int thick = 1) {
        const int n = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
        for (int i = 0; i <= n; ++i) {
            const double t = static_cast<double>(i) / n;
            fill(static_cast<int>(std::lround(x0 + (x1 - x0) * t)) - thick / 2, static_cast<int>(std::lround(y0 + (y1 - y0) * t)) - thick / 2, thick, thick, c);
        }
    }
    // Text at (x, y), top-left, `scale` pixels per font unit (stb_easy_font: ~7 units tall).
    void text(int x, int y, const std::string& s, rgb c, int scale = 2) {
        static char buf[64000];
        const int quads = stb_easy_font_print(0, 0, const_cast<char*>(s.c_str()), nullptr, buf, sizeof buf);
        const float* v = reinterpret_cast<const float*>(buf);
        for (int q = 0; q < quads; ++q) {
            const float* a = v + q * 16;  // 4 vertices of x, y, z, colour
            const float qx0 = a[0], qy0 = a[1], qx1 = a[8], qy1 = a[9];
            fill(x + static_cast<int>(qx0 * scale), y + static_cast<int>(qy0 * scale), static_cast<int>((qx1 - qx0) * scale),
                 static_cast<int>((qy1 - qy0) * scale), c);
        }
    }
    static int text_width(const std::string& s, int scale = 2) { return stb_easy_font_width(const_cast<char*>(s.c_str())) * scale; }
    void write(const std::string& path) const {
        if (!stbi_write_png(path.c_str(), w_, h_, 3, px_.data(), w_ * 3)) throw ordo::error("cannot write " + path);
    }

private:
    int w_, h_;
    std::vector<rgb> px_;
};
static_assert(sizeof(rgb) == 3, "pixels are packed RGB");

void write_png(const std::string& path, int width, int height, const std::uint8_t* rgb) {
    if (!stbi_write_png(path.c_str(), width, height, 3, rgb, width * 3)) throw ordo::error("cannot write " + path);
}

// Each cell coloured by the step that emits it (early dark, late bright); frames side by side.
void step_map(const ordo::plan& p, const std::string& title, const std::string& path) {
    const ordo::grid_shape g = p.view().grid();
    const int cell = std::max(4, 384 / std::max(g.rows(), g.cols())), gap = 8, top = 30;
    image im(std::max(g.frames() * (g.cols() * cell + gap) + gap, image::text_width(title) + 2 * gap), g.rows() * cell + top + gap);
    im.text(gap, 6, title, {0, 0, 0});
    const double last = std::max(1, p.num_steps() - 1);
    for (ordo::index_t q = 0; q < g.size(); ++q) {
        const ordo::coord c = g.at(q);
        im.fill(gap + c.t * (g.cols() * cell + gap) + c.w * cell, top + c.h * cell, cell - (cell > 6 ? 1 : 0), cell - (cell > 6 ? 1 : 0),
                viridis(p.view().step_of[static_cast<std::size_t>(q)] / last));
    }
    im.write(path);
}


// A line plot with axes, ticks at the ends and a legend. log_x/log_y: logarithmic axes (values
// <= 0 are drawn at the bottom of a log axis).
void plot(const std::vector<series_data>& s, const std::string& title, const std::string& xlabel, const std::string& ylabel, bool log_x,
                 bool log_y, bool points, const std::string& path) {
    const int W = 860, H = 540, L = 110, R = 190, T = 60, B = 60;
    image im(W, H);
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const auto& d : s)
        for (std::size_t i = 0; i < d.x.size(); ++i) {
            if (!log_x || d.x[i] > 0) { x0 = std::min(x0, d.x[i]); x1 = std::max(x1, d.x[i]); }
            if (!log_y || d.y[i] > 0) { y0 = std::min(y0, d.y[i]); y1 = std::max(y1, d.y[i]); }
        }
    if (x0 > x1) { x0 = 0; x1 = 1; }
    if (y0 > y1) { y0 = 0; y1 = 1; }
    bool zeros = false;  // on a log axis, zeros get the bottom decade, labelled 0
    for (const auto& d : s)
        for (double v : d.y) zeros = zeros || v <= 0;
    if (log_y && zeros) y0 /= 10;
    if (!log_y) y0 = std::min(y0, 0.0);
    auto tx = [&](double v) { return log_x ? std::log10(std::max(v, x0)) : v; };
    auto ty = [&](double v) { return log_y ? std::log10(std::max(v, y0)) : v; };
    double a0 = tx(x0), a1 = tx(x1), b0 = ty(y0), b1 = ty(y1);
    if (a1 - a0 < 1e-12) { a0 -= 0.5; a1 += 0.5; }
    if (b1 - b0 < 1e-12) { b0 -= 0.5; b1 += 0.5; }
    auto px = [&](double v) { return L + (tx(v) - a0) / (a1 - a0) * (W - L - R); };
    auto py = [&](double v) { return H - B - (ty(v) - b0) / (b1 - b0) * (H - T - B); };
    const rgb black{0, 0, 0}, grey{200, 200, 200};
    im.text(L, 8, title, black);
    im.line(L, H - B, W - R, H - B, black);
    im.line(L, T, L, H - B, black);
    auto num = [](double v) {
        char b[32];
        std::snprintf(b, sizeof b, "%.3g", v);
        return std::string(b);
    };
    for (int k = 0; k <= 4; ++k) {  // 5 ticks per axis, in the axis' own scale
        const double fx = a0 + (a1 - a0) * k / 4, fy = b0 + (b1 - b0) * k / 4;
        const double vx = log_x ? std::pow(10.0, fx) : fx, vy = log_y ? std::pow(10.0, fy) : fy;
        const double X = L + (W - L - R) * k / 4.0, Y = H - B - (H - T - B) * k / 4.0;
        im.line(X, T, X, H - B, grey);
        im.line(L, Y, W - R, Y, grey);
        im.text(static_cast<int>(X) - image::text_width(num(vx)) / 2, H - B + 8, num(vx), black);
        const std::string ylab = log_y && zeros && k == 0 ? "0" : num(vy);
        im.text(L - 8 - image::text_width(ylab), static_cast<int>(Y) - 6, ylab, black);
    }
    im.line(L, H - B, W - R, H - B, black);
    im.line(L, T, L, H - B, black);
    im.text((W - R + L) / 2 - image::text_width(xlabel) / 2, H - 28, xlabel, black);
    im.text(8, T - 24, ylabel, black);
    for (std::size_t k = 0; k < s.size(); ++k) {
        const rgb c = series(k);
        for (std::size_t i = 0; i < s[k].x.size(); ++i) {
            const double X = px(s[k].x[i]), Y = py(s[k].y[i]);
            if (points) im.fill(static_cast<int>(X) - 4, static_cast<int>(Y) - 4, 9, 9, c);
            if (!points && i > 0) im.line(px(s[k].x[i - 1]), py(s[k].y[i - 1]), X, Y, c, 2);
            if (points) im.text(static_cast<int>(X) + 7, static_cast<int>(Y) - 14, s[k].name, c);
        }
        im.fill(W - R + 14, T + 10 + static_cast<int>(k) * 22, 14, 14, c);
        im.text(W - R + 34, T + 11 + static_cast<int>(k) * 22, s[k].name, black);
    }
    im.write(path);
}

// Sample fields side by side: the true field, then what each order generates from the same noise.
void samples(const ordo::grid_shape& g, const std::vector<std::pair<std::string, Eigen::VectorXd>>& fields, const std::string& title,
                    const std::string& path) {
    const int cell = std::max(2, 192 / std::max(g.rows(), g.cols())), gap = 12, top = 34, label = 22;
    const int panel_w = g.frames() * g.cols() * cell + (g.frames() - 1) * 2, panel_h = g.rows() * cell;
    image im(static_cast<int>(fields.size()) * (panel_w + gap) + gap, top + panel_h + label + gap);
    im.text(gap, 8, title, {0, 0, 0});
    for (std::size_t f = 0; f < fields.size(); ++f) {
        const int x0 = gap + static_cast<int>(f) * (panel_w + gap);
        im.text(x0, top + panel_h + 6, fields[f].first, {0, 0, 0});
        for (ordo::index_t q = 0; q < g.size(); ++q) {
            const ordo::coord c = g.at(q);
            im.fill(x0 + c.t * (g.cols() * cell + 2) + c.w * cell, top + c.h * cell, cell, cell, viridis((fields[f].second(q) + 2.5) / 5.0));
        }
    }
    im.write(path);
}

void labelled_strip(const std::vector<std::string>& names, const std::vector<std::vector<std::uint8_t>>& images, int width, int height, const std::string& path) {
    const int zoom = std::max(1, 128 / std::max(1, width)), gap = 12, label = 24;
    int column = width * zoom;
    for (const std::string& n : names) column = std::max(column, image::text_width(n));
    image im(static_cast<int>(images.size()) * (column + gap) + gap, label + height * zoom + gap);
    for (std::size_t i = 0; i < images.size(); ++i) {
        const int x0 = gap + static_cast<int>(i) * (column + gap);
        im.text(x0, 6, names[i], {0, 0, 0});
        for (int y = 0; y < height * zoom; ++y)
            for (int x = 0; x < width * zoom; ++x) {
                const std::uint8_t* p = images[i].data() + (static_cast<std::size_t>(y / zoom) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x / zoom)) * 3;
                im.set(x0 + x, label + y, {p[0], p[1], p[2]});
            }
    }
    im.write(path);
}

}  // namespace pictures
