"""Plain SVG charts for the bench report, no plotting library: grouped bars
and dot strips, and log-log lines (a figure against host count).  Each
function returns the SVG text."""
import math
from xml.sax.saxutils import escape

COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
          "#9c755f")
W_LABEL = 110    # left margin: axis labels, and room for the slanted group labels
H_TOP = 46       # title and legend
H_BOTTOM = 120   # group labels


def _nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def _fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def _head(w, h, title):
    return ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">' % (w, h, w, h),
            '<rect width="100%%" height="100%%" fill="white"/>',
            '<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>'
            % (W_LABEL, escape(title))]


def _legend(series, x0, y):
    out, x = [], x0
    for i, s in enumerate(series):
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>'
                   % (x, y - 9, COLORS[i % len(COLORS)]))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 14, y, escape(s)))
        x += 24 + 7 * len(s)
    return out


def _si(v):
    """1k, 2.5M, 1G: a log axis' ticks."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return ("%g" % (v / div)) + unit
    return "%g" % v


def _yaxis(out, ymax, plot_h, plot_w, ylabel, log=False, ymin=None, fmtf=None):
    ticks = []
    if log:
        e = math.floor(math.log10(ymin))
        while 10 ** e <= ymax * 1.0001:
            ticks.append(10 ** e)
            e += 1
    else:
        ticks = [ymax * i / 5 for i in range(6)]
    for t in ticks:
        y = H_TOP + plot_h - _ypos(t, ymax, plot_h, log, ymin)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                   % (W_LABEL, W_LABEL + plot_w, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                   % (W_LABEL - 4, y + 4, (fmtf or _fmt)(t)))
    out.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>'
               % (H_TOP + plot_h // 2, H_TOP + plot_h // 2, escape(ylabel)))


def _ypos(v, ymax, plot_h, log, ymin):
    if log:
        v = max(v, ymin)
        return plot_h * (math.log10(v) - math.log10(ymin)) / (math.log10(ymax) -
                                                                math.log10(ymin))
    return plot_h * v / ymax


def bars(title, ylabel, groups, series, values, log=False, width=None, height=420):
    """values[g][s]: a number or None; groups along x, series side by side."""
    nb = len(series)
    gw = max(64, 14 * nb + 16)
    plot_w = width - W_LABEL - 10 if width else gw * len(groups)
    gw = plot_w / max(1, len(groups))
    w = plot_w + W_LABEL + 10
    plot_h = height - H_TOP - H_BOTTOM
    vals = [v for g in values for v in g if v is not None and v > 0]
    ymax = _nice_max(max(vals) if vals else 1)
    ymin = None
    if log:
        ymin = 10 ** math.floor(math.log10(min(vals))) if vals else 1
        ymax = 10 ** math.ceil(math.log10(ymax))
    out = _head(w, height, title)
    out += _legend(series, W_LABEL, 36)
    _yaxis(out, ymax, plot_h, plot_w, ylabel, log, ymin)
    bw = (gw - 10) / max(1, nb)
    for gi, g in enumerate(groups):
        x0 = W_LABEL + gi * gw + 5
        for si in range(nb):
            v = values[gi][si]
            if v is None:
                continue
            h = _ypos(v, ymax, plot_h, log, ymin) if v > 0 else 0
            x = x0 + si * bw
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                       '<title>%s, %s: %s</title></rect>'
                       % (x, H_TOP + plot_h - h, bw - 1, h, COLORS[si % len(COLORS)],
                          escape(g), escape(series[si]), _fmt(v)))
            if bw >= 16:
                out.append('<text x="%.1f" y="%.1f" font-size="8" text-anchor="middle">%s'
                           '</text>' % (x + bw / 2, H_TOP + plot_h - h - 2, _fmt(v)))
        out.append('<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-30 %.1f %d)">'
                   '%s</text>' % (x0 + gw / 2, H_TOP + plot_h + 14, x0 + gw / 2,
                                  H_TOP + plot_h + 14, escape(g)))
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>'
               % (W_LABEL, W_LABEL + plot_w, H_TOP + plot_h, H_TOP + plot_h))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def strips(title, ylabel, groups, points, limits=None, height=320):
    """points[g]: list of numbers (one dot each, log y axis); limits[g]: a
    target drawn as a red line, or None."""
    gw = 120
    plot_w = gw * len(groups)
    w = plot_w + W_LABEL + 10
    plot_h = height - H_TOP - H_BOTTOM
    vals = [v for g in points for v in g if v and v > 0]
    vals += [v for v in (limits or []) if v]
    ymin = 10 ** math.floor(math.log10(min(vals))) if vals else 0.1
    ymax = 10 ** math.ceil(math.log10(max(vals))) if vals else 10
    out = _head(w, height, title)
    _yaxis(out, ymax, plot_h, plot_w, ylabel, True, ymin)
    for gi, g in enumerate(groups):
        x0 = W_LABEL + gi * gw
        pts = sorted(v for v in points[gi] if v and v > 0)
        for k, v in enumerate(pts):
            y = H_TOP + plot_h - _ypos(v, ymax, plot_h, True, ymin)
            x = x0 + gw / 2 - 20 + (k % 9) * 5
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s" fill-opacity="0.7">'
                       '<title>%s</title></circle>' % (x, y, COLORS[gi % len(COLORS)], _fmt(v)))
        if pts:
            med = pts[len(pts) // 2]
            y = H_TOP + plot_h - _ypos(med, ymax, plot_h, True, ymin)
            out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" '
                       'stroke-width="2"/>' % (x0 + 20, x0 + gw - 20, y, y))
        if limits and limits[gi]:
            y = H_TOP + plot_h - _ypos(limits[gi], ymax, plot_h, True, ymin)
            out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="red" '
                       'stroke-dasharray="4 3"/>' % (x0 + 10, x0 + gw - 10, y, y))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (x0 + gw / 2, H_TOP + plot_h + 16, escape(g)))
    out.append('<text x="%d" y="%d" font-size="10">dots: trials; black: median; red dashes: '
               'target</text>' % (W_LABEL, height - 10))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def lines(title, xlabel, ylabel, xs, series, limit=None, limit_label="target", guides=(),
          dashed=(), width=460, height=360):
    """series: {name: [y per x or None]} on log-log axes (x: host counts);
    limit: a target drawn as a red dashed line; guides: (label, exponent)
    pairs drawn grey and dotted through the first series' first point, to
    show how a figure would grow as N^exponent; series named in dashed are
    drawn dashed with open circles (projections)."""
    legend_w = 30 + 7 * max([len(k) for k in series] + [0])
    plot_w = width - W_LABEL - 20
    width += legend_w
    plot_h = height - H_TOP - 60
    ys = [y for v in series.values() for y in v if y is not None and y > 0]
    if limit:
        ys.append(limit)
    ymin = 10 ** math.floor(math.log10(min(ys))) if ys else 0.1
    ymax = 10 ** math.ceil(math.log10(max(ys))) if ys else 10
    if ymax <= ymin:
        ymax = ymin * 10
    xmin = 10 ** math.floor(math.log10(min(xs)))
    xmax = 10 ** math.ceil(math.log10(max(xs)))

    def px(x):
        return W_LABEL + plot_w * (math.log10(x) - math.log10(xmin)) / (math.log10(xmax) -
                                                                        math.log10(xmin))

    def py(y):
        return H_TOP + plot_h - _ypos(y, ymax, plot_h, True, ymin)

    out = _head(width, height, title)
    _yaxis(out, ymax, plot_h, plot_w, ylabel, True, ymin, _si)
    e = math.floor(math.log10(xmin))
    while 10 ** e <= xmax * 1.0001:
        x = px(10 ** e)
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>'
                   % (x, x, H_TOP, H_TOP + plot_h))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (x, H_TOP + plot_h + 14, format(10 ** e, ",")))
        e += 1
    out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
               % (W_LABEL + plot_w / 2, H_TOP + plot_h + 32, escape(xlabel)))
    first = next(iter(series.values()), [])
    base = next(((x, y) for x, y in zip(xs, first) if y), None)
    for label, k in guides:
        if not base:
            break
        x0, y0 = base
        x1, y1 = xmax, y0 * (xmax / x0) ** k
        if y1 > ymax:
            x1, y1 = x0 * (ymax / y0) ** (1.0 / k), ymax
        pts = [(px(x0), py(y0)), (px(x1), py(y1))]
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" '
                   'stroke-dasharray="2 3"/>' % (pts[0] + pts[1]))
        out.append('<text x="%.1f" y="%.1f" font-size="9" fill="#777">%s</text>'
                   % (pts[1][0] + 3, pts[1][1] + 3, escape(label)))
    if limit:
        y = py(limit)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="red" '
                   'stroke-dasharray="4 3"/>' % (W_LABEL, W_LABEL + plot_w, y, y))
        out.append('<text x="%d" y="%.1f" font-size="9" fill="red">%s</text>'
                   % (W_LABEL + 4, y - 3, escape(limit_label)))
    for i, (name, vals) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = [(px(x), py(y), y) for x, y in zip(xs, vals) if y is not None and y > 0]
        dash = ' stroke-dasharray="6 4"' if name in dashed else ""
        if len(pts) > 1:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                       % (c, dash, " ".join("%.1f,%.1f" % (a, b) for a, b, _ in pts)))
        for a, b, y in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" stroke="%s">'
                       '<title>%s: %s</title></circle>'
                       % (a, b, "white" if dash else c, c, escape(name), _fmt(y)))
        ly = H_TOP + 12 + 16 * i
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>'
                   % (W_LABEL + plot_w + 10, ly - 9, c))
        out.append('<text x="%d" y="%d">%s</text>' % (W_LABEL + plot_w + 24, ly, escape(name)))
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>'
               % (W_LABEL, W_LABEL + plot_w, H_TOP + plot_h, H_TOP + plot_h))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def timelines(title, ylabel, panels, width=900, panel_h=200):
    """Panels stacked, one x axis each (seconds from the panel's start), a
    shared y scale.  Each panel: {"title", "series": {name: [(t, y)]},
    "events": [(t, label)] (grey dashed verticals, numbered, labels listed
    under the panel), "hline": (y, label) or None (red dashes), "tmax"}.
    A series is a step line (a count that holds until the next sample)."""
    plot_w = width - W_LABEL - 20
    ys = [y for p in panels for s in p["series"].values() for _, y in s]
    ys += [p["hline"][0] for p in panels if p.get("hline")]
    ymax = _nice_max(max(ys) if ys else 1)
    names = []
    for p in panels:
        for k in p["series"]:
            if k not in names:
                names.append(k)
    ev_lines = max([len(p.get("events", ())) for p in panels] + [0])
    gap = 34 + 13 * ev_lines     # x labels and the numbered events of a panel
    height = H_TOP + len(panels) * (panel_h + gap) + 10
    out = _head(width, height, title)
    out += _legend(names, W_LABEL, 36)
    for pi, p in enumerate(panels):
        top = H_TOP + 8 + pi * (panel_h + gap)
        ph = panel_h - 20
        tmax = p.get("tmax") or max([t for s in p["series"].values() for t, _ in s] + [1])

        def px(t, tmax=tmax):
            return W_LABEL + plot_w * max(0.0, min(t, tmax)) / tmax

        def py(y, top=top, ph=ph):
            return top + 16 + ph - ph * y / ymax

        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>'
                   % (W_LABEL, top + 10, escape(p["title"])))
        for i in range(6):
            v = ymax * i / 5
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                       % (W_LABEL, W_LABEL + plot_w, py(v), py(v)))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>'
                       % (W_LABEL - 4, py(v) + 4, round(v, 2)))
        out.append('<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" '
                   'text-anchor="middle">%s</text>'
                   % (top + 16 + ph / 2, top + 16 + ph / 2, escape(ylabel)))
        step = _nice_max(tmax / 8)
        t = 0.0
        while t <= tmax + 1e-9:
            out.append('<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>'
                       % (px(t), py(0) + 13, t))
            t += step
        out.append('<text x="%d" y="%.1f" text-anchor="end">s</text>'
                   % (W_LABEL + plot_w + 16, py(0) + 13))
        if p.get("hline"):
            y, label = p["hline"]
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="red" '
                       'stroke-dasharray="5 3"/>' % (W_LABEL, W_LABEL + plot_w, py(y), py(y)))
            out.append('<text x="%d" y="%.1f" font-size="9" fill="red">%s</text>'
                       % (W_LABEL + 4, py(y) - 3, escape(label)))
        for i, (t, label) in enumerate(p.get("events", ())):
            x = px(t)
            out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#777" '
                       'stroke-dasharray="3 3"/>' % (x, x, py(ymax), py(0)))
            out.append('<text x="%.1f" y="%.1f" font-size="10" fill="#555">%d</text>'
                       % (x + 2, py(ymax) + 10, i + 1))
            out.append('<text x="%d" y="%.1f" font-size="10" fill="#555">%d  %s</text>'
                       % (W_LABEL, py(0) + 28 + 13 * i, i + 1,
                          escape("%.1f s: %s" % (t, label))))
        for name, pts in p["series"].items():
            c = COLORS[names.index(name) % len(COLORS)]
            path = []
            for k, (t, y) in enumerate(pts):
                if k:
                    path.append("%.1f,%.1f" % (px(t), py(pts[k - 1][1])))
                path.append("%.1f,%.1f" % (px(t), py(y)))
            if path:
                out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                           % (c, " ".join(path)))
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="black"/>'
                   % (W_LABEL, W_LABEL + plot_w, py(0), py(0)))
    out.append("</svg>")
    return "\n".join(out) + "\n"
