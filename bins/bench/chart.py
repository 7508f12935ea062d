"""The bench's chart as hand-written SVG (standard library only; no plotting package).

`render(times, memory, title, limit_kb)` returns one SVG with two panels:
  left   seconds against lines, log-log, one line per tool (offload first)
  right  peak resident memory (MiB) against lines, log x, one line per process, with the
         back-ends' limit as a dashed line
Each series is a list of (lines, value) points; the legend sits under its panel.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ["#1f5fbf", "#e8710a", "#1e8e3e", "#9334e6", "#8d6e63", "#d01884", "#5f6368",
           "#b0a000", "#12a4af", "#c5221f"]
MARKERS = ["circle", "square", "triangle", "diamond", "down"]

W, H_PLOT = 1240, 340
PANEL_W = 520
LEFT, TOP = 80, 70
GAP = 100


def _fmt_lines(n: float) -> str:
    e = int(math.floor(math.log10(n) + 1e-9))
    m = n / 10**e
    return f"{m:.0f}e{e}" if abs(m - round(m)) < 1e-6 else f"{m:.1f}e{e}"


def _fmt_secs(s: float) -> str:
    if s >= 1:
        return f"{s:.0f} s"
    if s >= 0.01:
        return f"{s:.2f}".rstrip("0").rstrip(".") + " s"
    return f"{s * 1000:.0f} ms" if s >= 0.001 else f"{s * 1000:.1f} ms"


class _Axis:
    def __init__(self, lo: float, hi: float, px0: float, px1: float, log: bool):
        self.lo, self.hi, self.px0, self.px1, self.log = lo, hi, px0, px1, log

    def __call__(self, v: float) -> float:
        if self.log:
            a, b, x = math.log10(self.lo), math.log10(self.hi), math.log10(max(v, 1e-12))
        else:
            a, b, x = self.lo, self.hi, v
        return self.px0 + (x - a) / (b - a) * (self.px1 - self.px0)


def _marker(kind: str, x: float, y: float, color: str) -> str:
    r = 4.2
    if kind == "square":
        return (f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" '
                f'fill="{color}"/>')
    if kind in ("triangle", "down"):
        s = -1 if kind == "triangle" else 1
        pts = f"{x:.1f},{y + s * r * 1.2:.1f} {x - r * 1.1:.1f},{y - s * r * 0.8:.1f} " \
              f"{x + r * 1.1:.1f},{y - s * r * 0.8:.1f}"
        return f'<polygon points="{pts}" fill="{color}"/>'
    if kind == "diamond":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r * 1.3:.1f} " \
              f"{x - r:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{color}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}"/>'


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "middle",
          weight: str = "normal", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" {extra}>{escape(s)}</text>')


def _panel(out: list[str], x0: float, series: dict[str, list[tuple[float, float]]],
           title: str, ylabel: str, ylog: bool, yfmt, xs: list[float],
           limit: tuple[float, str] | None, styles: dict[str, tuple[str, str, float, str]]
           ) -> float:
    """Draws one panel at x0; returns the y below its legend."""
    pw = PANEL_W - 60
    y_top, y_bot = TOP, TOP + H_PLOT
    xs = sorted(set(xs))
    xaxis = _Axis(xs[0] / 1.8, xs[-1] * 1.8, x0, x0 + pw, True)
    vals = [v for pts in series.values() for _, v in pts if v > 0]
    if limit:
        vals.append(limit[0])
    if not vals:
        vals = [1.0]
    if ylog:
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = 10 ** math.ceil(math.log10(max(vals)))
        if hi / lo < 100:
            hi = lo * 100
        yaxis = _Axis(lo, hi, y_bot, y_top, True)
        ticks, minor = [], []
        d = lo
        while d <= hi * 1.0001:
            ticks.append(d)
            minor += [d * k for k in (2, 3, 5) if d * k < hi]
            d *= 10
    else:
        top = max(vals) * 1.15
        step = next(s for s in (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
                    if top / s <= 8)
        top = math.ceil(top / step) * step
        yaxis = _Axis(0, top, y_bot, y_top, False)
        ticks = [i * step for i in range(int(round(top / step)) + 1)]
        minor = []
    out.append(_text(x0 + pw / 2, y_top - 14, title, 15, weight="bold"))
    out.append(f'<rect x="{x0}" y="{y_top}" width="{pw}" height="{H_PLOT}" fill="#fff" '
               f'stroke="#444"/>')
    for m in minor:
        y = yaxis(m)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" '
                   f'stroke="#eee"/>')
    for t in ticks:
        y = yaxis(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#ccc"/>')
        out.append(f'<line x1="{x0 - 5}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="#444"/>')
        out.append(_text(x0 - 8, y + 4, yfmt(t), 12, "end"))
    for xv in xs:
        x = xaxis(xv)
        out.append(f'<line x1="{x:.1f}" y1="{y_top}" x2="{x:.1f}" y2="{y_bot}" stroke="#ddd"/>')
        out.append(f'<line x1="{x:.1f}" y1="{y_bot}" x2="{x:.1f}" y2="{y_bot + 5}" '
                   f'stroke="#444"/>')
        out.append(_text(x, y_bot + 19, _fmt_lines(xv), 12))
    out.append(_text(x0 + pw / 2, y_bot + 40, "lines in nums.csv (log scale)", 13))
    yl_x, yl_y = x0 - 58, (y_top + y_bot) / 2
    out.append(_text(yl_x, yl_y, ylabel, 13,
                     extra=f'transform="rotate(-90 {yl_x:.1f} {yl_y:.1f})"'))
    if limit:
        y = yaxis(limit[0])
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" '
                   f'stroke="#c5221f" stroke-width="1.5" stroke-dasharray="7,5"/>')
        out.append(_text(x0 + pw - 6, y - 6, limit[1], 12, "end", extra='fill="#c5221f"'))
    # Series: thicker first (ours), drawn last so it stays on top.
    order = list(series)
    for name in reversed(order):
        pts = sorted(p for p in series[name] if p[1] > 0)
        if not pts:
            continue
        color, marker, width, dash = styles[name]
        path = " ".join(f"{xaxis(a):.1f},{yaxis(b):.1f}" for a, b in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                   f'stroke-width="{width}" stroke-linejoin="round"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        for a, b in pts:
            out.append(_marker(marker, xaxis(a), yaxis(b), color))
    # Legend under the panel, two columns.
    ly = y_bot + 62
    col_w = pw / 2
    for i, name in enumerate(order):
        color, marker, width, dash = styles[name]
        lx = x0 + (i % 2) * col_w
        yy = ly + (i // 2) * 20
        out.append(f'<line x1="{lx:.1f}" y1="{yy:.1f}" x2="{lx + 26:.1f}" y2="{yy:.1f}" '
                   f'stroke="{color}" stroke-width="{width}"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        out.append(_marker(marker, lx + 13, yy, color))
        out.append(_text(lx + 34, yy + 4, name, 12, "start",
                         "bold" if i == 0 else "normal"))
    return ly + ((len(order) + 1) // 2) * 20


def render(times: dict[str, list[tuple[int, float]]],
           memory: dict[str, list[tuple[int, float]]], title: str,
           limit_kb: float | None = None, mem_note: str = "") -> str:
    """The two-panel chart; `memory` values are KiB, shown as MiB; `mem_note` is written
    inside the memory panel, top left."""
    out: list[str] = []
    t_styles = {}
    for i, name in enumerate(times):
        color = PALETTE[i % len(PALETTE)]
        ours = name == "offload (ours)"
        dash = "6,4" if name.startswith(("wc", "offload at")) else ""
        t_styles[name] = (color, MARKERS[i % len(MARKERS)], 3.2 if ours else 1.8, dash)
    mem = {k: [(a, b / 1024) for a, b in v] for k, v in memory.items()}
    m_styles = {name: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)],
                       2.4, "") for i, name in enumerate(mem)}
    xs = [a for v in list(times.values()) + list(mem.values()) for a, _ in v] or [1, 10]
    body: list[str] = []
    y1 = _panel(body, LEFT, times, "Time, start to exit (SOS unless marked)",
                "seconds (log scale)", True, _fmt_secs, xs, None, t_styles)
    y2 = _panel(body, LEFT + PANEL_W + GAP, mem, "Peak resident memory per process",
                "MiB (VmHWM; client: ru_maxrss)", False,
                lambda v: f"{v:g}", xs,
                (limit_kb / 1024, f"back-end goal {limit_kb / 1024:g} MiB")
                if limit_kb else None, m_styles)
    if mem_note:
        body.append(_text(LEFT + PANEL_W + GAP + 8, TOP + 17, mem_note, 11, "start",
                          extra='fill="#333"'))
    h = max(y1, y2) + 16
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h:.0f}" '
               f'viewBox="0 0 {W} {h:.0f}" font-family="DejaVu Sans, Helvetica, Arial, '
               f'sans-serif">')
    out.append(f'<rect width="{W}" height="{h:.0f}" fill="#fafafa"/>')
    out.append(_text(W / 2, 26, title, 17, weight="bold"))
    out += body
    out.append("</svg>")
    return "\n".join(out) + "\n"
