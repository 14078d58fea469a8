/*
 * plot.h: a small charting layer on cairo for the report's figures (src/report_plots.c).
 *
 * A figure is a draw function called once per output surface: ls_plot_save renders it to
 * PATH.png (image surface) and PATH.svg (vector surface) so that both show the same thing.
 * Inside, panels are ls_axes: a rectangle in figure pixels with data limits (linear or log),
 * drawn with ticks, grid, labels and a title; series are drawn in data coordinates and clipped
 * to the panel, NaN values break lines (a curve that stopped early simply ends).
 */
#ifndef LORASWEEP_PLOT_H
#define LORASWEEP_PLOT_H

#include <cairo.h>
#include <stddef.h>

typedef struct {
    double r, g, b;
} ls_rgb;

/* A qualitative palette that stays distinguishable for 20 series (Tableau 10 then its light
 * variants); index wraps. */
ls_rgb ls_plot_color(int i);
/* Viridis, t in [0, 1] (clamped): perceptually uniform, readable in grey, for heatmaps. */
ls_rgb ls_plot_viridis(double t);

typedef void (*ls_plot_draw_fn)(cairo_t *cr, double width, double height, void *ctx);

/* Render draw into "<base>.png" and "<base>.svg" (width x height pixels, white background).
 * LS_ERR with the file named when cairo cannot write either. */
int ls_plot_save(const char *base, double width, double height, ls_plot_draw_fn draw, void *ctx);

/* Free the font caches cairo and fontconfig keep for the life of the process, after the last
 * figure (every surface and context already destroyed), so that LeakSanitizer sees only what is
 * ours: a surface or a font face we failed to destroy is still reported. */
void ls_plot_release_caches(void);

typedef struct {
    double x, y, w, h;         /* the plotting area in figure pixels (ticks and labels go outside) */
    double xmin, xmax, ymin, ymax;
    int xlog, ylog;
} ls_axes;

/* Panel inside the outer rectangle (x, y, w, h): leaves room for title, tick labels and axis
 * labels. Limits come from ls_axes_fit_* or are set directly. */
void ls_axes_place(ls_axes *ax, double x, double y, double w, double h);
/* Data limits from values (NaN and, on a log axis, values <= 0 ignored), padded a little;
 * `log` 1 forces a log axis, -1 chooses one when the values span more than `decades` decades.
 * With no usable value the range is [0, 1] (or [1, 10] on a log axis). */
void ls_axes_fit_x(ls_axes *ax, const double *v, size_t n, int log, double decades);
void ls_axes_fit_y(ls_axes *ax, const double *v, size_t n, int log, double decades);
/* Include more values in an already fitted range (call fit once with the first array). */
void ls_axes_extend_x(ls_axes *ax, const double *v, size_t n);
void ls_axes_extend_y(ls_axes *ax, const double *v, size_t n);

/* Frame, grid lines, tick labels, axis labels and title. */
void ls_axes_draw(cairo_t *cr, const ls_axes *ax, const char *title, const char *xlabel, const char *ylabel);

/* Data to figure coordinates (NaN for a value a log axis cannot show). */
double ls_axes_px(const ls_axes *ax, double x);
double ls_axes_py(const ls_axes *ax, double y);

enum { LS_PLOT_MARKER_CROSS = 5 }; /* an x: where something ended early */

typedef struct {
    ls_rgb color;
    double alpha;       /* 0 means 1 */
    double width;       /* line width in pixels; 0 means 1.5 */
    int dashed;         /* 1 dashed, 2 dotted */
    int marker;         /* 0 none, 1 circle, 2 square, 3 triangle, 4 diamond, 5 cross (LS_PLOT_MARKER_CROSS) */
    double marker_size; /* 0 means 4 */
} ls_style;

/* y against x (n points); NaN (or a non-positive value on a log axis) breaks the line. */
void ls_plot_line(cairo_t *cr, const ls_axes *ax, const double *x, const double *y, size_t n, const ls_style *st);
/* The region between lo and hi, filled with color at alpha. */
void ls_plot_band(cairo_t *cr, const ls_axes *ax, const double *x, const double *lo, const double *hi, size_t n,
                  ls_rgb color, double alpha);
/* A vertical line at data x across the panel, with an optional label at its top. */
void ls_plot_vline(cairo_t *cr, const ls_axes *ax, double x, ls_rgb color, int dashed, const char *label);

typedef struct {
    const char *label;
    ls_style style;
    int band;           /* draw a filled swatch instead of a line */
} ls_legend_entry;

/* A legend in a box with its top-left corner at (x, y), in columns of at most max_rows
 * entries; font size in pixels. Returns the width it took. */
double ls_plot_legend(cairo_t *cr, double x, double y, const ls_legend_entry *e, size_t n, int max_rows,
                      double font_size);
/* Width of the widest legend column for these entries (to plan the layout). */
double ls_plot_legend_width(cairo_t *cr, const ls_legend_entry *e, size_t n, double font_size);

/* Text at (x, y) in figure pixels; ha -1 left, 0 centre, 1 right; va -1 top, 0 middle, 1 baseline. */
void ls_plot_text(cairo_t *cr, double x, double y, int ha, int va, double size, int bold, const char *text);
/* The same in a colour (ls_plot_text draws in near-black). */
void ls_plot_text_rgb(cairo_t *cr, double x, double y, int ha, int va, double size, int bold, ls_rgb color,
                      const char *text);

/* A vertical colour bar for the range [lo, hi] of a colormap (viridis), with ticks and label. */
void ls_plot_colorbar(cairo_t *cr, double x, double y, double w, double h, double lo, double hi, const char *label);

/* "1e-05", "0.003", "12.5", "3.2e+16": short number text for ticks and cells. */
void ls_plot_format(double v, char *buf, size_t cap);
/* Always e-notation, two significant digits at most: "1e-02", "3.2e+16" (learning rates). */
void ls_plot_format_e(double v, char *buf, size_t cap);
/* e-notation with as many significant digits as v has, at most `digits` ("1e-04", "1.279e-04"):
 * sampled learning rates (4 digits) that differ only in their third digit stay apart. */
void ls_plot_format_e_digits(double v, int digits, char *buf, size_t cap);

#endif
