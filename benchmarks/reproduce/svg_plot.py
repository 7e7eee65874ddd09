"""Line charts as SVG with the Python standard library alone.

Shared by the figure scripts of benchmarks/reproduce/ (rl2_regret_figure.py,
curve_figure.py), so that every figure of the records has the same frame, ticks and legend.
A Chart is drawn in call order: the constructor writes the title, the grid, the tick
labels and the axis labels; polyline(), band(), hline() and legend() add to it; render()
closes the document.
"""

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def nice_step(span):
    """The smallest of 1, 2, 2.5 and 5 times a power of ten that cuts span into <= 5 parts."""
    raw = span / 5.0
    for p in range(-3, 6):
        for m in (1, 2, 2.5, 5):
            step = m * 10 ** p
            if step >= raw:
                return step
    return raw


class Chart:
    """A plot area with a y grid every ystep from ymin to ymax and integer x ticks.

    x0..x1 is the x range; x ticks fall on multiples of nice_step(x1 - x0) from 0 (or x0
    when x0 is not 0), labelled with xtick(value).
    """

    def __init__(self, title, xlabel, ylabel, x0, x1, ymin, ymax, ystep, width=800,
                 height=440, margins=(64, 290, 40, 50), xtick=str):
        left, right, top, bottom = margins
        self.left, self.top = left, top
        self.pw, self.ph = width - left - right, height - top - bottom
        self.x0, self.x1, self.ymin, self.ymax = x0, x1, ymin, ymax
        self.entries = 0
        pw, ph = self.pw, self.ph
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'font-family="sans-serif" font-size="12">',
               f'<rect width="{width}" height="{height}" fill="white"/>',
               f'<text x="{left + pw / 2}" y="22" text-anchor="middle" '
               f'font-size="14">{title}</text>']
        tick = ymin
        while tick <= ymax + 1e-9 * max(1.0, abs(ymax)):
            y = self.py(tick)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
                       'stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
            tick += ystep
        xstep = max(1, int(nice_step(x1 - x0)))
        first = x0 if x0 % xstep == 0 else x0 + xstep - x0 % xstep
        for v in range(first, x1 + 1, xstep):
            out.append(f'<text x="{self.px(v):.1f}" y="{top + ph + 18}" '
                       f'text-anchor="middle">{xtick(v)}</text>')
        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                   'stroke="#333"/>')
        out.append(f'<text x="{left + pw / 2}" y="{height - 10}" '
                   f'text-anchor="middle">{xlabel}</text>')
        out.append(f'<text transform="translate(16,{top + ph / 2}) rotate(-90)" '
                   f'text-anchor="middle">{ylabel}</text>')
        self.out = out

    def px(self, v):
        return self.left + self.pw * (v - self.x0) / (self.x1 - self.x0)

    def py(self, v):
        return self.top + self.ph * (1.0 - (v - self.ymin) / (self.ymax - self.ymin))

    def polyline(self, xs, ys, colour, width, dash=None):
        points = " ".join(f"{self.px(a):.1f},{self.py(b):.2f}" for a, b in zip(xs, ys))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                        f'stroke-width="{width}"{extra}/>')

    def band(self, xs, lo, hi, colour, opacity=0.18):
        """A filled band between the curves lo and hi (a 95% interval around a curve)."""
        upper = [f"{self.px(a):.1f},{self.py(b):.2f}" for a, b in zip(xs, hi)]
        lower = [f"{self.px(a):.1f},{self.py(b):.2f}" for a, b in zip(reversed(xs), reversed(lo))]
        self.out.append(f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" '
                        f'fill-opacity="{opacity}" stroke="none"/>')

    def hline(self, y, colour, width=1.2, dash="6,4"):
        """A horizontal reference line across the plot area (a target, a paper's number)."""
        self.polyline([self.x0, self.x1], [y, y], colour, width, dash)

    def legend(self, colour, width, text, dash=None):
        """The next legend entry, right of the plot area."""
        x = self.left + self.pw
        ly = self.top + 14 + 18 * self.entries
        self.entries += 1
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.out.append(f'<line x1="{x + 14}" y1="{ly - 4}" x2="{x + 38}" y2="{ly - 4}" '
                        f'stroke="{colour}" stroke-width="{width}"{extra}/>')
        self.out.append(f'<text x="{x + 44}" y="{ly}">{text}</text>')

    def render(self):
        return "\n".join(self.out + ["</svg>"]) + "\n"
