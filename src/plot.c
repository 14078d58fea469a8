/*
 * plot.c: axes, ticks, lines, bands, legends and colour bars on cairo (see plot.h). Every figure
 * is drawn by one function into a PNG and an SVG surface, so the two files cannot disagree.
 */
#include "lorasweep/plot.h"

#include <cairo-svg.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"

#define PLOT_PI 3.14159265358979323846
#define FONT "DejaVu Sans"
#define TICK_FONT 12.0
#define LABEL_FONT 13.5
#define TITLE_FONT 15.0

/* ---------------------------------------------------------------- colours */

ls_rgb ls_plot_color(int i) {
    static const ls_rgb palette[] = {
        {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
        {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
        {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}, {0.682, 0.780, 0.910}, {1.000, 0.733, 0.471},
        {0.596, 0.875, 0.541}, {1.000, 0.596, 0.588}, {0.773, 0.690, 0.835}, {0.769, 0.612, 0.580},
        {0.969, 0.714, 0.824}, {0.780, 0.780, 0.780}, {0.859, 0.859, 0.553}, {0.620, 0.855, 0.898},
    };
    int n = (int)(sizeof palette / sizeof *palette);
    return palette[((i % n) + n) % n];
}

ls_rgb ls_plot_viridis(double t) {
    /* 9 samples of matplotlib's viridis, linearly interpolated */
    static const ls_rgb v[] = {{0.267, 0.005, 0.329}, {0.283, 0.141, 0.458}, {0.254, 0.265, 0.530},
                               {0.207, 0.372, 0.553}, {0.164, 0.471, 0.558}, {0.128, 0.567, 0.551},
                               {0.135, 0.659, 0.518}, {0.478, 0.821, 0.318}, {0.993, 0.906, 0.144}};
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double p = t * 8;
    int i = (int)p;
    if (i >= 8) return v[8];
    double f = p - i;
    return (ls_rgb){v[i].r + f * (v[i + 1].r - v[i].r), v[i].g + f * (v[i + 1].g - v[i].g),
                    v[i].b + f * (v[i + 1].b - v[i].b)};
}

/* ---------------------------------------------------------------- text */

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, double size, const char *text) {
    cairo_text_extents_t e;
    set_font(cr, size, 0);
    cairo_text_extents(cr, text, &e);
    return e.x_advance;
}

void ls_plot_text(cairo_t *cr, double x, double y, int ha, int va, double size, int bold, const char *text) {
    ls_plot_text_rgb(cr, x, y, ha, va, size, bold, (ls_rgb){0.1, 0.1, 0.1}, text);
}

void ls_plot_text_rgb(cairo_t *cr, double x, double y, int ha, int va, double size, int bold, ls_rgb color,
                      const char *text) {
    cairo_text_extents_t e;
    cairo_font_extents_t fe;
    set_font(cr, size, bold);
    cairo_text_extents(cr, text, &e);
    cairo_font_extents(cr, &fe);
    double dx = ha < 0 ? 0 : ha == 0 ? -e.x_advance / 2 : -e.x_advance;
    /* top and middle use the font's ascent, so that labels of one row line up */
    double dy = va < 0 ? fe.ascent : va == 0 ? (fe.ascent - fe.descent) / 2 : 0;
    cairo_move_to(cr, x + dx, y + dy);
    cairo_set_source_rgb(cr, color.r, color.g, color.b);
    cairo_show_text(cr, text);
}

void ls_plot_format_e(double v, char *buf, size_t cap) {
    /* "1e-05" rather than "1.0e-05"; two digits only where they say something */
    char m[32];
    snprintf(m, sizeof m, "%.1e", v);
    if (strstr(m, ".0e")) snprintf(buf, cap, "%.0e", v);
    else snprintf(buf, cap, "%s", m);
}

void ls_plot_format_e_digits(double v, int digits, char *buf, size_t cap) {
    char want[32];
    snprintf(want, sizeof want, "%.*e", digits > 1 ? digits - 1 : 0, v);
    double target = strtod(want, NULL);
    for (int d = 0; d < digits; d++) { /* the fewest digits that say the same */
        snprintf(buf, cap, "%.*e", d, v);
        if (strtod(buf, NULL) == target) return;
    }
    snprintf(buf, cap, "%s", want);
}

void ls_plot_format(double v, char *buf, size_t cap) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(buf, cap, "n/a");
    else if (a == 0) snprintf(buf, cap, "0");
    else if (a >= 1e5 || a < 1e-3) ls_plot_format_e(v, buf, cap);
    else snprintf(buf, cap, "%.4g", v);
}

/* A tick label: as many decimals as the tick spacing needs, so that neighbours never read the
 * same ("2.0005" and "2.001", not "2.001" twice); log decades and extreme values in e-notation. */
static void tick_label(double v, double step, int log_decades, char *buf, size_t cap) {
    double a = fabs(v);
    if (log_decades || a >= 1e5 || (a > 0 && a < 1e-3) || !(step > 0)) {
        ls_plot_format(v, buf, cap);
        return;
    }
    int decimals = 0;
    while (decimals < 8 && fabs(step * pow(10, decimals) - round(step * pow(10, decimals))) > 1e-6 * step * pow(10, decimals))
        decimals++;
    snprintf(buf, cap, "%.*f", decimals, v);
}

/* ---------------------------------------------------------------- axes */

void ls_axes_place(ls_axes *ax, double x, double y, double w, double h) {
    /* room: title above, tick labels and axis label left and below */
    const double left = 78, right = 14, top = 34, bottom = 52;
    ax->x = x + left;
    ax->y = y + top;
    ax->w = w - left - right;
    ax->h = h - top - bottom;
    ax->xmin = 0, ax->xmax = 1, ax->ymin = 0, ax->ymax = 1;
    ax->xlog = ax->ylog = 0;
}

static void range_of(const double *v, size_t n, int positive, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (positive && v[i] <= 0)) continue;
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

/* Pad [lo, hi] by 4% each side (in log space on a log axis); a single value gets a range. */
static void pad_range(double *lo, double *hi, int log) {
    if (!(*lo <= *hi)) {
        *lo = log ? 1 : 0, *hi = log ? 10 : 1;
        return;
    }
    if (log) {
        double a = log10(*lo), b = log10(*hi);
        if (b - a < 1e-9) a -= 0.5, b += 0.5;
        double p = (b - a) * 0.04;
        *lo = pow(10, a - p), *hi = pow(10, b + p);
    } else {
        double span = *hi - *lo;
        if (span <= fabs(*hi) * 1e-9) span = *hi != 0 ? fabs(*hi) * 0.2 : 1;
        double p = span * 0.04;
        if (*hi - *lo <= fabs(*hi) * 1e-9) p = span / 2;
        *lo -= p, *hi += p;
    }
}

static void fit(double *lo_out, double *hi_out, int *log_out, const double *v, size_t n, int log, double decades) {
    double lo, hi;
    range_of(v, n, 1, &lo, &hi);
    int use_log = log == 1 || (log == -1 && lo <= hi && lo > 0 && log10(hi / lo) > decades);
    if (!use_log) range_of(v, n, 0, &lo, &hi);
    pad_range(&lo, &hi, use_log);
    *lo_out = lo, *hi_out = hi, *log_out = use_log;
}

void ls_axes_fit_x(ls_axes *ax, const double *v, size_t n, int log, double decades) {
    fit(&ax->xmin, &ax->xmax, &ax->xlog, v, n, log, decades);
}
void ls_axes_fit_y(ls_axes *ax, const double *v, size_t n, int log, double decades) {
    fit(&ax->ymin, &ax->ymax, &ax->ylog, v, n, log, decades);
}

static void extend(double *lo, double *hi, int log, const double *v, size_t n) {
    double a, b;
    range_of(v, n, log, &a, &b);
    if (!(a <= b)) return;
    /* undo the padding, widen, pad again */
    double l = *lo, h = *hi;
    if (log) {
        double la = log10(l), lb = log10(h), p = (lb - la) * 0.04 / 1.08;
        l = pow(10, la + p), h = pow(10, lb - p);
    } else {
        double p = (h - l) * 0.04 / 1.08;
        l += p, h -= p;
    }
    if (a < l) l = a;
    if (b > h) h = b;
    pad_range(&l, &h, log);
    *lo = l, *hi = h;
}

void ls_axes_extend_x(ls_axes *ax, const double *v, size_t n) { extend(&ax->xmin, &ax->xmax, ax->xlog, v, n); }
void ls_axes_extend_y(ls_axes *ax, const double *v, size_t n) { extend(&ax->ymin, &ax->ymax, ax->ylog, v, n); }

double ls_axes_px(const ls_axes *ax, double x) {
    if (ax->xlog) {
        if (!(x > 0)) return NAN;
        return ax->x + ax->w * (log10(x) - log10(ax->xmin)) / (log10(ax->xmax) - log10(ax->xmin));
    }
    return ax->x + ax->w * (x - ax->xmin) / (ax->xmax - ax->xmin);
}

double ls_axes_py(const ls_axes *ax, double y) {
    if (ax->ylog) {
        if (!(y > 0)) return NAN;
        return ax->y + ax->h * (1 - (log10(y) - log10(ax->ymin)) / (log10(ax->ymax) - log10(ax->ymin)));
    }
    return ax->y + ax->h * (1 - (y - ax->ymin) / (ax->ymax - ax->ymin));
}

/* 1, 2 or 5 times a power of ten, near span/target. */
static double nice_step(double span, int target) {
    double raw = span / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

#define MAX_TICKS 64

/* Major ticks of [lo, hi]; minor ones (log axes: 2..9 x 10^k) into minor. */
static int ticks(double lo, double hi, int log, int target, double *major, double *minor, int *n_minor) {
    int n = 0;
    *n_minor = 0;
    if (log && log10(hi / lo) >= 1.0) {
        int a = (int)ceil(log10(lo) - 1e-9), b = (int)floor(log10(hi) + 1e-9);
        int every = (b - a) / target + 1;
        for (int k = a; k <= b && n < MAX_TICKS; k++)
            if ((k - a) % every == 0) major[n++] = pow(10, k);
        if (every == 1)
            for (int k = a - 1; k <= b; k++)
                for (int m = 2; m <= 9 && *n_minor < MAX_TICKS; m++) {
                    double v = m * pow(10, k);
                    if (v > lo && v < hi) minor[(*n_minor)++] = v;
                }
        return n;
    }
    /* linear ticks, also for a log axis spanning less than a decade (placed logarithmically,
     * where they crowd at the top end: fewer of them) */
    double step = nice_step(hi - lo, log ? (target + 1) / 2 : target);
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && n < MAX_TICKS; v += step)
        major[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    return n;
}

void ls_axes_draw(cairo_t *cr, const ls_axes *ax, const char *title, const char *xlabel, const char *ylabel) {
    double major[MAX_TICKS], minor[MAX_TICKS];
    int n_minor;
    char buf[32];
    cairo_save(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_rectangle(cr, ax->x, ax->y, ax->w, ax->h);
    cairo_fill(cr);
    cairo_set_line_width(cr, 1);

    /* x: grid and labels (decade ticks of a log axis are labelled in e-notation) */
    int x_decades = ax->xlog && log10(ax->xmax / ax->xmin) >= 1.0, y_decades = ax->ylog && log10(ax->ymax / ax->ymin) >= 1.0;
    int n = ticks(ax->xmin, ax->xmax, ax->xlog, (int)fmax(3, ax->w / 110), major, minor, &n_minor);
    cairo_set_source_rgb(cr, 0.93, 0.93, 0.93);
    for (int i = 0; i < n_minor; i++) {
        double px = round(ls_axes_px(ax, minor[i])) + 0.5;
        cairo_move_to(cr, px, ax->y), cairo_line_to(cr, px, ax->y + ax->h);
    }
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double px = round(ls_axes_px(ax, major[i])) + 0.5;
        cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
        cairo_move_to(cr, px, ax->y), cairo_line_to(cr, px, ax->y + ax->h);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, px, ax->y + ax->h), cairo_line_to(cr, px, ax->y + ax->h + 5);
        cairo_stroke(cr);
        tick_label(major[i], n > 1 ? major[1] - major[0] : 0, x_decades, buf, sizeof buf);
        ls_plot_text(cr, px, ax->y + ax->h + 8, 0, -1, TICK_FONT, 0, buf);
    }
    /* y */
    n = ticks(ax->ymin, ax->ymax, ax->ylog, (int)fmax(3, ax->h / 60), major, minor, &n_minor);
    cairo_set_source_rgb(cr, 0.93, 0.93, 0.93);
    for (int i = 0; i < n_minor; i++) {
        double py = round(ls_axes_py(ax, minor[i])) + 0.5;
        cairo_move_to(cr, ax->x, py), cairo_line_to(cr, ax->x + ax->w, py);
    }
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double py = round(ls_axes_py(ax, major[i])) + 0.5;
        cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
        cairo_move_to(cr, ax->x, py), cairo_line_to(cr, ax->x + ax->w, py);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, ax->x - 5, py), cairo_line_to(cr, ax->x, py);
        cairo_stroke(cr);
        tick_label(major[i], n > 1 ? major[1] - major[0] : 0, y_decades, buf, sizeof buf);
        ls_plot_text(cr, ax->x - 8, py, 1, 0, TICK_FONT, 0, buf);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, ax->x + 0.5, ax->y + 0.5, ax->w - 1, ax->h - 1);
    cairo_stroke(cr);

    if (title && *title) ls_plot_text(cr, ax->x + ax->w / 2, ax->y - 10, 0, 1, TITLE_FONT, 1, title);
    if (xlabel && *xlabel) ls_plot_text(cr, ax->x + ax->w / 2, ax->y + ax->h + 28, 0, -1, LABEL_FONT, 0, xlabel);
    if (ylabel && *ylabel) {
        cairo_save(cr);
        cairo_translate(cr, ax->x - 62, ax->y + ax->h / 2);
        cairo_rotate(cr, -PLOT_PI / 2);
        ls_plot_text(cr, 0, 0, 0, 0, LABEL_FONT, 0, ylabel);
        cairo_restore(cr);
    }
    cairo_restore(cr);
}

/* ---------------------------------------------------------------- series */

static void clip_to(cairo_t *cr, const ls_axes *ax) {
    cairo_rectangle(cr, ax->x, ax->y, ax->w, ax->h);
    cairo_clip(cr);
}

static void set_style(cairo_t *cr, const ls_style *st) {
    cairo_set_source_rgba(cr, st->color.r, st->color.g, st->color.b, st->alpha > 0 ? st->alpha : 1);
    double w = st->width > 0 ? st->width : 1.5;
    cairo_set_line_width(cr, w);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    double dash[2] = {st->dashed == 2 ? 1 : 6 * w / 1.5, st->dashed == 2 ? 3 * w : 4 * w / 1.5};
    if (st->dashed) {
        cairo_set_line_cap(cr, st->dashed == 2 ? CAIRO_LINE_CAP_ROUND : CAIRO_LINE_CAP_BUTT);
        cairo_set_dash(cr, dash, 2, 0);
    } else {
        cairo_set_dash(cr, NULL, 0, 0);
    }
}

static void marker_path(cairo_t *cr, int shape, double x, double y, double s) {
    switch (shape) {
    case 2: cairo_rectangle(cr, x - s, y - s, 2 * s, 2 * s); break;
    case 3:
        cairo_move_to(cr, x, y - 1.2 * s), cairo_line_to(cr, x + 1.1 * s, y + 0.8 * s);
        cairo_line_to(cr, x - 1.1 * s, y + 0.8 * s), cairo_close_path(cr);
        break;
    case 4:
        cairo_move_to(cr, x, y - 1.3 * s), cairo_line_to(cr, x + 1.3 * s, y), cairo_line_to(cr, x, y + 1.3 * s);
        cairo_line_to(cr, x - 1.3 * s, y), cairo_close_path(cr);
        break;
    default: cairo_new_sub_path(cr), cairo_arc(cr, x, y, s, 0, 2 * PLOT_PI); break;
    }
}

static void draw_marker(cairo_t *cr, const ls_style *st, double x, double y) {
    double s = st->marker_size > 0 ? st->marker_size : 4;
    if (st->marker == LS_PLOT_MARKER_CROSS) { /* an x has no inside to fill: two thick strokes */
        cairo_move_to(cr, x - s, y - s), cairo_line_to(cr, x + s, y + s);
        cairo_move_to(cr, x - s, y + s), cairo_line_to(cr, x + s, y - s);
        cairo_set_source_rgba(cr, st->color.r, st->color.g, st->color.b, st->alpha > 0 ? st->alpha : 1);
        cairo_set_line_width(cr, fmax(2.0, s / 2.2));
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_stroke(cr);
        return;
    }
    marker_path(cr, st->marker, x, y, s);
    cairo_set_source_rgba(cr, st->color.r, st->color.g, st->color.b, st->alpha > 0 ? st->alpha : 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 0.8);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_stroke(cr);
}

void ls_plot_line(cairo_t *cr, const ls_axes *ax, const double *x, const double *y, size_t n, const ls_style *st) {
    cairo_save(cr);
    clip_to(cr, ax);
    set_style(cr, st);
    int pen = 0;
    if (st->width >= 0)
        for (size_t i = 0; i < n; i++) {
            double px = ls_axes_px(ax, x[i]), py = ls_axes_py(ax, y[i]);
            if (!isfinite(px) || !isfinite(py)) {
                pen = 0;
                continue;
            }
            if (pen) cairo_line_to(cr, px, py);
            else cairo_move_to(cr, px, py);
            pen = 1;
        }
    cairo_stroke(cr);
    if (st->marker)
        for (size_t i = 0; i < n; i++) {
            double px = ls_axes_px(ax, x[i]), py = ls_axes_py(ax, y[i]);
            if (isfinite(px) && isfinite(py)) draw_marker(cr, st, px, py);
        }
    cairo_restore(cr);
}

void ls_plot_band(cairo_t *cr, const ls_axes *ax, const double *x, const double *lo, const double *hi, size_t n,
                  ls_rgb color, double alpha) {
    cairo_save(cr);
    clip_to(cr, ax);
    cairo_set_source_rgba(cr, color.r, color.g, color.b, alpha);
    /* one polygon per run of points where both edges are drawable */
    size_t i = 0;
    while (i < n) {
        while (i < n && !(isfinite(ls_axes_px(ax, x[i])) && isfinite(ls_axes_py(ax, lo[i])) &&
                          isfinite(ls_axes_py(ax, hi[i]))))
            i++;
        size_t a = i;
        while (i < n && isfinite(ls_axes_px(ax, x[i])) && isfinite(ls_axes_py(ax, lo[i])) &&
               isfinite(ls_axes_py(ax, hi[i])))
            i++;
        if (i - a < 2) continue;
        for (size_t k = a; k < i; k++) cairo_line_to(cr, ls_axes_px(ax, x[k]), ls_axes_py(ax, hi[k]));
        for (size_t k = i; k-- > a;) cairo_line_to(cr, ls_axes_px(ax, x[k]), ls_axes_py(ax, lo[k]));
        cairo_close_path(cr);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

void ls_plot_vline(cairo_t *cr, const ls_axes *ax, double x, ls_rgb color, int dashed, const char *label) {
    double px = ls_axes_px(ax, x);
    if (!isfinite(px) || px < ax->x || px > ax->x + ax->w) return;
    ls_style st = {.color = color, .width = 1.2, .dashed = dashed};
    cairo_save(cr);
    set_style(cr, &st);
    cairo_move_to(cr, px, ax->y), cairo_line_to(cr, px, ax->y + ax->h);
    cairo_stroke(cr);
    cairo_restore(cr);
    if (label && *label) ls_plot_text(cr, px - 5, ax->y + 6, 1, -1, TICK_FONT - 1, 0, label);
}

/* ---------------------------------------------------------------- legend */

#define SWATCH 28.0

double ls_plot_legend_width(cairo_t *cr, const ls_legend_entry *e, size_t n, double font_size) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, text_width(cr, font_size, e[i].label));
    return SWATCH + 10 + w + 12;
}

double ls_plot_legend(cairo_t *cr, double x, double y, const ls_legend_entry *e, size_t n, int max_rows,
                      double font_size) {
    if (n == 0) return 0;
    if (max_rows < 1) max_rows = 1;
    double row_h = font_size * 1.55, col_w = ls_plot_legend_width(cr, e, n, font_size);
    int cols = (int)((n + (size_t)max_rows - 1) / (size_t)max_rows);
    int rows = (int)(n < (size_t)max_rows ? n : (size_t)max_rows);
    double w = cols * col_w + 8, h = rows * row_h + 8;
    cairo_save(cr);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_rectangle(cr, x + 0.5, y + 0.5, w, h);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i / (size_t)max_rows), r = (int)(i % (size_t)max_rows);
        double ex = x + 8 + c * col_w, ey = y + 4 + r * row_h + row_h / 2;
        ls_style st = e[i].style;
        if (e[i].band) {
            cairo_set_source_rgba(cr, st.color.r, st.color.g, st.color.b, st.alpha > 0 ? st.alpha : 0.3);
            cairo_rectangle(cr, ex, ey - 5, SWATCH, 10);
            cairo_fill(cr);
        } else {
            if (st.width >= 0) {
                set_style(cr, &st);
                cairo_move_to(cr, ex, ey), cairo_line_to(cr, ex + SWATCH, ey);
                cairo_stroke(cr);
            }
            if (st.marker) draw_marker(cr, &st, ex + SWATCH / 2, ey);
        }
        ls_plot_text(cr, ex + SWATCH + 8, ey, -1, 0, font_size, 0, e[i].label);
    }
    cairo_restore(cr);
    return w;
}

/* ---------------------------------------------------------------- colour bar */

void ls_plot_colorbar(cairo_t *cr, double x, double y, double w, double h, double lo, double hi, const char *label) {
    cairo_save(cr);
    int steps = (int)h;
    for (int i = 0; i < steps; i++) {
        ls_rgb c = ls_plot_viridis(1.0 - (i + 0.5) / steps);
        cairo_set_source_rgb(cr, c.r, c.g, c.b);
        cairo_rectangle(cr, x, y + i, w, 1.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x + 0.5, y + 0.5, w - 1, h - 1);
    cairo_stroke(cr);
    double major[MAX_TICKS], minor[MAX_TICKS];
    int n_minor, n = hi > lo ? ticks(lo, hi, 0, 5, major, minor, &n_minor) : 0;
    char buf[32];
    for (int i = 0; i < n; i++) {
        double py = y + h * (1 - (major[i] - lo) / (hi - lo));
        cairo_move_to(cr, x + w, py), cairo_line_to(cr, x + w + 4, py);
        cairo_stroke(cr);
        tick_label(major[i], n > 1 ? major[1] - major[0] : 0, 0, buf, sizeof buf);
        ls_plot_text(cr, x + w + 7, py, -1, 0, TICK_FONT, 0, buf);
    }
    if (label && *label) {
        cairo_translate(cr, x + w + 70, y + h / 2);
        cairo_rotate(cr, -PLOT_PI / 2);
        ls_plot_text(cr, 0, 0, 0, 0, LABEL_FONT, 0, label);
    }
    cairo_restore(cr);
}

/* ---------------------------------------------------------------- output */

static void draw_on(cairo_surface_t *s, double width, double height, ls_plot_draw_fn draw, void *ctx) {
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw(cr, width, height, ctx);
    cairo_destroy(cr);
}

/* Written beside the target and renamed over it: a failed write leaves the old figure. */
int ls_plot_save(const char *base, double width, double height, ls_plot_draw_fn draw, void *ctx) {
    char path[4096], tmp[4200];
    int ok = 1;
    for (int f = 0; f < 2 && ok; f++) {
        snprintf(path, sizeof path, "%s.%s", base, f == 0 ? "png" : "svg");
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        cairo_surface_t *s = f == 0 ? cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)width, (int)height)
                                    : cairo_svg_surface_create(tmp, width, height);
        cairo_status_t st = cairo_surface_status(s);
        if (st == CAIRO_STATUS_SUCCESS) {
            draw_on(s, width, height, draw, ctx);
            if (f == 0) st = cairo_surface_write_to_png(s, tmp);
            cairo_surface_finish(s);
            if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
        }
        cairo_surface_destroy(s);
        if (st != CAIRO_STATUS_SUCCESS) {
            remove(tmp);
            return ls_error("%s: cannot write the figure: %s", path, cairo_status_to_string(st));
        }
        if (rename(tmp, path) != 0) {
            remove(tmp);
            return ls_error("%s: cannot write the figure (rename failed)", path);
        }
    }
    return LS_OK;
}

void ls_plot_release_caches(void) {
    cairo_debug_reset_static_data();
    FcFini();
}
