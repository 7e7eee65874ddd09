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
      // Several segments, so that the elastic displacement can bend the line.
      constexpr int kSegments = 6;
      for (int k = 0; k <= kSegments; ++k) {
        const double t = static_cast<double>(k) / kSegments;
        stroke.push_back({a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)});
      }
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

/// Inks the segment [a, b] (pixel coordinates) with half-width `hw` pixels into `out`:
/// a pixel's ink is its coverage by the stroke, 1 inside, falling linearly to 0 over
/// one pixel across the stroke's edge; overlapping strokes keep the larger value.
void draw_segment(Point a, Point b, double hw, Index size, std::span<float> out) {
  const double reach = hw + 1.0;
  const double outer2 = (hw + 0.5) * (hw + 0.5);
  const double inner2 = hw > 0.5 ? (hw - 0.5) * (hw - 0.5) : 0.0;
  const auto x0 = std::max<Index>(0, static_cast<Index>(std::floor(std::min(a.x, b.x) - reach)));
  const auto x1 =
      std::min<Index>(size - 1, static_cast<Index>(std::ceil(std::max(a.x, b.x) + reach)));
  const auto y0 = std::max<Index>(0, static_cast<Index>(std::floor(std::min(a.y, b.y) - reach)));
  const auto y1 =
      std::min<Index>(size - 1, static_cast<Index>(std::ceil(std::max(a.y, b.y) + reach)));
  for (Index y = y0; y <= y1; ++y) {
    for (Index x = x0; x <= x1; ++x) {
      const double d2 =
          segment_distance_sq(static_cast<double>(x) + 0.5, static_cast<double>(y) + 0.5, a, b);
      if (d2 >= outer2) continue;  // no coverage
      const double coverage = d2 <= inner2 ? 1.0 : std::min(1.0, hw + 0.5 - std::sqrt(d2));
      float& pixel = out[static_cast<std::size_t>(y * size + x)];
      pixel = std::max(pixel, static_cast<float>(coverage));
    }
  }
}

/// A smooth random displacement of the canvas: per axis, the sum of two plane waves
/// of random direction, wavelength (1.7 to 5 canvas units) and phase.
class ElasticField {
 public:
  ElasticField(Generator& gen, double amplitude) {
    for (auto& wave : waves_) {
      wave.amplitude = gen.uniform(-amplitude, amplitude);
      const double angle = gen.uniform(0.0, 2.0 * std::numbers::pi);
      const double frequency = gen.uniform(1.25, 3.75);  // radians per canvas unit
      wave.kx = frequency * std::cos(angle);
      wave.ky = frequency * std::sin(angle);
      wave.phase = gen.uniform(0.0, 2.0 * std::numbers::pi);
    }
  }
  [[nodiscard]] Point operator()(Point p) const {
    Point d{0.0, 0.0};
    for (std::size_t k = 0; k < 2; ++k) {
      d.x += wave(k, p);
      d.y += wave(k + 2, p);
    }
    return {p.x + d.x, p.y + d.y};
  }

 private:
  struct Wave {
    double amplitude, kx, ky, phase;
  };
  [[nodiscard]] double wave(std::size_t k, Point p) const {
    const Wave& w = waves_[k];
    return w.amplitude * std::sin(w.kx * p.x + w.ky * p.y + w.phase);
  }
  std::array<Wave, 4> waves_{};  // two for x, two for y
};

// The variation between the examples of a class at distortion 1 (canvas units and
// radians; log ranges for the factors).
constexpr double kRotation = 0.25;        // whole glyph, +-
constexpr double kLogScale = 0.15;        // whole glyph, +-
constexpr double kLogAspect = 0.08;       // whole glyph, +-
constexpr double kShear = 0.2;            // whole glyph, +-
constexpr double kShift = 0.12;           // whole glyph, +- per axis
constexpr double kStrokeShift = 0.04;     // each stroke, +- per axis
constexpr double kStrokeRotation = 0.1;   // each stroke about its centre, +-
constexpr double kStrokeLogScale = 0.08;  // each stroke about its centre, +-
constexpr double kElastic = 0.04;         // amplitude of each of the field's waves
constexpr double kLogWidth = 0.49;        // stroke width factor exp(+-0.49): 0.61-1.63
constexpr double kSpecks = 2.0;           // up to this many stray specks or dashes
constexpr double kSpeckLength = 0.2;      // a dash is up to this long

void render(const Glyph& glyph, Generator& gen, Index size, double distortion,
            std::span<float> out) {
  std::fill(out.begin(), out.end(), 0.0f);
  const double d = distortion;
  // The pose of the whole glyph: M = R * Shear * Scale, then a shift. Every example
  // draws the same random numbers whatever the distortion.
  const double rot = gen.uniform(-kRotation, kRotation) * d;
  const double scale = std::exp(gen.uniform(-kLogScale, kLogScale) * d);
  const double aspect = std::exp(gen.uniform(-kLogAspect, kLogAspect) * d);
  const double sx = scale * aspect;
  const double sy = scale / aspect;
  const double shear = gen.uniform(-kShear, kShear) * d;
  const double tx = gen.uniform(-kShift, kShift) * d;
  const double ty = gen.uniform(-kShift, kShift) * d;
  const double width_factor = std::exp(gen.uniform(-kLogWidth, kLogWidth) * d);
  const ElasticField elastic(gen, kElastic * d);
  const double cr = std::cos(rot);
  const double sr = std::sin(rot);
  const std::array<double, 4> m{cr * sx, (cr * shear - sr) * sy, sr * sx, (sr * shear + cr) * sy};
  const double px_per_unit = static_cast<double>(size) / 2.0;
  const double hw = std::max(0.4, glyph.half_width * width_factor * px_per_unit);
  auto to_pixels = [&](Point p) {
    const Point q = elastic(p);
    const double u = m[0] * q.x + m[1] * q.y + tx;
    const double v = m[2] * q.x + m[3] * q.y + ty;
    return Point{(u + 1.0) * px_per_unit, (v + 1.0) * px_per_unit};
  };
  for (const Stroke& stroke : glyph.strokes) {
    // Each stroke moved, turned and resized about its centre on its own.
    const double dx = gen.uniform(-kStrokeShift, kStrokeShift) * d;
    const double dy = gen.uniform(-kStrokeShift, kStrokeShift) * d;
    const double srot = gen.uniform(-kStrokeRotation, kStrokeRotation) * d;
    const double sscale = std::exp(gen.uniform(-kStrokeLogScale, kStrokeLogScale) * d);
    const double a = std::cos(srot) * sscale;
    const double b = std::sin(srot) * sscale;
    Point c{0.0, 0.0};
    for (const Point& p : stroke) {
      c.x += p.x;
      c.y += p.y;
    }
    c.x /= static_cast<double>(stroke.size());
    c.y /= static_cast<double>(stroke.size());
    auto place = [&](Point p) {
      const double px = p.x - c.x;
      const double py = p.y - c.y;
      return to_pixels({c.x + a * px - b * py + dx, c.y + b * px + a * py + dy});
    };
    Point prev = place(stroke.front());
    for (std::size_t k = 1; k < stroke.size(); ++k) {
      const Point next = place(stroke[k]);
      draw_segment(prev, next, hw, size, out);
      prev = next;
    }
  }
  // Stray ink: specks and short dashes anywhere on the image.
  const auto specks = static_cast<int>(gen.uniform(0.0, kSpecks * d + 1.0));
  for (int k = 0; k < specks; ++k) {
    const Point p{gen.uniform(-0.9, 0.9), gen.uniform(-0.9, 0.9)};
    const double length = gen.uniform(0.0, kSpeckLength);
    const double angle = gen.uniform(0.0, 2.0 * std::numbers::pi);
    const double half_width = gen.uniform(0.03, 0.065);
    const Point q{p.x + length * std::cos(angle), p.y + length * std::sin(angle)};
    draw_segment({(p.x + 1.0) * px_per_unit, (p.y + 1.0) * px_per_unit},
                 {(q.x + 1.0) * px_per_unit, (q.y + 1.0) * px_per_unit},
                 std::max(0.4, half_width * px_per_unit), size, out);
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
  METALEARN_CHECK(std::isfinite(o.distortion) && o.distortion >= 0.0, ValueError,
                  "ProceduralGlyphs: distortion must be finite and >= 0, got ", o.distortion);
  switch (o.split) {
    case Split::kTrain:
      first_class_ = 0;
      num_classes_ = o.train_classes;
      break;
    case Split::kValidation:
      first_class_ = o.train_classes;
      num_classes_ = o.validation_classes;
      break;
    case Split::kTest:
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
  render(glyph, gen, options_.image_size, options_.distortion, out);
}

std::string ProceduralGlyphs::name() const {
  const char* split = options_.split == Split::kTrain        ? "train"
                      : options_.split == Split::kValidation ? "validation"
                                                             : "test";
  return std::string("ProceduralGlyphs(") + split + ")";
}

}  // namespace metalearn::data
