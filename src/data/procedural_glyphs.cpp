// ProceduralGlyphs: stroke generation and anti-aliased rasterisation.

#include "metalearn/data/procedural_glyphs.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include "metalearn/core/error.hpp"
#include "metalearn/core/random.hpp"

namespace metalearn::data {
namespace {

constexpr std::uint64_t kClassTag = 0x676C797068636C73ULL;    // "glyphcls"
constexpr std::uint64_t kExampleTag = 0x676C797068657870ULL;  // "glyphexp"

struct Point {
  double x;
  double y;
};

/// A stroke as a polyline in the canvas [-1, 1]^2 (y down).
using Stroke = std::vector<Point>;

struct Glyph {
  std::vector<Stroke> strokes;
  double half_width;  // canvas units
};

Glyph make_glyph(std::uint64_t seed, Index global_class) {
  Generator gen(derive_seed({seed, kClassTag, static_cast<std::uint64_t>(global_class)}));
  Glyph g;
  g.half_width = gen.uniform(0.07, 0.11);
  const Index n = gen.randint(2, 4);
  for (Index s = 0; s < n; ++s) {
    Stroke stroke;
    if (gen.uniform() < 0.5) {
      Point a{};
      Point b{};
      do {
        a = {gen.uniform(-0.65, 0.65), gen.uniform(-0.65, 0.65)};
        b = {gen.uniform(-0.65, 0.65), gen.uniform(-0.65, 0.65)};
      } while (std::hypot(a.x - b.x, a.y - b.y) < 0.45);
      stroke = {a, b};
    } else {
      const Point c{gen.uniform(-0.35, 0.35), gen.uniform(-0.35, 0.35)};
      const double r = gen.uniform(0.2, 0.55);
      const double start = gen.uniform(0.0, 2.0 * std::numbers::pi);
      const double sweep = gen.uniform(std::numbers::pi / 3.0, 1.6 * std::numbers::pi) *
                           (gen.uniform() < 0.5 ? -1 : 1);
      constexpr int kSegments = 12;
      for (int k = 0; k <= kSegments; ++k) {
        const double t = start + sweep * k / kSegments;
        stroke.push_back({c.x + r * std::cos(t), c.y + r * std::sin(t)});
      }
    }
    g.strokes.push_back(std::move(stroke));
  }
  return g;
}

/// Squared distance from (px, py) to the segment [a, b].
double segment_distance_sq(double px, double py, Point a, Point b) {
  const double dx = b.x - a.x;
  const double dy = b.y - a.y;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0.0 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double ex = px - (a.x + t * dx);
  const double ey = py - (a.y + t * dy);
  return ex * ex + ey * ey;
}

void render(const Glyph& glyph, Generator& gen, Index size, std::span<float> out) {
  std::fill(out.begin(), out.end(), 0.0f);
  // Affine jitter: rotation, anisotropic scale, shear, translation.
  const double rot = gen.uniform(-0.2, 0.2);
  const double sx = gen.uniform(0.85, 1.1);
  const double sy = gen.uniform(0.85, 1.1);
  const double shear = gen.uniform(-0.15, 0.15);
  const double tx = gen.uniform(-0.08, 0.08);
  const double ty = gen.uniform(-0.08, 0.08);
  const double width_factor = gen.uniform(0.75, 1.3);
  const double cr = std::cos(rot);
  const double sr = std::sin(rot);
  // M = R * Shear * Scale.
  const std::array<double, 4> m{cr * sx, (cr * shear - sr) * sy, sr * sx, (sr * shear + cr) * sy};
  const double px_per_unit = static_cast<double>(size) / 2.0;
  const double hw = std::max(0.5, glyph.half_width * width_factor * px_per_unit);
  auto to_pixels = [&](Point p) {
    const double u = m[0] * p.x + m[1] * p.y + tx;
    const double v = m[2] * p.x + m[3] * p.y + ty;
    return Point{(u + 1.0) * px_per_unit, (v + 1.0) * px_per_unit};
  };
  for (const Stroke& stroke : glyph.strokes) {
    for (std::size_t k = 0; k + 1 < stroke.size(); ++k) {
      const Point a = to_pixels(stroke[k]);
      const Point b = to_pixels(stroke[k + 1]);
      const double reach = hw + 1.0;
      const double outer2 = (hw + 0.5) * (hw + 0.5);
      const double inner2 = (hw - 0.5) * (hw - 0.5);
      const auto x0 =
          std::max<Index>(0, static_cast<Index>(std::floor(std::min(a.x, b.x) - reach)));
      const auto x1 =
          std::min<Index>(size - 1, static_cast<Index>(std::ceil(std::max(a.x, b.x) + reach)));
      const auto y0 =
          std::max<Index>(0, static_cast<Index>(std::floor(std::min(a.y, b.y) - reach)));
      const auto y1 =
          std::min<Index>(size - 1, static_cast<Index>(std::ceil(std::max(a.y, b.y) + reach)));
      for (Index y = y0; y <= y1; ++y) {
        for (Index x = x0; x <= x1; ++x) {
          const double d2 =
              segment_distance_sq(static_cast<double>(x) + 0.5, static_cast<double>(y) + 0.5, a, b);
          if (d2 >= outer2) continue;  // no coverage
          // Coverage of the pixel by the stroke: 1 inside, falling linearly to 0 over
          // one pixel across the stroke's edge.
          const double coverage = d2 <= inner2 ? 1.0 : hw + 0.5 - std::sqrt(d2);
          float& pixel = out[static_cast<std::size_t>(y * size + x)];
          pixel = std::max(pixel, static_cast<float>(coverage));
        }
      }
    }
  }
}

}  // namespace

ProceduralGlyphs::ProceduralGlyphs(ProceduralGlyphsOptions options) : options_(options) {
  const auto& o = options_;
  METALEARN_CHECK(o.train_classes >= 0 && o.validation_classes >= 0 && o.test_classes >= 0,
                  ValueError,
                  "ProceduralGlyphs: class counts must be >= 0, got train=", o.train_classes,
                  " validation=", o.validation_classes, " test=", o.test_classes);
  METALEARN_CHECK(o.examples_per_class >= 1, ValueError,
                  "ProceduralGlyphs: examples_per_class must be >= 1, got ", o.examples_per_class);
  METALEARN_CHECK(o.image_size >= 8, ValueError, "ProceduralGlyphs: image_size must be >= 8, got ",
                  o.image_size);
  switch (o.split) {
    case Split::train:
      first_class_ = 0;
      num_classes_ = o.train_classes;
      break;
    case Split::validation:
      first_class_ = o.train_classes;
      num_classes_ = o.validation_classes;
      break;
    case Split::test:
      first_class_ = o.train_classes + o.validation_classes;
      num_classes_ = o.test_classes;
      break;
  }
  METALEARN_CHECK(num_classes_ >= 1, ValueError, "ProceduralGlyphs: the requested split (",
                  static_cast<int>(o.split), ") has no classes");
}

Index ProceduralGlyphs::examples_per_class(Index c) const {
  METALEARN_CHECK(c >= 0 && c < num_classes_, ValueError,
                  "ProceduralGlyphs::examples_per_class: class ", c, " out of range [0, ",
                  num_classes_, ")");
  return options_.examples_per_class;
}

Index ProceduralGlyphs::global_class(Index c) const {
  METALEARN_CHECK(c >= 0 && c < num_classes_, ValueError, "ProceduralGlyphs::global_class: class ",
                  c, " out of range [0, ", num_classes_, ")");
  return first_class_ + c;
}

void ProceduralGlyphs::load(Index c, Index i, std::span<float> out) const {
  METALEARN_CHECK(c >= 0 && c < num_classes_ && i >= 0 && i < options_.examples_per_class,
                  ValueError, "ProceduralGlyphs::load: example (", c, ", ", i, ") out of range (",
                  num_classes_, " classes, ", options_.examples_per_class, " examples each)");
  const auto n = static_cast<std::size_t>(options_.image_size * options_.image_size);
  METALEARN_CHECK(out.size() == n, ValueError, "ProceduralGlyphs::load: buffer holds ", out.size(),
                  " values, expected ", n);
  const Index g = first_class_ + c;
  const Glyph glyph = make_glyph(options_.seed, g);
  Generator gen(derive_seed(
      {options_.seed, kExampleTag, static_cast<std::uint64_t>(g), static_cast<std::uint64_t>(i)}));
  render(glyph, gen, options_.image_size, out);
}

std::string ProceduralGlyphs::name() const {
  const char* split = options_.split == Split::train        ? "train"
                      : options_.split == Split::validation ? "validation"
                                                            : "test";
  return std::string("ProceduralGlyphs(") + split + ")";
}

}  // namespace metalearn::data
