/*
 * report_plots.c: the report's figures (PNG + SVG through plot.c): loss curves of every trial,
 * a validation-loss heatmap over learning rate x rank, forecasts of chosen systems, FLOPS
 * against validation loss, and the validation loss at the rungs of each early-stopping stage.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/plot.h"
#include "lorasweep/report.h"

#define LEGEND_FONT 12.0

/* a learning rate with the digits it has (sampled ones: up to 4), so that neighbours differ */
static void lr_short(char *buf, size_t cap, double lr) {
    if (lr > 0 && lr < 1e-3) ls_plot_format_e_digits(lr, LS_GRID_SAMPLE_DIGITS, buf, cap);
    else ls_plot_format(lr, buf, cap);
}

/* "lr 1e-03, rank 4, ctx 64 (lr_rank)" */
static void trial_label(const ls_report *rep, int i, char *buf, size_t cap) {
    const ls_report_trial *t = &rep->trials[i];
    char lr[32];
    lr_short(lr, sizeof lr, t->row.lr);
    char extra[256] = ""; /* the other keys that vary in the file: ", alpha 8.0" */
    for (int j = 0; j < rep->n_varying; j++) {
        const char *key = rep->varying[j]->key, *dot = strrchr(key, '.');
        char v[64];
        ls_report_value(t, rep->varying[j], v, sizeof v);
        size_t at = strlen(extra);
        snprintf(extra + at, sizeof extra - at, ", %s %s", dot ? dot + 1 : key, v);
    }
    if (rep->configs && t->configuration >= 0 && rep->configs[t->configuration].repeats > 1 && t->repeat >= 0) {
        size_t at = strlen(extra); /* repeats of one configuration would share a label */
        snprintf(extra + at, sizeof extra - at, ", repeat %d", t->repeat);
    }
    char stopped[48]; /* early stopping: where */
    snprintf(stopped, sizeof stopped, ", stopped at step %d", t->row.metrics.steps);
    if (t->baseline) snprintf(buf, cap, "untrained baseline (validation loss %.4f)", t->row.metrics.final_val_loss);
    else snprintf(buf, cap, "lr %s, rank %d, ctx %d%s, %d steps (%s%s)%s", lr, t->row.lora_rank, t->row.ctx, extra,
                  t->row.max_steps, t->stage_name,
                  t->status == LS_RESULT_DONE      ? ""
                  : t->status == LS_RESULT_RUNNING ? (t->live ? ", running" : ", interrupted")
                                                   : t->status == LS_RESULT_FAILED ? ", failed"
                                                   : t->status == LS_RESULT_SKIPPED ? ", skipped"
                                                   : t->status == LS_RESULT_STOPPED ? stopped : ", pending",
                  i == rep->best ? " best" : "");
}

typedef struct {
    const ls_report *rep;
    const ls_report_plot_options *opt;
    int *shown; /* trial indices in the figure */
    int n_shown;
    /* forecast figure */
    int trial;
    int systems[16], n_systems;   /* positions in the trial's forecast arrays */
    const ls_dataset *data;       /* for the context; NULL when the data file is unreadable */
    /* heatmap; rungs: the early-stopping stage */
    int stage;
    int of_total; /* loss curves: trials there were to show (more than drawn when capped) */
} figure;

#define MAX_CURVES 24

/* Something to draw: a finite training loss or a validation point (rows of trials that never ran
 * are NaN). */
static int has_curve(const ls_report_trial *t) {
    for (int i = 0; i < t->n_val; i++)
        if (isfinite(t->val_loss[i])) return 1;
    for (int i = 0; i < t->n_train; i++)
        if (isfinite(t->train_loss[i])) return 1;
    return 0;
}

/* Up to cap of the trials in idx: the baseline and the lowest final validation losses, in
 * their original order (the legend then reads like the table). */
static int best_curves(const ls_report *rep, const int *idx, int n, int *out, int cap) {
    if (n <= cap) {
        memcpy(out, idx, (size_t)n * sizeof *idx);
        return n;
    }
    char *take = ls_calloc((size_t)n, 1);
    int m = 0;
    for (int k = 0; k < n && m < cap; k++)
        if (rep->trials[idx[k]].baseline) take[k] = 1, m++;
    while (m < cap) {
        int pick = -1;
        for (int k = 0; k < n; k++) {
            double v = rep->trials[idx[k]].row.metrics.final_val_loss;
            if (take[k] || isnan(v)) continue;
            if (pick < 0 || v < rep->trials[idx[pick]].row.metrics.final_val_loss) pick = k;
        }
        if (pick < 0) break;
        take[pick] = 1, m++;
    }
    int j = 0;
    for (int k = 0; k < n; k++)
        if (take[k]) out[j++] = idx[k];
    free(take);
    return j;
}

/* ---------------------------------------------------------------- loss curves */

/* Centred moving average ignoring NaN: a readable trend of a noisy per-step loss. */
static void smooth(const double *y, double *out, int n, int half) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        int c = 0;
        for (int k = i - half; k <= i + half; k++)
            if (k >= 0 && k < n && !isnan(y[k])) s += y[k], c++;
        out[i] = isnan(y[i]) || c == 0 ? NAN : s / c;
    }
}

static void draw_losses(cairo_t *cr, double W, double H, void *vctx) {
    figure *f = vctx;
    const ls_report *rep = f->rep;
    ls_legend_entry *le = ls_calloc((size_t)f->n_shown + 1, sizeof *le);
    char (*labels)[160] = ls_calloc((size_t)f->n_shown + 1, sizeof *labels);
    for (int k = 0; k < f->n_shown; k++) {
        int i = f->shown[k];
        trial_label(rep, i, labels[k], sizeof labels[k]);
        le[k].label = labels[k];
        le[k].style = (ls_style){.color = ls_plot_color(k), .width = i == rep->best ? 2.6 : 1.8};
        if (rep->trials[i].baseline) le[k].style = (ls_style){.color = {0.3, 0.3, 0.3}, .width = 1.6, .dashed = 2};
    }
    int max_rows = (int)((H - 120) / (LEGEND_FONT * 1.55));
    int cols = (f->n_shown + max_rows - 1) / (max_rows > 0 ? max_rows : 1);
    double lw = ls_plot_legend_width(cr, le, (size_t)f->n_shown, LEGEND_FONT) * (cols > 0 ? cols : 1) + 16;
    double panel_w = (W - lw - 20) / 2;

    char heading[160];
    if (f->of_total > f->n_shown)
        snprintf(heading, sizeof heading, "Training and validation loss of the %d best of %d trials (--stage narrows the set)",
                 f->n_shown, f->of_total);
    else snprintf(heading, sizeof heading, "Training and validation loss of every trial");
    ls_plot_text(cr, 20, 14, -1, -1, 16, 1, heading);
    ls_axes tr, va;
    ls_axes_place(&tr, 10, 40, panel_w, H - 50);
    ls_axes_place(&va, 10 + panel_w, 40, panel_w, H - 50);
    /* limits over every curve */
    size_t cap = 0;
    for (int k = 0; k < f->n_shown; k++) {
        const ls_report_trial *t = &rep->trials[f->shown[k]];
        cap += (size_t)t->n_train + (size_t)t->n_val;
    }
    cap += (size_t)f->n_shown; /* a baseline's level */
    double *xs = ls_malloc((cap + 2) * sizeof *xs), *ys = ls_malloc((cap + 2) * sizeof *ys);
    size_t n = 0, nv = 0;
    double *vx = ls_malloc((cap + 2) * sizeof *vx), *vy = ls_malloc((cap + 2) * sizeof *vy);
    for (int k = 0; k < f->n_shown; k++) {
        const ls_report_trial *t = &rep->trials[f->shown[k]];
        for (int s = 0; s < t->n_train; s++) xs[n] = s + 1, ys[n++] = t->train_loss[s];
        for (int s = 0; s < t->n_val; s++) vx[nv] = t->val_step[s], vy[nv++] = t->val_loss[s];
        if (t->baseline) vx[nv] = 0, vy[nv++] = t->row.metrics.final_val_loss;
    }
    xs[n] = 0, ys[n] = NAN;
    ls_axes_fit_x(&tr, xs, n + 1, 0, 0);
    ls_axes_fit_y(&tr, ys, n, -1, 1.0);
    ls_axes_fit_x(&va, vx, nv, 0, 0);
    ls_axes_extend_x(&va, xs, n + 1);
    ls_axes_fit_y(&va, vy, nv, -1, 1.0);
    tr.xmin = va.xmin = 0;
    ls_axes_draw(cr, &tr, "training loss (per step; bold: moving average)", "optimiser step",
                 "loss (nats per target token)");
    ls_axes_draw(cr, &va, "validation loss", "optimiser step", "loss (nats per target token)");

    for (int k = 0; k < f->n_shown; k++) {
        const ls_report_trial *t = &rep->trials[f->shown[k]];
        ls_style st = le[k].style;
        if (t->n_train > 0) {
            double *x = ls_malloc((size_t)t->n_train * sizeof *x), *y = ls_malloc((size_t)t->n_train * sizeof *y);
            double *sm = ls_malloc((size_t)t->n_train * sizeof *sm);
            for (int s = 0; s < t->n_train; s++) x[s] = s + 1, y[s] = t->train_loss[s];
            ls_style raw = {.color = st.color, .alpha = 0.22, .width = 1};
            ls_plot_line(cr, &tr, x, y, (size_t)t->n_train, &raw);
            smooth(y, sm, t->n_train, t->n_train >= 40 ? t->n_train / 40 : 1);
            ls_plot_line(cr, &tr, x, sm, (size_t)t->n_train, &st);
            free(x), free(y), free(sm);
        }
        if (t->baseline) {
            /* the untrained model has one validation loss: a level to beat */
            double level = t->row.metrics.final_val_loss;
            double x[2] = {va.xmin, va.xmax}, y[2] = {level, level};
            ls_plot_line(cr, &va, x, y, 2, &st);
        } else if (t->n_val > 0) {
            double *x = ls_malloc((size_t)t->n_val * sizeof *x), *y = ls_malloc((size_t)t->n_val * sizeof *y);
            for (int s = 0; s < t->n_val; s++) x[s] = t->val_step[s], y[s] = t->val_loss[s];
            ls_style vs = st;
            vs.marker = 1;
            vs.marker_size = 3.5;
            ls_plot_line(cr, &va, x, y, (size_t)t->n_val, &vs);
            free(x), free(y);
        }
    }
    ls_plot_legend(cr, W - lw + 4, 48, le, (size_t)f->n_shown, max_rows, LEGEND_FONT);
    free(xs), free(ys), free(vx), free(vy), free(le), free(labels);
}

/* ---------------------------------------------------------------- heatmap */

/* Sorted distinct values. */
static int distinct(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

/* The stage to draw: the first (or the chosen) one with 2+ learning rates and 2+ ranks. */
static int heatmap_stage(const ls_report *rep, int only, double *lrs, int *n_lr, double *ranks, int *n_rank) {
    for (int s = 0; s < rep->n_stages; s++) {
        if (only >= 0 && s != only) continue;
        int a = 0, b = 0;
        for (int i = 0; i < rep->n_trials; i++) {
            const ls_report_trial *t = &rep->trials[i];
            if (t->stage != s || t->baseline || a >= 64) continue;
            lrs[a++] = t->row.lr;
            ranks[b++] = t->row.lora_rank;
        }
        *n_lr = distinct(lrs, a);
        *n_rank = distinct(ranks, b);
        if (*n_lr >= 2 && *n_rank >= 2) return s;
    }
    return -1;
}

static void draw_heatmap(cairo_t *cr, double W, double H, void *vctx) {
    figure *f = vctx;
    const ls_report *rep = f->rep;
    double lrs[64], ranks[64];
    int n_lr, n_rank;
    int s = heatmap_stage(rep, f->stage, lrs, &n_lr, ranks, &n_rank);
    /* cell value: the lowest final validation loss of a done trial with that lr and rank (of a
     * configuration with repeats: its mean over them) */
    double cell[64][64];
    int cell_trial[64][64];
    double lo = INFINITY, hi = -INFINITY;
    for (int a = 0; a < n_lr; a++)
        for (int b = 0; b < n_rank; b++) {
            cell[a][b] = NAN, cell_trial[a][b] = -1;
            for (int i = 0; i < rep->n_trials; i++) {
                const ls_report_trial *t = &rep->trials[i];
                if (t->stage != s || t->baseline || t->row.lr != lrs[a] || t->row.lora_rank != ranks[b]) continue;
                double v = t->status == LS_RESULT_DONE ? t->row.metrics.final_val_loss : NAN;
                const ls_report_config *c = &rep->configs[t->configuration];
                if (c->repeats > 1) v = c->stat[LS_REPORT_STAT_VAL_LOSS].mean; /* a configuration: over its repeats */
                if (cell_trial[a][b] < 0 || (!isnan(v) && !(v >= cell[a][b]))) cell[a][b] = v, cell_trial[a][b] = i;
            }
            if (!isnan(cell[a][b])) lo = fmin(lo, cell[a][b]), hi = fmax(hi, cell[a][b]);
        }
    if (!(lo < hi)) lo = isfinite(lo) ? lo - 0.5 : 0, hi = isfinite(hi) ? hi + 0.5 : 1;

    char title[200];
    snprintf(title, sizeof title, "Final validation loss over learning rate x LoRA rank (stage %s)", rep->stage_names[s]);
    ls_plot_text(cr, W / 2 - 60, 16, 0, -1, 16, 1, title);
    double gx = 120, gy = 60, gw = W - gx - 170, gh = H - gy - 80;
    double cw = gw / n_rank, ch = gh / n_lr;
    char buf[64];
    for (int a = 0; a < n_lr; a++)
        for (int b = 0; b < n_rank; b++) {
            double x = gx + b * cw, y = gy + (n_lr - 1 - a) * ch; /* the smallest lr at the bottom */
            double v = cell[a][b];
            if (isnan(v)) {
                cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
            } else {
                ls_rgb c = ls_plot_viridis((v - lo) / (hi - lo));
                cairo_set_source_rgb(cr, c.r, c.g, c.b);
            }
            cairo_rectangle(cr, x + 1, y + 1, cw - 2, ch - 2);
            cairo_fill(cr);
            int ti = cell_trial[a][b];
            if (isnan(v)) {
                snprintf(buf, sizeof buf, "%s", ti < 0 ? "not run" : ls_result_status_name(rep->trials[ti].status));
                ls_plot_text(cr, x + cw / 2, y + ch / 2, 0, 0, 14, 0, buf);
                continue;
            }
            snprintf(buf, sizeof buf, "%.4f", v);
            /* light text on the dark end of the colour map */
            ls_rgb ink = (v - lo) / (hi - lo) < 0.6 ? (ls_rgb){1, 1, 1} : (ls_rgb){0.1, 0.1, 0.1};
            ls_plot_text_rgb(cr, x + cw / 2, y + ch / 2 - 9, 0, 0, 16, 1, ink, buf);
            const ls_report_config *cc = &rep->configs[rep->trials[ti].configuration];
            if (cc->repeats > 1)
                snprintf(buf, sizeof buf, "MSE %.3g, n %d", cc->stat[LS_REPORT_STAT_MSE + 2].mean,
                         cc->stat[LS_REPORT_STAT_VAL_LOSS].n);
            else snprintf(buf, sizeof buf, "MSE %.3g", rep->trials[ti].row.metrics.mse[2]);
            ls_plot_text_rgb(cr, x + cw / 2, y + ch / 2 + 18, 0, 1, 12, 0, ink, buf);
            if (ti == rep->best || (rep->best >= 0 && v == lo)) {
                cairo_set_source_rgb(cr, 0.85, 0.1, 0.1);
                cairo_set_line_width(cr, 3);
                cairo_rectangle(cr, x + 3, y + 3, cw - 6, ch - 6);
                cairo_stroke(cr);
            }
        }
    for (int b = 0; b < n_rank; b++) {
        snprintf(buf, sizeof buf, "%g", ranks[b]);
        ls_plot_text(cr, gx + (b + 0.5) * cw, gy + gh + 8, 0, -1, 13, 0, buf);
    }
    ls_plot_text(cr, gx + gw / 2, gy + gh + 32, 0, -1, 13.5, 0, "LoRA rank");
    for (int a = 0; a < n_lr; a++) {
        lr_short(buf, sizeof buf, lrs[a]);
        ls_plot_text(cr, gx - 10, gy + (n_lr - 1 - a + 0.5) * ch, 1, 0, 13, 0, buf);
    }
    cairo_save(cr);
    cairo_translate(cr, gx - 90, gy + gh / 2);
    cairo_rotate(cr, -3.14159265358979323846 / 2);
    ls_plot_text(cr, 0, 0, 0, 0, 13.5, 0, "learning rate");
    cairo_restore(cr);
    ls_plot_colorbar(cr, W - 140, gy, 22, gh, lo, hi, "final validation loss (nats per token)");
    ls_plot_text(cr, gx, H - 18, -1, 1, 11.5, 0,
                 rep->repeated ? "cell: lowest final validation loss of a finished configuration, the mean over its "
                                 "n repeats (and their mean forecast MSE); red frame: lowest"
                               : "cell: lowest final validation loss of a finished trial (and its forecast MSE); "
                                 "red frame: lowest");
}

/* ---------------------------------------------------------------- forecasts */

static double system_mse(const ls_report_trial *t, int s, int var) {
    double sum = 0;
    int n = 0;
    for (int h = 0; h < t->H; h++)
        for (int v = 0; v < 2; v++) {
            if (var >= 0 && v != var) continue;
            size_t k = ((size_t)s * (size_t)t->H + (size_t)h) * 2 + (size_t)v;
            double d = (double)t->fc_mean[k] - t->fc_truth[k];
            if (!isnan(d)) sum += d * d, n++;
        }
    return n ? sum / n : NAN;
}

static void draw_forecasts(cairo_t *cr, double W, double H, void *vctx) {
    figure *f = vctx;
    const ls_report_trial *t = &f->rep->trials[f->trial];
    char lr[32], title[400];
    lr_short(lr, sizeof lr, t->row.lr);
    if (t->baseline) snprintf(title, sizeof title, "Forecasts of the untrained model (trial %016" PRIx64 ")", t->row.id);
    else snprintf(title, sizeof title, "Forecasts of trial %016" PRIx64 " (stage %s: lr %s, rank %d, ctx %d, %d steps)",
                  t->row.id, t->stage_name, lr, t->row.lora_rank, t->row.ctx, t->row.metrics.steps);
    ls_plot_text(cr, 20, 12, -1, -1, 16, 1, title);
    char sub[300];
    snprintf(sub, sizeof sub, "solid: true series; dashed: mean of %d sampled forecasts; shaded: +-1 standard deviation; "
             "MSE of the mean forecast in each title", t->config.eval.samples);
    ls_plot_text(cr, 20, 36, -1, -1, 12, 0, sub);
    double pw = (W - 20) / f->n_systems;
    ls_rgb col[2] = {ls_plot_color(0), ls_plot_color(1)};
    int C = t->config.eval.context_steps;
    for (int p = 0; p < f->n_systems; p++) {
        int s = f->systems[p], sys = t->systems[s];
        ls_axes ax;
        ls_axes_place(&ax, 10 + p * pw, 62, pw, H - 62 - 46);
        int have_ctx = f->data && sys >= 0 && sys < f->data->systems && C <= f->data->steps;
        int first = have_ctx ? 0 : C, n = C + t->H - first; /* the true series: context (if known) + horizon */
        double *x = ls_malloc((size_t)n * sizeof *x), *truth[2];
        double *hx = ls_malloc((size_t)t->H * sizeof *hx), *m = ls_malloc((size_t)t->H * sizeof *m);
        double *lo = ls_malloc((size_t)t->H * sizeof *lo), *hi = ls_malloc((size_t)t->H * sizeof *hi);
        double *all = ls_malloc((size_t)(2 * n + 4 * t->H) * sizeof *all); /* every value the axis must show */
        size_t na = 0;
        double tmax = 0;
        for (int i = 0; i < n; i++) x[i] = first + i;
        for (int v = 0; v < 2; v++) {
            truth[v] = ls_malloc((size_t)n * sizeof *truth[v]);
            for (int i = 0; i < n; i++) {
                int step = first + i;
                truth[v][i] = step < C ? f->data->traj[((size_t)sys * (size_t)f->data->steps + (size_t)step) * 2 + (size_t)v]
                                       : t->fc_truth[((size_t)s * (size_t)t->H + (size_t)(step - C)) * 2 + (size_t)v];
                tmax = fmax(tmax, truth[v][i]);
                all[na++] = truth[v][i];
            }
            for (int h = 0; h < t->H; h++) {
                size_t q = ((size_t)s * (size_t)t->H + (size_t)h) * 2 + (size_t)v;
                all[na++] = t->fc_mean[q] - t->fc_std[q];
                all[na++] = t->fc_mean[q] + t->fc_std[q];
            }
        }
        ax.xmin = have_ctx ? 0 : C - 1, ax.xmax = C + t->H;
        /* a forecast far off the true scale would flatten the truth to a line at 0: then log */
        double amax = 0;
        for (size_t i = 0; i < na; i++) amax = fmax(amax, all[i]);
        int log_y = tmax > 0 && amax > 10 * tmax;
        ls_axes_fit_y(&ax, all, na, log_y, 0);
        if (!log_y && ax.ymin < 0 && ax.ymin > -0.2 * ax.ymax) ax.ymin = 0; /* populations: 0 as the floor when near */
        char pt[160];
        snprintf(pt, sizeof pt, "system %d: MSE %.3g (prey %.3g, predator %.3g)", sys, system_mse(t, s, -1),
                 system_mse(t, s, 0), system_mse(t, s, 1));
        ls_axes_draw(cr, &ax, pt, "time step", p == 0 ? (log_y ? "population (data units, log scale)" : "population (data units)") : "");
        for (int v = 0; v < 2; v++) {
            for (int h = 0; h < t->H; h++) {
                size_t q = ((size_t)s * (size_t)t->H + (size_t)h) * 2 + (size_t)v;
                hx[h] = C + h, m[h] = t->fc_mean[q];
                lo[h] = t->fc_mean[q] - t->fc_std[q], hi[h] = t->fc_mean[q] + t->fc_std[q];
                if (ax.ylog && lo[h] <= ax.ymin) lo[h] = ax.ymin; /* the band runs off the bottom of a log axis */
            }
            ls_plot_band(cr, &ax, hx, lo, hi, (size_t)t->H, col[v], 0.2);
            ls_style solid = {.color = col[v], .width = 1.8};
            ls_plot_line(cr, &ax, x, truth[v], (size_t)n, &solid);
            ls_style mean = {.color = col[v], .width = 2.2, .dashed = 1};
            ls_plot_line(cr, &ax, hx, m, (size_t)t->H, &mean);
        }
        ls_plot_vline(cr, &ax, C - 0.5, (ls_rgb){0.35, 0.35, 0.35}, 1,
                      have_ctx ? "context | forecast" : "forecast (context not drawn)");
        free(x), free(truth[0]), free(truth[1]), free(hx), free(m), free(lo), free(hi), free(all);
    }
    ls_legend_entry le[5] = {
        {"prey (true)", {.color = col[0], .width = 1.8}, 0},
        {"predator (true)", {.color = col[1], .width = 1.8}, 0},
        {"prey forecast (mean)", {.color = col[0], .width = 2.2, .dashed = 1}, 0},
        {"predator forecast (mean)", {.color = col[1], .width = 2.2, .dashed = 1}, 0},
        {"+-1 standard deviation", {.color = {0.45, 0.45, 0.45}, .alpha = 0.35}, 1},
    };
    double lw = ls_plot_legend_width(cr, le, 5, LEGEND_FONT) * 5;
    ls_plot_legend(cr, (W - lw) / 2, H - 34, le, 5, 1, LEGEND_FONT);
}

/* ---------------------------------------------------------------- FLOPS against loss */

static void draw_flops(cairo_t *cr, double W, double H, void *vctx) {
    figure *f = vctx;
    const ls_report *rep = f->rep;
    double total = 0;
    double *x = ls_malloc((size_t)(f->n_shown + 1) * sizeof *x), *y = ls_malloc((size_t)(f->n_shown + 1) * sizeof *y);
    for (int k = 0; k < f->n_shown; k++) {
        const ls_report_trial *t = &rep->trials[f->shown[k]];
        x[k] = t->row.metrics.flops_total, y[k] = t->status == LS_RESULT_DONE ? t->row.metrics.final_val_loss : NAN;
        if (!isnan(x[k])) total += x[k];
    }
    char title[300], sub[200];
    snprintf(title, sizeof title, "FLOPS of each trial against its final validation loss");
    if (rep->budget_flops > 0)
        snprintf(sub, sizeof sub, "all trials together: %.3g FLOPS of the budget %.3g (%.0f%%)", total, rep->budget_flops,
                 100 * total / rep->budget_flops);
    else snprintf(sub, sizeof sub, "all trials together: %.3g FLOPS (no budget set)", total);
    ls_plot_text(cr, 20, 12, -1, -1, 16, 1, title);
    ls_plot_text(cr, 20, 36, -1, -1, 12, 0, sub);
    /* one colour and marker per stage */
    int n_st = rep->n_stages;
    ls_legend_entry *le = ls_calloc((size_t)n_st + 1, sizeof *le);
    int used = 0;
    for (int s = 0; s < n_st; s++) {
        le[used].label = rep->stage_names[s];
        le[used].style = (ls_style){.color = ls_plot_color(s), .width = -1, .marker = 1 + s % 4, .marker_size = 6};
        int any = 0;
        for (int k = 0; k < f->n_shown; k++) any |= rep->trials[f->shown[k]].stage == s && !isnan(y[k]);
        if (any) used++;
    }
    double lw = ls_plot_legend_width(cr, le, (size_t)used, LEGEND_FONT) + 20;
    ls_axes ax;
    ls_axes_place(&ax, 10, 56, W - lw - 20, H - 62);
    ls_axes_fit_x(&ax, x, (size_t)f->n_shown, 1, 0);
    ls_axes_fit_y(&ax, y, (size_t)f->n_shown, -1, 1.0);
    ls_axes_draw(cr, &ax, "", "FLOPS of the trial (training + validation + forecast)", "final validation loss (nats per token)");
    char buf[96], lr[32];
    double (*boxes)[3] = ls_calloc((size_t)f->n_shown + 1, sizeof *boxes); /* x, baseline y, width of placed labels */
    int n_boxes = 0;
    for (int k = 0; k < f->n_shown; k++) {
        const ls_report_trial *t = &rep->trials[f->shown[k]];
        if (isnan(y[k]) || isnan(x[k])) continue;
        ls_style st = {.color = ls_plot_color(t->stage), .width = -1, .marker = 1 + t->stage % 4, .marker_size = 6};
        ls_plot_line(cr, &ax, &x[k], &y[k], 1, &st);
        double px = ls_axes_px(&ax, x[k]), py = ls_axes_py(&ax, y[k]);
        if (f->shown[k] == rep->best) {
            cairo_set_source_rgb(cr, 0.85, 0.1, 0.1);
            cairo_set_line_width(cr, 2);
            cairo_new_sub_path(cr);
            cairo_arc(cr, px, py, 11, 0, 2 * 3.14159265358979323846);
            cairo_stroke(cr);
        }
        lr_short(lr, sizeof lr, t->row.lr);
        if (t->baseline) snprintf(buf, sizeof buf, "untrained");
        else snprintf(buf, sizeof buf, "%s r%d c%d%s", lr, t->row.lora_rank, t->row.ctx, f->shown[k] == rep->best ? " (best)" : "");
        /* labels of near points would overprint: move each down or up until it is clear */
        cairo_text_extents_t e;
        cairo_set_font_size(cr, 10.5);
        cairo_text_extents(cr, buf, &e);
        static const double shifts[] = {0, 12, -12, 24, -24, 36, -36, 48, -48};
        double ly = py - 6;
        for (size_t a = 0; a < sizeof shifts / sizeof *shifts; a++) {
            double cy = py - 6 + shifts[a];
            int clear = 1;
            for (int b = 0; b < n_boxes && clear; b++)
                clear = !(px + 10 < boxes[b][0] + boxes[b][2] && boxes[b][0] < px + 10 + e.x_advance &&
                          cy - 11 < boxes[b][1] && boxes[b][1] - 11 < cy);
            if (clear) {
                ly = cy;
                break;
            }
        }
        boxes[n_boxes][0] = px + 10, boxes[n_boxes][1] = ly, boxes[n_boxes][2] = e.x_advance, n_boxes++;
        if (px + 10 + e.x_advance > ax.x + ax.w) /* no room on the right: the label goes left of its point */
            ls_plot_text(cr, px - 10, ly, 1, 1, 10.5, 0, buf);
        else ls_plot_text(cr, px + 10, ly, -1, 1, 10.5, 0, buf);
    }
    free(boxes);
    ls_plot_legend(cr, W - lw + 4, 64, le, (size_t)used, 20, LEGEND_FONT);
    free(x), free(y), free(le);
}

/* ---------------------------------------------------------------- early stopping at the rungs */

/* A line of the rungs figure: a configuration, at each rung the mean of its repeats' values there
 * (the value early stopping judged it by; without repeats, its trial's). */
typedef struct {
    int config;                  /* into rep->configs */
    double val[LS_ES_MAX_RUNGS]; /* NaN where none */
    int last;                    /* its last rung with a value */
    int stopped, done;           /* stopped early at `last` / ran to max_steps */
} rung_line;

static int by_reach(const void *pa, const void *pb) {
    const rung_line *a = pa, *b = pb;
    if (a->last != b->last) return a->last > b->last ? -1 : 1; /* the furthest first */
    double x = a->val[a->last], y = b->val[b->last];
    if (x != y && !isnan(x) && !isnan(y)) return x < y ? -1 : 1;
    return (a->config > b->config) - (a->config < b->config);
}

/* The lines of stage s, those that got furthest first (then the lowest value there); returns the
 * number of configurations with a value at some rung. */
static int rung_lines(const ls_report *rep, int s, rung_line *out) {
    const ls_report_es *e = &rep->stage_es[s];
    int n = 0;
    for (int c = 0; c < rep->n_configs; c++) {
        const ls_report_config *cf = &rep->configs[c];
        if (cf->stage != s || cf->baseline) continue;
        rung_line *l = &out[n];
        l->config = c, l->last = -1, l->stopped = l->done = 0;
        for (int k = 0; k < e->n_rungs; k++) {
            double sum = 0;
            int m = 0;
            for (int r = 0; r < cf->n_trials; r++) {
                const ls_report_trial *t = &rep->trials[cf->trials[r]];
                if (t->stage == s && t->rung_val && isfinite(t->rung_val[k])) sum += t->rung_val[k], m++;
            }
            l->val[k] = m ? sum / m : NAN;
            if (m) l->last = k;
        }
        for (int r = 0; r < cf->n_trials; r++) {
            ls_result_status st = rep->trials[cf->trials[r]].status;
            l->stopped |= st == LS_RESULT_STOPPED, l->done |= st == LS_RESULT_DONE;
        }
        l->done &= l->last == e->n_rungs - 1 && !l->stopped;
        if (l->last >= 0) n++;
    }
    qsort(out, (size_t)n, sizeof *out, by_reach);
    return n;
}

static void draw_rungs(cairo_t *cr, double W, double H, void *vctx) {
    figure *f = vctx;
    const ls_report *rep = f->rep;
    int s = f->stage;
    const ls_report_es *e = &rep->stage_es[s];
    rung_line *lines = ls_malloc((size_t)(rep->n_configs ? rep->n_configs : 1) * sizeof *lines);
    int total = rung_lines(rep, s, lines), n = total < MAX_CURVES ? total : MAX_CURVES;
    int repeated = 0, stopped = 0, done = 0;
    for (int k = 0; k < total; k++) {
        repeated |= rep->configs[lines[k].config].repeats > 1;
        stopped += lines[k].stopped, done += lines[k].done;
    }
    /* the legend: one entry per line, then what the end markers mean */
    ls_legend_entry *le = ls_calloc((size_t)n + 2, sizeof *le);
    char (*labels)[160] = ls_calloc((size_t)n + 2, sizeof *labels);
    for (int k = 0; k < n; k++) {
        const rung_line *l = &lines[k];
        const ls_report_config *cf = &rep->configs[l->config];
        const ls_report_trial *t = &rep->trials[cf->first];
        char lr[32], end[64];
        lr_short(lr, sizeof lr, t->row.lr);
        if (l->stopped) snprintf(end, sizeof end, "stopped at step %d", e->rungs[l->last]);
        else if (l->done) snprintf(end, sizeof end, "to max_steps");
        else snprintf(end, sizeof end, "%s", ls_result_status_name(t->status));
        char mean[32] = "";
        if (cf->repeats > 1) snprintf(mean, sizeof mean, ", mean of %d repeats", cf->n_trials);
        snprintf(labels[k], sizeof labels[k], "lr %s, rank %d, ctx %d%s: %s", lr, t->row.lora_rank, t->row.ctx, mean, end);
        le[k].label = labels[k];
        le[k].style = (ls_style){.color = ls_plot_color(k), .width = l->done ? 2.6 : 1.6, .marker = 1,
                                 .marker_size = 3};
    }
    ls_rgb ink = {0.2, 0.2, 0.2};
    le[n] = (ls_legend_entry){"x: stopped early at this rung", {.color = ink, .width = -1, .marker = LS_PLOT_MARKER_CROSS,
                                                                .marker_size = 6}, 0};
    le[n + 1] = (ls_legend_entry){"o: ran to max_steps (the top rung)", {.color = ink, .width = -1, .marker = 1,
                                                                      .marker_size = 6}, 0};
    int max_rows = (int)((H - 120) / (LEGEND_FONT * 1.55));
    int cols = (n + 2 + max_rows - 1) / (max_rows > 0 ? max_rows : 1);
    double lw = ls_plot_legend_width(cr, le, (size_t)n + 2, LEGEND_FONT) * (cols > 0 ? cols : 1) + 16;

    char title[200], sub[300], es[64];
    snprintf(es, sizeof es, "%s, eta %d", ls_grid_es_names[e->type], e->eta);
    snprintf(title, sizeof title, "Validation loss at the rungs of stage %s (early stopping: %s)", rep->stage_names[s], es);
    ls_plot_text(cr, 20, 12, -1, -1, 16, 1, title);
    ls_report_savings sv;
    ls_report_stage_savings(rep, s, &sv);
    int w = snprintf(sub, sizeof sub, "%s%d %s: %d stopped early (x), %d ran to step %d (o)",
                     n < total ? "the furthest of " : "", total, repeated ? "configurations" : "trials", stopped, done,
                     e->rungs[e->n_rungs - 1]);
    if (isfinite(sv.to_end) && sv.to_end > 0 && w > 0 && (size_t)w < sizeof sub)
        snprintf(sub + w, sizeof sub - (size_t)w, "; FLOPS %.3g spent of %.3g had all run to the end (%.0f%% saved)",
                 sv.spent, sv.to_end, 100 * (sv.to_end - sv.spent) / sv.to_end);
    ls_plot_text(cr, 20, 36, -1, -1, 12, 0, sub);

    ls_axes ax;
    ls_axes_place(&ax, 10, 56, W - lw - 20, H - 62);
    double steps[LS_ES_MAX_RUNGS], *vals = ls_malloc(((size_t)n * LS_ES_MAX_RUNGS + 1) * sizeof *vals);
    size_t nv = 0;
    for (int k = 0; k < e->n_rungs; k++) steps[k] = e->rungs[k];
    for (int k = 0; k < n; k++)
        for (int r = 0; r < e->n_rungs; r++) vals[nv++] = lines[k].val[r];
    /* rungs are min_steps * eta^k: evenly spaced on a log axis */
    ls_axes_fit_x(&ax, steps, (size_t)e->n_rungs, e->n_rungs > 1 ? 1 : 0, 0);
    if (ax.xlog) ax.xmin = steps[0] / 1.3, ax.xmax = steps[e->n_rungs - 1] * 1.1; /* room for the end markers */
    ls_axes_fit_y(&ax, vals, nv, -1, 1.0);
    if (!ax.ylog) ax.ymax += 0.08 * (ax.ymax - ax.ymin); /* room for the rungs' labels above the lines */
    ls_axes_draw(cr, &ax, "", "optimiser step (log scale; dotted: the rungs)",
                 repeated ? "validation loss, mean of the repeats (nats per token)" : "validation loss (nats per token)");
    for (int k = 0; k < e->n_rungs; k++) { /* each rung named beside its line, the top one on its left */
        char label[48];
        int top = k == e->n_rungs - 1;
        if (top) snprintf(label, sizeof label, "top: step %d", e->rungs[k]);
        else snprintf(label, sizeof label, "rung %d: step %d", k, e->rungs[k]);
        ls_plot_vline(cr, &ax, steps[k], (ls_rgb){0.55, 0.55, 0.55}, 2, NULL);
        double px = ls_axes_px(&ax, steps[k]);
        ls_plot_text(cr, top ? px - 6 : px + 6, ax.y + 8, top ? 1 : -1, -1, 11.5, 0, label);
    }
    for (int k = n - 1; k >= 0; k--) { /* the furthest drawn last, on top */
        const rung_line *l = &lines[k];
        ls_plot_line(cr, &ax, steps, l->val, (size_t)e->n_rungs, &le[k].style);
        if (!l->stopped && !l->done) continue;
        ls_style end = {.color = le[k].style.color, .width = -1, .marker = l->stopped ? LS_PLOT_MARKER_CROSS : 1,
                        .marker_size = 6.5};
        ls_plot_line(cr, &ax, &steps[l->last], &l->val[l->last], 1, &end);
    }
    ls_plot_legend(cr, W - lw + 4, 64, le, (size_t)n + 2, max_rows, LEGEND_FONT);
    free(lines), free(vals), free(le), free(labels);
}

/* ---------------------------------------------------------------- the figures */

/* The trial whose forecasts are drawn: the chosen id (or a unique prefix), else the best, else
 * the baseline; -1 with a message when none has a forecast. */
static int forecast_trial(const ls_report *rep, const char *want) {
    if (want) {
        int found = -1;
        for (int i = 0; i < rep->n_trials; i++) {
            char id[32];
            snprintf(id, sizeof id, "%016" PRIx64, rep->trials[i].row.id);
            if (!strncmp(id, want, strlen(want))) {
                if (found >= 0) return ls_error("--trial %s: more than one trial id starts with it", want), -2;
                found = i;
            }
        }
        if (found < 0) return ls_error("--trial %s: no trial of %s has that id", want, rep->path), -2;
        return found;
    }
    return rep->best >= 0 ? rep->best : rep->baseline;
}

static int has_forecast(const ls_report_trial *t) {
    for (int s = 0; s < t->S; s++)
        if (t->systems[s] >= 0 && !isnan(t->fc_mean[(size_t)s * (size_t)t->H * 2])) return 1;
    return 0;
}

/* The trial and the positions of the systems the forecast figure draws; *trial -1 (and LS_OK)
 * when no trial has a forecast to draw. */
static int resolve_forecast(ls_report *rep, const ls_report_plot_options *opt, int *trial, int *systems, int *n) {
    *trial = -1, *n = 0;
    int t = forecast_trial(rep, opt->trial_id);
    if (t == -2) return LS_ERR;
    if (t >= 0 && ls_report_load_forecast(rep, t) != LS_OK) return LS_ERR; /* this trial's alone */
    if (t < 0 || !has_forecast(&rep->trials[t])) {
        if (opt->trial_id) return ls_error("--trial %s: that trial has no forecast (yet)", opt->trial_id);
        return LS_OK;
    }
    const ls_report_trial *tr = &rep->trials[t];
    for (int k = 0; k < opt->n_systems; k++) {
        int pos = -1;
        for (int s = 0; s < tr->S; s++)
            if (tr->systems[s] == opt->systems[k]) pos = s;
        if (pos < 0) {
            char list[256] = "";
            for (int s = 0; s < tr->S && strlen(list) < sizeof list - 16; s++)
                if (tr->systems[s] >= 0) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", *list ? "," : "", tr->systems[s]);
            return ls_error("--systems: trial %016" PRIx64 " did not forecast system %d (it forecast %s)", tr->row.id,
                            opt->systems[k], list);
        }
        systems[(*n)++] = pos;
    }
    for (int s = 0; opt->n_systems == 0 && s < tr->S && *n < 3; s++)
        if (tr->systems[s] >= 0) systems[(*n)++] = s;
    *trial = t;
    return LS_OK;
}

int ls_report_plot_check(ls_report *rep, const ls_report_plot_options *opt) {
    int t, systems[16], n;
    return resolve_forecast(rep, opt, &t, systems, &n);
}

int ls_report_plots(ls_report *rep, const char *dir, const ls_report_plot_options *opt, FILE *log) {
    if (ls_mkdirs(dir) != LS_OK) return LS_ERR;
    figure f = {.rep = rep, .opt = opt, .stage = opt->stage};
    f.shown = ls_malloc((size_t)(rep->n_trials ? rep->n_trials : 1) * sizeof *f.shown);
    for (int i = 0; i < rep->n_trials; i++)
        if (ls_report_shows(&rep->trials[i], opt->stage)) f.shown[f.n_shown++] = i;
    char base[4200];
    int rc = LS_OK;
    fprintf(log, "plots in %s/ (each as .png and .svg):\n", dir);

    /* loss curves: one line per trial stays readable up to MAX_CURVES; beyond, the best ones by
     * validation loss (and the baseline) are drawn and the title says how many of how many */
    int curves = 0;
    int *with_curve = ls_malloc((size_t)(f.n_shown ? f.n_shown : 1) * sizeof *with_curve); /* no legend entry without a line */
    for (int k = 0; k < f.n_shown && rc == LS_OK; k++) { /* one trial's curves in memory at a time */
        if ((rc = ls_report_load_curves(rep, f.shown[k])) != LS_OK) break;
        if (has_curve(&rep->trials[f.shown[k]])) with_curve[curves++] = f.shown[k];
        ls_report_unload(rep, f.shown[k]);
    }
    if (rc == LS_OK && curves) {
        figure lf = f;
        lf.shown = ls_malloc((size_t)curves * sizeof *lf.shown);
        lf.n_shown = best_curves(rep, with_curve, curves, lf.shown, MAX_CURVES);
        lf.of_total = curves;
        for (int k = 0; k < lf.n_shown && rc == LS_OK; k++) rc = ls_report_load_curves(rep, lf.shown[k]);
        snprintf(base, sizeof base, "%s/loss_curves", dir);
        double h = fmax(620, 140 + lf.n_shown * LEGEND_FONT * 1.55 / 2);
        if (rc == LS_OK && (rc = ls_plot_save(base, 1700, h, draw_losses, &lf)) == LS_OK)
            fprintf(log, "  %-34s %s.png\n", lf.n_shown < curves ? "loss curves of the best trials:" : "loss curves of every trial:", base);
        for (int k = 0; k < lf.n_shown; k++) ls_report_unload(rep, lf.shown[k]);
        free(lf.shown);
    } else if (rc == LS_OK) {
        fprintf(log, "  loss curves: none yet (no trial has reported a loss)\n");
    }
    free(with_curve);

    double lrs[64], ranks[64];
    int n_lr, n_rank;
    if (heatmap_stage(rep, opt->stage, lrs, &n_lr, ranks, &n_rank) >= 0) {
        snprintf(base, sizeof base, "%s/val_loss_heatmap", dir);
        if (rc == LS_OK && (rc = ls_plot_save(base, 1000, 640, draw_heatmap, &f)) == LS_OK)
            fprintf(log, "  %-34s %s.png\n", "validation loss over lr x rank:", base);
    } else {
        fprintf(log, "  validation-loss heatmap: left out (no stage varies both train.lr and lora.rank)\n");
    }

    int t = -1;
    if (rc == LS_OK) rc = resolve_forecast(rep, opt, &t, f.systems, &f.n_systems);
    ls_dataset data;
    int have_data = 0;
    if (rc == LS_OK && t >= 0) {
        const ls_report_trial *tr = &rep->trials[t];
        f.trial = t;
        have_data = rep->info.data_path[0] && ls_dataset_read(rep->info.data_path, &data) == LS_OK;
        if (!have_data)
            fprintf(log, "  (the data file %s cannot be read: forecasts are drawn without their context)\n",
                    rep->info.data_path[0] ? rep->info.data_path : "(not recorded)");
        f.data = have_data ? &data : NULL;
        snprintf(base, sizeof base, "%s/forecast_%016" PRIx64, dir, tr->row.id);
        char what[64];
        snprintf(what, sizeof what, "forecasts of the %s:",
                 t == rep->best ? "best trial" : tr->baseline ? "untrained baseline" : "chosen trial");
        if ((rc = ls_plot_save(base, 560.0 * f.n_systems + 40, 560, draw_forecasts, &f)) == LS_OK)
            fprintf(log, "  %-34s %s.png\n", what, base);
    } else if (rc == LS_OK) {
        fprintf(log, "  forecasts: none yet (no finished trial has a forecast)\n");
    }
    if (have_data) ls_dataset_free(&data);
    if (t >= 0) ls_report_unload(rep, t);

    int points = 0;
    for (int k = 0; k < f.n_shown; k++) {
        const ls_report_trial *tr = &rep->trials[f.shown[k]];
        points += tr->status == LS_RESULT_DONE && !isnan(tr->row.metrics.final_val_loss) && tr->row.metrics.flops_total > 0;
    }
    if (rc == LS_OK && points) {
        snprintf(base, sizeof base, "%s/flops_vs_val_loss", dir);
        if ((rc = ls_plot_save(base, 1100, 640, draw_flops, &f)) == LS_OK)
            fprintf(log, "  %-34s %s.png\n", "FLOPS against validation loss:", base);
    } else if (rc == LS_OK) {
        fprintf(log, "  FLOPS against validation loss: none yet (no finished trial)\n");
    }
    for (int s = 0; s < rep->n_stages && rc == LS_OK; s++) {
        if ((opt->stage >= 0 && s != opt->stage) || !rep->stage_es || rep->stage_es[s].type == LS_GRID_ES_NONE) continue;
        int any = 0; /* a value at some rung */
        for (int i = 0; i < rep->n_trials && !any; i++)
            for (int k = 0; rep->trials[i].stage == s && rep->trials[i].rung_val && k < rep->stage_es[s].n_rungs; k++)
                any |= isfinite(rep->trials[i].rung_val[k]);
        if (!any) {
            fprintf(log, "  rungs of stage %s: none yet (no trial has reached a rung)\n", rep->stage_names[s]);
            continue;
        }
        figure rf = f;
        rf.stage = s;
        snprintf(base, sizeof base, "%s/rungs_%s", dir, rep->stage_names[s]);
        char what[96];
        snprintf(what, sizeof what, "validation loss at the rungs (%s):", rep->stage_names[s]);
        if ((rc = ls_plot_save(base, 1300, 640, draw_rungs, &rf)) == LS_OK) fprintf(log, "  %-34s %s.png\n", what, base);
    }
    free(f.shown);
    return rc;
}
