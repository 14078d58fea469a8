/*
 * grid.c: sweep grid files: loading and checking, stage expansion, winner selection, the grid's
 * identity and the budget plan (API and rules in include/lorasweep/grid.h, format in docs/sweep.md).
 *
 * Decisions:
 *  - The file is read as libyaml events with the reader config.c uses (yaml_reader.h): every key
 *    has its line, anchors/aliases/tags are refused as they come, nothing is expanded.
 *  - Values are not interpreted here: each key of `base` and each axis value is turned back into
 *    YAML text (plain scalars as written, quoted ones re-quoted, a list of scalars as a flow list)
 *    and handed to ls_config_set, so the trial table's checks and messages ("KEY: problem") apply
 *    unchanged; this file adds "FILE:LINE: " in front. Relative paths resolve against the grid
 *    file's directory because base_dir is set before anything is applied.
 *  - An axis value is kept in its canonical text (ls_config_value_yaml), so "1e-5" and "0.00001"
 *    are the same value (a duplicate), and the grid's identity does not depend on how it is written.
 *  - Trial counts are checked while the axes are read: no axis holds more than LS_GRID_MAX_TRIALS
 *    values and the product is refused as soon as it passes the cap, before any trial is built.
 *  - The identity hashes base (ls_config_to_yaml) and the stages, not `name` or `budget_flops`:
 *    renaming a sweep or raising its budget does not make its results file foreign.
 *  - Sampled stages (method random or sobol) draw their configurations once, at load, into
 *    canonical text like axis values; expansion then treats them as axes do. Candidate j of a
 *    random stage is a splitmix64 stream seeded by a hash of (the space's text, j), never a
 *    generator's state, so it is the same on every run, machine and resume; Sobol point j comes
 *    from GSL by its index (point 0 the origin). Repeated points are dropped (a trial runs once),
 *    so configuration i is the i-th distinct point: a function of the space and i, not of
 *    `trials` (a stage that draws more keeps what it drew) nor of anything a sweep does.
 *  - Repeats: configuration-major trial indices; repeat 0 is the configuration itself (a grid
 *    given repeats later keeps its trials, and a later stage that meets the same configuration
 *    shares its trials); repeat r's train.seed and lora.seed come from a hash of (configuration
 *    id, r), so they too are pure functions, as early stopping needs (a configuration is judged
 *    once all its repeats reach a rung).
 *  - early_stopping is read here and checked once the whole file is (it needs base's max_steps);
 *    it is part of the grid's identity but not of any trial's: a trial's id is the same with or
 *    without it, so adaptive and full runs of one space compare trial by trial.
 */
#include "lorasweep/grid.h"

#include "lorasweep/asha.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_qrng.h>
#include <yaml.h>

#include "lorasweep/common.h"
#include "lorasweep/yaml_reader.h"

const char *const ls_grid_metric_names[LS_GRID_METRIC_COUNT] = {"final_val_loss", "mse", "mae"};

/* ---- small helpers -------------------------------------------------------------------------- */


static int valid_name(const char *s, size_t n) {
    if (n == 0 || n > LS_GRID_MAX_NAME || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

/* ---- nodes as YAML text --------------------------------------------------------------------- */

/* A scalar as YAML text that ls_config_set reads back the same: plain as written, others in
 * double quotes with escapes. `in_list`: an empty plain scalar becomes "~" (a list item). */
static void scalar_text(const yaml_event_t *e, int in_list, ls_strbuf *out) {
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (n == 0 && in_list) ls_strbuf_puts(out, "~");
        else ls_strbuf_add(out, s, n);
        return;
    }
    ls_strbuf_puts(out, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            ls_strbuf_add(out, esc, 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            ls_strbuf_puts(out, esc);
        } else ls_strbuf_add(out, (const char *)&c, 1);
    }
    ls_strbuf_puts(out, "\"");
}

/* The value node at r->ev (a scalar, or a list of scalars) as YAML text for ls_config_set; the
 * reader is left on the node's last event. */
static int node_text(ls_yaml_reader *r, const char *key, ls_strbuf *out) {
    if (ls_yaml_check_plain(r, key) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_SCALAR_EVENT) {
        scalar_text(&r->ev, 0, out);
        return LS_OK;
    }
    if (r->ev.type != YAML_SEQUENCE_START_EVENT) return ls_yaml_wrong(r, key, "a value");
    ls_strbuf_puts(out, "[");
    for (int i = 0;; i++) {
        if (ls_yaml_next(r, key) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (ls_yaml_check_plain(r, key) != LS_OK) return LS_ERR;
        if (r->ev.type != YAML_SCALAR_EVENT) return ls_yaml_wrong(r, key, "a name in the list");
        if (i) ls_strbuf_puts(out, ", ");
        scalar_text(&r->ev, 1, out);
    }
    ls_strbuf_puts(out, "]");
    return LS_OK;
}

/* ---- loading -------------------------------------------------------------------------------- */

typedef struct {
    ls_yaml_reader r;
    ls_grid *g;
    size_t n_keys;
    int *key_line;          /* base: where each table key was set (0: not yet) */
} loader;

/* ls_config_set with "FILE:LINE: " in front of its message. */
static int set_key(loader *L, ls_trial_config *c, const char *key, const char *text, int line) {
    if (ls_config_set(c, key, text) == LS_OK) return LS_OK;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ls_last_error());
    return ls_error("%s:%d: %s", L->r.name, line, msg);
}

static int key_is_section(const char *s) {
    size_t n = strlen(s), count;
    const ls_config_key *keys = ls_config_keys(&count);
    if (strchr(s, '.')) return 0;
    for (size_t i = 0; i < count; i++)
        if (!strncmp(keys[i].key, s, n) && keys[i].key[n] == '.') return 1;
    return 0;
}

/* One base key (dotted) whose value node is at r->ev. */
static int read_base_value(loader *L, const char *dotted, int line) {
    ls_yaml_reader *r = &L->r;
    const ls_config_key *k = ls_config_find(dotted);
    if (k) {
        size_t i = (size_t)(k - ls_config_keys(NULL));
        if (L->key_line[i]) return ls_yaml_fail(r, line, k->key, "duplicate key (first on line %d)", L->key_line[i]);
        L->key_line[i] = line;
    }
    ls_strbuf text = {0};
    int rc = node_text(r, dotted, &text);
    if (rc == LS_OK) rc = set_key(L, &L->g->base, dotted, text.p ? text.p : "", line);
    free(text.p);
    return rc;
}

static int read_base(loader *L) {
    ls_yaml_reader *r = &L->r;
    if (ls_yaml_check_plain(r, "base") != LS_OK) return LS_ERR;
    if (ls_yaml_is_null(&r->ev)) return LS_OK;
    if (r->ev.type != YAML_MAPPING_START_EVENT) return ls_yaml_wrong(r, "base", "a mapping of trial keys");
    char seen[16][32];
    int seen_line[16], n_seen = 0;
    for (;;) {
        if (ls_yaml_next(r, "base") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) return LS_OK;
        char key[64];
        int exact, line = ls_yaml_line(r);
        if (ls_yaml_read_key(r, "base", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        if (exact && key_is_section(key)) {
            for (int i = 0; i < n_seen; i++)
                if (!strcmp(seen[i], key))
                    return ls_yaml_fail(r, line, key, "duplicate section (first on line %d)", seen_line[i]);
            if (n_seen < 16 && strlen(key) < sizeof seen[0]) {
                memcpy(seen[n_seen], key, strlen(key) + 1); /* fits: checked just above */
                seen_line[n_seen++] = line;
            }
            if (ls_yaml_next(r, key) != LS_OK || ls_yaml_check_plain(r, key) != LS_OK) return LS_ERR;
            if (ls_yaml_is_null(&r->ev)) continue;
            if (r->ev.type != YAML_MAPPING_START_EVENT)
                return ls_yaml_wrong(r, key, "a mapping of keys (such as 'lr: 1.0e-4')");
            for (;;) {
                if (ls_yaml_next(r, key) != LS_OK) return LS_ERR;
                if (r->ev.type == YAML_MAPPING_END_EVENT) break;
                char sub[64], dotted[160];
                int sub_exact, sub_line = ls_yaml_line(r);
                if (ls_yaml_read_key(r, key, sub, sizeof sub, &sub_exact) != LS_OK) return LS_ERR;
                snprintf(dotted, sizeof dotted, "%s.%s", key, sub);
                if (!sub_exact) return ls_yaml_fail(r, sub_line, dotted, "unknown key");
                if (ls_yaml_next(r, dotted) != LS_OK || read_base_value(L, dotted, sub_line) != LS_OK) return LS_ERR;
            }
            continue;
        }
        if (!exact) return ls_yaml_fail(r, line, key, "unknown key");
        if (!strchr(key, '.') && !ls_config_find(key))
            return ls_yaml_fail(r, line, key,
                                "unknown section (expected name, model, data, encoding, split, lora, train, "
                                "eval, or a dotted key such as train.lr)");
        if (ls_yaml_next(r, key) != LS_OK || read_base_value(L, key, line) != LS_OK) return LS_ERR;
    }
}

static void free_values(char **values, size_t n) {
    for (size_t i = 0; i < n; i++) free(values[i]);
    free(values);
}

static void stage_free(ls_grid_stage *s) {
    free(s->name);
    for (size_t i = 0; i < s->n_axes; i++) free_values(s->axes[i].values, s->axes[i].n_values);
    free(s->axes);
    for (size_t i = 0; i < s->n_params; i++) free_values(s->params[i].values, s->params[i].n_values);
    free(s->params);
    free_values(s->points, s->points ? s->n_configs * s->n_params : 0);
    free(s->keep);
    memset(s, 0, sizeof *s);
}

/* The trial key named at r->ev (an axis or a parameter) into *out, refusing unknown keys (with
 * ls_config_set's suggestion) and train.ranks_per_trial. */
static int read_trial_key(loader *L, ls_trial_config *scratch, const char *ctx, const ls_config_key **out, int *line) {
    ls_yaml_reader *r = &L->r;
    char key[64];
    int exact;
    *line = ls_yaml_line(r);
    if (ls_yaml_read_key(r, ctx, key, sizeof key, &exact) != LS_OK) return LS_ERR;
    const ls_config_key *k = exact ? ls_config_find(key) : NULL;
    if (!k) { /* ls_config_set words the message (with a suggestion) */
        if (set_key(L, scratch, key, "", *line) == LS_OK) return ls_yaml_fail(r, *line, key, "unknown key");
        return LS_ERR;
    }
    /* Worker ranks are grouped once per sweep (sweep.c), so every trial has the same group size. */
    if (!strcmp(k->key, "train.ranks_per_trial"))
        return ls_yaml_fail(r, *line, k->key, "cannot be an axis: a sweep runs every trial on the same number "
                            "of ranks; set it in base");
    *out = k;
    return LS_OK;
}

/* The values of key k at r->ev (a list, or one scalar: `key: value`) into *values (canonical text,
 * each checked as the key's value, none twice). `empty`: the message for no values. */
static int read_values(loader *L, ls_trial_config *scratch, const ls_config_key *k, int line, const char *empty,
                       char ***values, size_t *n_values) {
    ls_yaml_reader *r = &L->r;
    if (ls_yaml_check_plain(r, k->key) != LS_OK) return LS_ERR;
    int one = r->ev.type == YAML_SCALAR_EVENT && !ls_yaml_is_null(&r->ev);
    if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT && !ls_yaml_is_null(&r->ev))
        return ls_yaml_wrong(r, k->key, "a list of values");
    if (!one && ls_yaml_is_null(&r->ev)) return ls_yaml_fail(r, line, k->key, "%s", empty);
    for (;;) {
        if (!one) {
            if (ls_yaml_next(r, k->key) != LS_OK) return LS_ERR;
            if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
        }
        int vline = ls_yaml_line(r);
        if (*n_values >= LS_GRID_MAX_TRIALS)
            return ls_yaml_fail(r, vline, k->key, "more than %d values", LS_GRID_MAX_TRIALS);
        ls_strbuf text = {0};
        int rc = node_text(r, k->key, &text);
        if (rc == LS_OK) rc = set_key(L, scratch, k->key, text.p ? text.p : "", vline);
        free(text.p);
        if (rc != LS_OK) return LS_ERR;
        char *v = ls_config_value_yaml(scratch, k);
        for (size_t i = 0; i < *n_values; i++)
            if (!strcmp((*values)[i], v)) {
                rc = ls_yaml_fail(r, vline, k->key, "%s is listed twice", v);
                free(v);
                return rc;
            }
        *values = ls_realloc(*values, (*n_values + 1) * sizeof **values);
        (*values)[(*n_values)++] = v;
        if (one) break;
    }
    if (*n_values == 0) return ls_yaml_fail(r, line, k->key, "%s", empty);
    return LS_OK;
}

/* The axes of a stage (the mapping at r->ev, its key on grid_line) into s; `trials_before` are the
 * earlier stages' trials. */
static int read_axes(loader *L, ls_grid_stage *s, const char *ctx, int grid_line, size_t trials_before) {
    ls_yaml_reader *r = &L->r;
    if (ls_yaml_check_plain(r, ctx) != LS_OK) return LS_ERR;
    s->n_configs = 1;
    if (ls_yaml_is_null(&r->ev)) return LS_OK;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, ctx, "a mapping of axes (such as 'train.lr: [1e-5, 1e-4]')");
    ls_trial_config scratch;
    ls_config_defaults(&scratch);
    int rc = LS_OK;
    while (rc == LS_OK) {
        if ((rc = ls_yaml_next(r, ctx)) != LS_OK) break;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        const ls_config_key *k = NULL;
        int line;
        if ((rc = read_trial_key(L, &scratch, ctx, &k, &line)) != LS_OK) break;
        for (size_t i = 0; i < s->n_axes; i++)
            if (s->axes[i].key == k)
                rc = ls_yaml_fail(r, line, k->key, "duplicate axis (first on line %d)", s->axes[i].line);
        if (rc != LS_OK) break;
        s->axes = ls_realloc(s->axes, (s->n_axes + 1) * sizeof *s->axes);
        ls_grid_axis *a = &s->axes[s->n_axes++];
        memset(a, 0, sizeof *a);
        a->key = k;
        a->line = line;
        if ((rc = ls_yaml_next(r, k->key)) != LS_OK) break;
        if ((rc = read_values(L, &scratch, k, line, "the axis has no values", &a->values, &a->n_values)) != LS_OK)
            break;
        if ((double)s->n_configs * (double)a->n_values + (double)trials_before > LS_GRID_MAX_TRIALS) {
            rc = ls_yaml_fail(r, grid_line, ctx, "the axes make more than %d trials%s", LS_GRID_MAX_TRIALS,
                              trials_before ? " with the earlier stages" : "");
            break;
        }
        s->n_configs *= a->n_values;
    }
    ls_config_free(&scratch);
    return rc;
}

/* A name (the sweep's, a stage's, select.from) at r->ev into *out. */
static int read_name(ls_yaml_reader *r, const char *key, char **out) {
    if (ls_yaml_check_plain(r, key) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_SCALAR_EVENT || ls_yaml_is_null(&r->ev)) return ls_yaml_wrong(r, key, "a name");
    const char *s = (const char *)r->ev.data.scalar.value;
    size_t n = r->ev.data.scalar.length;
    if (!valid_name(s, n)) {
        char shown[64];
        ls_yaml_show(shown, sizeof shown, s, n);
        return ls_yaml_fail(r, ls_yaml_line(r), key,
                            "'%s' is not a name (1 to %d of A-Z a-z 0-9 _ - ., not starting with '.')", shown,
                            LS_GRID_MAX_NAME);
    }
    free(*out);
    *out = ls_malloc(n + 1);
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return LS_OK;
}

static int read_select(loader *L, ls_grid_stage *s, size_t stage_index, int *keep_line) {
    ls_yaml_reader *r = &L->r;
    ls_grid *g = L->g;
    if (ls_yaml_check_plain(r, "select") != LS_OK) return LS_ERR;
    int line = ls_yaml_line(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT) return ls_yaml_wrong(r, "select", "a mapping (from, metric, keep)");
    int have_from = 0, have_keep = 0, seen[3] = {0};
    s->metric = LS_GRID_METRIC_FINAL_VAL_LOSS;
    for (;;) {
        if (ls_yaml_next(r, "select") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, kline = ls_yaml_line(r), which;
        if (ls_yaml_read_key(r, "select", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        which = !exact ? -1 : !strcmp(key, "from") ? 0 : !strcmp(key, "metric") ? 1 : !strcmp(key, "keep") ? 2 : -1;
        char dotted[96];
        snprintf(dotted, sizeof dotted, "select.%s", key);
        if (which < 0) return ls_yaml_fail(r, kline, dotted, "unknown key (expected from, metric, keep)");
        if (seen[which]) return ls_yaml_fail(r, kline, dotted, "duplicate key (first on line %d)", seen[which]);
        seen[which] = kline;
        if (ls_yaml_next(r, dotted) != LS_OK) return LS_ERR;
        if (which == 0) {
            char *from = NULL;
            if (read_name(r, dotted, &from) != LS_OK) return LS_ERR;
            int found = -1;
            for (size_t i = 0; i < stage_index; i++)
                if (!strcmp(g->stages[i].name, from)) found = (int)i;
            if (found < 0) {
                int from_line = ls_yaml_line(r);
                int rc = stage_index == 0
                             ? ls_yaml_fail(r, from_line, dotted, "the first stage has no earlier stage to select from")
                             : ls_yaml_fail(r, from_line, dotted, "'%s' is not an earlier stage", from);
                free(from);
                return rc;
            }
            free(from);
            s->select_from = found;
            have_from = 1;
        } else if (which == 1) {
            if (ls_yaml_check_plain(r, dotted) != LS_OK) return LS_ERR;
            if (r->ev.type != YAML_SCALAR_EVENT || ls_yaml_is_null(&r->ev))
                return ls_yaml_wrong(r, dotted, "a metric name");
            int m = -1;
            for (int i = 0; i < LS_GRID_METRIC_COUNT; i++)
                if (strlen(ls_grid_metric_names[i]) == r->ev.data.scalar.length &&
                    !memcmp(ls_grid_metric_names[i], r->ev.data.scalar.value, r->ev.data.scalar.length))
                    m = i;
            if (m < 0) {
                char shown[64];
                ls_yaml_show(shown, sizeof shown, (const char *)r->ev.data.scalar.value, r->ev.data.scalar.length);
                return ls_yaml_fail(r, ls_yaml_line(r), dotted, "'%s' is not one of final_val_loss, mse, mae", shown);
            }
            s->metric = (ls_grid_metric)m;
        } else {
            if (ls_yaml_check_plain(r, dotted) != LS_OK) return LS_ERR;
            *keep_line = ls_yaml_line(r);
            int one = r->ev.type == YAML_SCALAR_EVENT && !ls_yaml_is_null(&r->ev);
            if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT) return ls_yaml_wrong(r, dotted, "a list of keys");
            for (;;) {
                if (!one) {
                    if (ls_yaml_next(r, dotted) != LS_OK) return LS_ERR;
                    if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
                }
                char k[64];
                int kexact, vline = ls_yaml_line(r);
                if (ls_yaml_read_key(r, dotted, k, sizeof k, &kexact) != LS_OK) return LS_ERR;
                const ls_config_key *ck = kexact ? ls_config_find(k) : NULL;
                if (!ck) {
                    ls_trial_config scratch;
                    ls_config_defaults(&scratch);
                    int rc = set_key(L, &scratch, k, "", vline);
                    ls_config_free(&scratch);
                    return rc == LS_OK ? ls_yaml_fail(r, vline, k, "unknown key") : LS_ERR;
                }
                for (size_t i = 0; i < s->n_keep; i++)
                    if (s->keep[i] == ck) return ls_yaml_fail(r, vline, dotted, "%s is listed twice", ck->key);
                if (s->n_keep >= 256) return ls_yaml_fail(r, vline, dotted, "too many keys");
                s->keep = ls_realloc(s->keep, (s->n_keep + 1) * sizeof *s->keep);
                s->keep[s->n_keep++] = ck;
                if (one) break;
            }
            have_keep = s->n_keep > 0;
            if (!have_keep) return ls_yaml_fail(r, *keep_line, dotted, "name at least one key to copy from the winner");
        }
    }
    if (!have_from)
        return ls_yaml_fail(r, line, "select.from", "missing: the earlier stage whose best trial this one starts from");
    if (!have_keep)
        return ls_yaml_fail(r, line, "select.keep", "missing: the keys copied from the winner (such as [train.lr])");
    return LS_OK;
}

/* ---- sampled search spaces ------------------------------------------------------------------ */

const char *const ls_grid_method_names[LS_GRID_METHOD_COUNT] = {"grid", "random", "sobol"};
const char *const ls_grid_dist_names[LS_GRID_DIST_COUNT] = {"values", "uniform", "log_uniform", "int_uniform"};

enum { MAX_PARAMS = 64 };

static int is_number_key(const ls_config_key *k) {
    return k->type == LS_CONFIG_INT || k->type == LS_CONFIG_U64 || k->type == LS_CONFIG_DOUBLE ||
           k->type == LS_CONFIG_AUTO_NUM;
}

static int is_whole_key(const ls_config_key *k) { return k->type == LS_CONFIG_INT || k->type == LS_CONFIG_U64; }

/* A plain number scalar at r->ev into *v; `shown` gets its text for messages. `what` names it in
 * them ("min"; NULL: the key alone). */
static int read_plain_number(ls_yaml_reader *r, const char *key, const char *what, double *v, char *shown, size_t cap) {
    if (ls_yaml_check_plain(r, key) != LS_OK) return LS_ERR;
    const yaml_event_t *e = &r->ev;
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    if (e->type != YAML_SCALAR_EVENT || ls_yaml_is_null(e) || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        char got[96];
        ls_yaml_describe(got, sizeof got, e);
        return ls_yaml_fail(r, ls_yaml_line(r), key, "%s%sexpected a number, got %s", what, sep, got);
    }
    const char *s = (const char *)e->data.scalar.value;
    ls_yaml_show(shown, cap, s, e->data.scalar.length);
    if (strlen(s) != e->data.scalar.length || !ls_yaml_number_syntax(s) || !isfinite(strtod(s, NULL)))
        return ls_yaml_fail(r, ls_yaml_line(r), key, "%s%s'%s' is not a number", what, sep, shown);
    *v = strtod(s, NULL);
    if (*v == 0) *v = 0; /* no -0 */
    return LS_OK;
}

/* A whole number in [lo, hi] (trials, repeats, seed) at r->ev. */
static int read_whole(ls_yaml_reader *r, const char *key, int line, double lo, double hi, double *out) {
    char shown[64];
    double v;
    if (read_plain_number(r, key, NULL, &v, shown, sizeof shown) != LS_OK) return LS_ERR;
    if (v != floor(v)) return ls_yaml_fail(r, line, key, "%s is not a whole number", shown);
    if (v < lo || v > hi) return ls_yaml_fail(r, line, key, "%s is out of range [%.0f, %.0f]", shown, lo, hi);
    *out = v;
    return LS_OK;
}

/* One parameter's mapping (values, or distribution with min and max) at r->ev into p. */
static int read_param(loader *L, ls_trial_config *scratch, ls_grid_param *p) {
    ls_yaml_reader *r = &L->r;
    const ls_config_key *k = p->key;
    static const char *const subs[] = {"values", "distribution", "min", "max"};
    if (ls_yaml_check_plain(r, k->key) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, k->key, "a mapping (values: [...], or distribution with min and max)");
    int seen[4] = {0}, dist = -1;
    char min_text[64] = "", max_text[64] = "";
    for (;;) {
        if (ls_yaml_next(r, k->key) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char sub[64];
        int exact, sline = ls_yaml_line(r), which = -1;
        if (ls_yaml_read_key(r, k->key, sub, sizeof sub, &exact) != LS_OK) return LS_ERR;
        for (int i = 0; exact && i < 4; i++)
            if (!strcmp(sub, subs[i])) which = i;
        if (which < 0)
            return ls_yaml_fail(r, sline, k->key, "unknown setting '%s' (expected values, or distribution, min and max)",
                                sub);
        if (seen[which]) return ls_yaml_fail(r, sline, k->key, "%s is given twice (first on line %d)", sub, seen[which]);
        seen[which] = sline;
        if (ls_yaml_next(r, k->key) != LS_OK) return LS_ERR;
        if (which == 0) {
            if (read_values(L, scratch, k, sline, "values: the list is empty", &p->values, &p->n_values) != LS_OK)
                return LS_ERR;
        } else if (which == 1) {
            if (ls_yaml_check_plain(r, k->key) != LS_OK) return LS_ERR;
            if (r->ev.type != YAML_SCALAR_EVENT || ls_yaml_is_null(&r->ev)) return ls_yaml_wrong(r, k->key, "a distribution name");
            const char *name = (const char *)r->ev.data.scalar.value;
            size_t n = r->ev.data.scalar.length;
            for (int d = LS_GRID_DIST_UNIFORM; d < LS_GRID_DIST_COUNT; d++)
                if (strlen(ls_grid_dist_names[d]) == n && !memcmp(ls_grid_dist_names[d], name, n)) dist = d;
            if (dist < 0) {
                char shown[64];
                ls_yaml_show(shown, sizeof shown, name, n);
                int wandb = !strcmp(shown, "log_uniform_values");
                return ls_yaml_fail(r, sline, k->key, "distribution '%s' is not one of uniform, log_uniform, int_uniform%s",
                                    shown, wandb ? " (log_uniform here takes min and max as values)"
                                                 : " (or give values: [...])");
            }
        } else if (read_plain_number(r, k->key, subs[which], which == 2 ? &p->min : &p->max,
                                     which == 2 ? min_text : max_text, sizeof min_text) != LS_OK) {
            return LS_ERR;
        }
    }
    int line = p->line;
    if (seen[0] && (seen[1] || seen[2] || seen[3]))
        return ls_yaml_fail(r, line, k->key, "give either values or a distribution with min and max, not both");
    if (seen[0]) {
        p->dist = LS_GRID_DIST_VALUES;
        return LS_OK;
    }
    if (!seen[1]) {
        if (seen[2] || seen[3])
            return ls_yaml_fail(r, line, k->key, "min and max need a distribution (uniform, log_uniform or int_uniform)");
        return ls_yaml_fail(r, line, k->key, "give values: [...] or a distribution with min and max");
    }
    p->dist = (ls_grid_dist)dist;
    if (!is_number_key(k))
        return ls_yaml_fail(r, line, k->key, "a distribution needs a key that takes a number: give values: [...]");
    if (!seen[2] || !seen[3])
        return ls_yaml_fail(r, line, k->key, "distribution %s needs min and max (%s is missing)", ls_grid_dist_names[dist],
                            !seen[2] ? "min" : "max");
    int whole = p->dist == LS_GRID_DIST_INT_UNIFORM || is_whole_key(k);
    const char *why = p->dist == LS_GRID_DIST_INT_UNIFORM ? "int_uniform draws whole numbers" : "the key is an integer";
    if (whole && p->min != floor(p->min)) return ls_yaml_fail(r, line, k->key, "min %s is not a whole number (%s)", min_text, why);
    if (whole && p->max != floor(p->max)) return ls_yaml_fail(r, line, k->key, "max %s is not a whole number (%s)", max_text, why);
    if (p->dist == LS_GRID_DIST_LOG_UNIFORM && p->min <= 0)
        return ls_yaml_fail(r, line, k->key, "log_uniform needs 0 < min < max, and min is %s (min and max are the "
                            "values themselves, not exponents)", min_text);
    if (p->min >= p->max) return ls_yaml_fail(r, line, k->key, "min %s is not less than max %s", min_text, max_text);
    /* min and max are values of the key: its range applies (then so does it to every draw) */
    const char *texts[2] = {min_text, max_text}, *names[2] = {"min", "max"};
    for (int i = 0; i < 2; i++)
        if (ls_config_set(scratch, k->key, texts[i]) != LS_OK) {
            char msg[1024];
            const char *m = ls_last_error();
            size_t kn = strlen(k->key);
            snprintf(msg, sizeof msg, "%s", !strncmp(m, k->key, kn) && !strncmp(m + kn, ": ", 2) ? m + kn + 2 : m);
            return ls_yaml_fail(r, line, k->key, "%s %s", names[i], msg);
        }
    return LS_OK;
}

/* `parameters` (the mapping at r->ev, its key on `line`) into s. */
static int read_params(loader *L, ls_grid_stage *s, int line) {
    ls_yaml_reader *r = &L->r;
    if (ls_yaml_check_plain(r, "parameters") != LS_OK) return LS_ERR;
    if (ls_yaml_is_null(&r->ev)) return ls_yaml_fail(r, line, "parameters", "name at least one key to sample");
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, "parameters",
                             "a mapping of keys (such as 'train.lr: {distribution: log_uniform, min: 1e-5, max: 1e-3}')");
    ls_trial_config scratch;
    ls_config_defaults(&scratch);
    int rc = LS_OK;
    while (rc == LS_OK) {
        if ((rc = ls_yaml_next(r, "parameters")) != LS_OK) break;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        const ls_config_key *k = NULL;
        int pline;
        if ((rc = read_trial_key(L, &scratch, "parameters", &k, &pline)) != LS_OK) break;
        for (size_t i = 0; i < s->n_params && rc == LS_OK; i++)
            if (s->params[i].key == k)
                rc = ls_yaml_fail(r, pline, k->key, "duplicate parameter (first on line %d)", s->params[i].line);
        if (rc == LS_OK && s->n_params >= MAX_PARAMS)
            rc = ls_yaml_fail(r, pline, "parameters", "more than %d parameters", MAX_PARAMS);
        if (rc != LS_OK) break;
        s->params = ls_realloc(s->params, (s->n_params + 1) * sizeof *s->params);
        ls_grid_param *p = &s->params[s->n_params++];
        memset(p, 0, sizeof *p);
        p->key = k;
        p->line = pline;
        if ((rc = ls_yaml_next(r, k->key)) == LS_OK) rc = read_param(L, &scratch, p);
    }
    if (rc == LS_OK && s->n_params == 0) rc = ls_yaml_fail(r, line, "parameters", "name at least one key to sample");
    ls_config_free(&scratch);
    return rc;
}

/* The shortest text that reads back as v ("1e-05", not "1.0000000000000001e-05"). */
static void shortest(char *buf, size_t cap, double v) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* The space as text: what a sampled stage's configurations are a function of (not `trials`: a
 * stage that draws more keeps the configurations it drew). */
static void space_text(const ls_grid_stage *s, const char *indent, ls_strbuf *b) {
    ls_strbuf_printf(b, "%smethod: %s\n", indent, ls_grid_method_names[s->method]);
    if (s->method == LS_GRID_METHOD_RANDOM) ls_strbuf_printf(b, "%sseed: %" PRIu64 "\n", indent, s->seed);
    ls_strbuf_printf(b, "%sparameters:\n", indent);
    for (size_t i = 0; i < s->n_params; i++) {
        const ls_grid_param *p = &s->params[i];
        ls_strbuf_printf(b, "%s  %s: {", indent, p->key->key);
        if (p->dist == LS_GRID_DIST_VALUES) {
            ls_strbuf_puts(b, "values: [");
            for (size_t v = 0; v < p->n_values; v++) ls_strbuf_printf(b, "%s%s", v ? ", " : "", p->values[v]);
            ls_strbuf_puts(b, "]}\n");
        } else {
            char lo[32], hi[32];
            shortest(lo, sizeof lo, p->min);
            shortest(hi, sizeof hi, p->max);
            ls_strbuf_printf(b, "distribution: %s, min: %s, max: %s}\n", ls_grid_dist_names[p->dist], lo, hi);
        }
    }
}

static uint64_t fnv1a(const char *s, size_t n);

/* A parameter's value for a uniform u in [0, 1), as text for ls_config_set. */
static void sample_text(const ls_grid_param *p, double u, char *buf, size_t cap) {
    if (p->dist == LS_GRID_DIST_VALUES) {
        size_t i = (size_t)(u * (double)p->n_values);
        snprintf(buf, cap, "%s", p->values[i < p->n_values ? i : p->n_values - 1]);
        return;
    }
    double v;
    if (p->dist == LS_GRID_DIST_UNIFORM) v = p->min + u * (p->max - p->min);
    else if (p->dist == LS_GRID_DIST_LOG_UNIFORM) v = exp(log(p->min) + u * (log(p->max) - log(p->min)));
    else v = p->min + floor(u * (p->max - p->min + 1));
    int whole = p->dist == LS_GRID_DIST_INT_UNIFORM || is_whole_key(p->key);
    char text[64];
    if (whole) v = floor(v + 0.5);
    else { /* rounded to a few significant digits, by the C library's correctly rounded printf */
        snprintf(text, sizeof text, "%.*e", LS_GRID_SAMPLE_DIGITS - 1, v);
        v = strtod(text, NULL);
    }
    int clamped = v > p->max || v < p->min;
    if (v > p->max) v = p->max;
    if (v < p->min) v = p->min;
    if (whole) snprintf(buf, cap, "%.0f", v);
    else if (clamped) snprintf(buf, cap, "%.17g", v);
    else snprintf(buf, cap, "%s", text);
}

/* How many distinct configurations the space can have (INFINITY when a real key has a range). */
static double space_size(const ls_grid_stage *s) {
    double size = 1;
    for (size_t i = 0; i < s->n_params; i++) {
        const ls_grid_param *p = &s->params[i];
        if (p->dist == LS_GRID_DIST_VALUES) size *= (double)p->n_values;
        else if (p->dist == LS_GRID_DIST_INT_UNIFORM || is_whole_key(p->key)) size *= p->max - p->min + 1;
        else return INFINITY;
    }
    return size;
}

/* The configurations of a sampled stage: the first n_configs distinct points of its sequence
 * (candidate j: random, a splitmix64 stream seeded by a hash of (space, j); sobol, the Sobol point
 * j, point 0 being the origin as in Joe and Kuo's tables), each value checked against the key.
 * Dropping repeated points makes configuration i the i-th distinct point: a function of the
 * space and i alone, and a trial runs once. */
static int sample_stage(loader *L, ls_grid_stage *s, int trials_line) {
    ls_yaml_reader *r = &L->r;
    size_t n = s->n_configs, P = s->n_params;
    double size = space_size(s);
    if (size < (double)n)
        return ls_yaml_fail(r, trials_line, "trials", "%zu is more than the %.0f distinct configurations of the "
                            "parameters", n, size);
    s->points = ls_calloc(n * P, sizeof *s->points);
    size_t cap = 1;
    while (cap < 4 * n) cap <<= 1;
    size_t *slot = ls_calloc(cap, sizeof *slot); /* index + 1 into joined */
    char **joined = ls_calloc(n, sizeof *joined);
    char **canon = ls_calloc(P, sizeof *canon);
    double *u = ls_calloc(P, sizeof *u);
    gsl_qrng *q = s->method == LS_GRID_METHOD_SOBOL ? gsl_qrng_alloc(gsl_qrng_sobol, (unsigned)P) : NULL;
    ls_trial_config scratch;
    ls_config_defaults(&scratch);
    size_t found = 0, max_candidates = 1000 + 100 * n;
    int rc = LS_OK;
    for (size_t j = 0; found < n && rc == LS_OK; j++) {
        if (j >= max_candidates) {
            rc = ls_yaml_fail(r, trials_line, "trials", "%zu draws gave only %zu distinct configurations, fewer than "
                              "trials: %zu (the space is too small: widen it or lower trials)", j, found, n);
            break;
        }
        if (q && j > 0) gsl_qrng_get(q, u);
        else if (!q) {
            uint64_t t = s->space_hash ^ (0xD1B54A32D192ED03ull * (uint64_t)(j + 1)), st = ls_rng_next(&t);
            for (size_t p = 0; p < P; p++) u[p] = ls_rng_uniform(&st);
        }
        ls_strbuf key = {0};
        for (size_t p = 0; p < P && rc == LS_OK; p++) {
            char text[128];
            sample_text(&s->params[p], u[p], text, sizeof text);
            rc = set_key(L, &scratch, s->params[p].key->key, text, s->params[p].line);
            if (rc != LS_OK) break;
            canon[p] = ls_config_value_yaml(&scratch, s->params[p].key);
            ls_strbuf_puts(&key, canon[p]);
            ls_strbuf_puts(&key, "\n");
        }
        if (rc == LS_OK) {
            size_t h = (size_t)fnv1a(key.p, key.n) & (cap - 1);
            while (slot[h] && strcmp(joined[slot[h] - 1], key.p)) h = (h + 1) & (cap - 1);
            if (!slot[h]) { /* a new configuration */
                slot[h] = found + 1;
                joined[found] = key.p;
                key.p = NULL;
                for (size_t p = 0; p < P; p++) s->points[found * P + p] = canon[p], canon[p] = NULL;
                found++;
            }
        }
        for (size_t p = 0; p < P; p++) free(canon[p]), canon[p] = NULL;
        free(key.p);
    }
    if (q) gsl_qrng_free(q);
    ls_config_free(&scratch);
    for (size_t i = 0; i < found; i++) free(joined[i]);
    free(joined), free(slot), free(canon), free(u);
    return rc;
}

/* ---- stages --------------------------------------------------------------------------------- */

/* The keys of a stage, in a stage mapping or (the single stage `main`) at the top level. */
enum { SK_NAME, SK_GRID, SK_SELECT, SK_METHOD, SK_TRIALS, SK_SEED, SK_PARAMETERS, SK_REPEATS, SK_EARLY_STOPPING, SK_COUNT };
static const char *const stage_keys[SK_COUNT] = {"name", "grid", "select", "method", "trials", "seed", "parameters",
                                                 "repeats", "early_stopping"};

const char *const ls_grid_es_names[LS_GRID_ES_COUNT] = {"none", "asha", "median"};

/* A stage's early_stopping mapping at r->ev (the key on kline): type (asha or median), metric
 * (val_loss, the only one), min_steps, eta (default 3), min_trials (median only, default 3).
 * What needs base (min_steps below train.max_steps) is checked once the whole file is read. */
static int read_early_stopping(ls_yaml_reader *r, ls_grid_early_stopping *es, int kline) {
    enum { E_TYPE, E_METRIC, E_MIN_STEPS, E_ETA, E_MIN_TRIALS, E_COUNT };
    static const char *const keys[E_COUNT] = {"type", "metric", "min_steps", "eta", "min_trials"};
    if (ls_yaml_check_plain(r, "early_stopping") != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, "early_stopping", "a mapping (type, metric, min_steps, eta, min_trials)");
    int seen[E_COUNT] = {0};
    memset(es, 0, sizeof *es);
    es->line = kline, es->eta = 3, es->min_trials = 3;
    for (;;) {
        if (ls_yaml_next(r, "early_stopping") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64], dotted[96];
        int exact, line = ls_yaml_line(r), which = -1;
        if (ls_yaml_read_key(r, "early_stopping", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        for (int i = 0; exact && i < E_COUNT; i++)
            if (!strcmp(key, keys[i])) which = i;
        snprintf(dotted, sizeof dotted, "early_stopping.%s", key);
        if (which < 0) return ls_yaml_fail(r, line, dotted, "unknown key (expected type, metric, min_steps, eta, min_trials)");
        if (seen[which]) return ls_yaml_fail(r, line, dotted, "duplicate key (first on line %d)", seen[which]);
        seen[which] = line;
        if (ls_yaml_next(r, dotted) != LS_OK) return LS_ERR;
        if (which == E_TYPE || which == E_METRIC) {
            if (ls_yaml_check_plain(r, dotted) != LS_OK) return LS_ERR;
            if (r->ev.type != YAML_SCALAR_EVENT || ls_yaml_is_null(&r->ev))
                return ls_yaml_wrong(r, dotted, which == E_TYPE ? "asha or median" : "val_loss");
            char shown[64];
            ls_yaml_show(shown, sizeof shown, (const char *)r->ev.data.scalar.value, r->ev.data.scalar.length);
            if (which == E_METRIC) {
                if (strcmp(shown, "val_loss"))
                    return ls_yaml_fail(r, line, dotted, "'%s' is not a metric early stopping can use: only val_loss "
                                        "(the validation loss at each rung)", shown);
                continue;
            }
            for (int t = LS_GRID_ES_ASHA; t < LS_GRID_ES_COUNT; t++)
                if (!strcmp(shown, ls_grid_es_names[t])) es->type = (ls_grid_es_type)t;
            if (es->type == LS_GRID_ES_NONE)
                return ls_yaml_fail(r, line, dotted, "'%s' is not one of asha, median", shown);
            continue;
        }
        double v;
        if (which == E_MIN_STEPS && read_whole(r, dotted, line, 1, 1e9, &v) == LS_OK) es->min_steps = (int)v;
        else if (which == E_ETA && read_whole(r, dotted, line, 2, 1000, &v) == LS_OK) es->eta = (int)v;
        else if (which == E_MIN_TRIALS && read_whole(r, dotted, line, 1, LS_GRID_MAX_TRIALS, &v) == LS_OK)
            es->min_trials = (int)v;
        else return LS_ERR;
    }
    if (!seen[E_TYPE]) return ls_yaml_fail(r, kline, "early_stopping.type", "missing: asha or median");
    if (!seen[E_MIN_STEPS])
        return ls_yaml_fail(r, kline, "early_stopping.min_steps", "missing: the optimiser steps of the first rung");
    if (seen[E_MIN_TRIALS] && es->type != LS_GRID_ES_MEDIAN)
        return ls_yaml_fail(r, seen[E_MIN_TRIALS], "early_stopping.min_trials", "only for type median");
    return LS_OK;
}

typedef struct {
    int at[SK_COUNT];         /* line of each key given (0: not given) */
    int keep_line;
    size_t trials;
} stage_seen;

/* The value of stage key `which` (at r->ev; the key on kline) into s. */
static int read_stage_value(loader *L, ls_grid_stage *s, size_t index, int which, int kline, stage_seen *seen,
                            size_t trials_before) {
    ls_yaml_reader *r = &L->r;
    ls_grid *g = L->g;
    double v;
    switch (which) {
    case SK_NAME:
        if (read_name(r, "name", &s->name) != LS_OK) return LS_ERR;
        for (size_t i = 0; i < index; i++)
            if (!strcmp(g->stages[i].name, s->name))
                return ls_yaml_fail(r, kline, "name", "stage '%s' is defined twice (first on line %d)", s->name,
                                    g->stages[i].line);
        return LS_OK;
    case SK_GRID: return read_axes(L, s, "grid", kline, trials_before);
    case SK_SELECT: return read_select(L, s, index, &seen->keep_line);
    case SK_METHOD: {
        if (ls_yaml_check_plain(r, "method") != LS_OK) return LS_ERR;
        if (r->ev.type != YAML_SCALAR_EVENT || ls_yaml_is_null(&r->ev)) return ls_yaml_wrong(r, "method", "a method name");
        const char *name = (const char *)r->ev.data.scalar.value;
        size_t n = r->ev.data.scalar.length;
        for (int m = 0; m < LS_GRID_METHOD_COUNT; m++)
            if (strlen(ls_grid_method_names[m]) == n && !memcmp(ls_grid_method_names[m], name, n)) {
                s->method = (ls_grid_method)m;
                return LS_OK;
            }
        char shown[64];
        ls_yaml_show(shown, sizeof shown, name, n);
        return ls_yaml_fail(r, kline, "method", "'%s' is not one of grid, random, sobol", shown);
    }
    case SK_TRIALS:
        if (read_whole(r, "trials", kline, 1, LS_GRID_MAX_TRIALS, &v) != LS_OK) return LS_ERR;
        seen->trials = (size_t)v;
        return LS_OK;
    case SK_SEED:
        if (read_whole(r, "seed", kline, 0, LS_CONFIG_SEED_MAX, &v) != LS_OK) return LS_ERR;
        s->seed = (uint64_t)v;
        return LS_OK;
    case SK_PARAMETERS: return read_params(L, s, kline);
    case SK_EARLY_STOPPING: return read_early_stopping(r, &s->early_stopping, kline);
    default:
        if (read_whole(r, "repeats", kline, 1, LS_GRID_MAX_TRIALS, &v) != LS_OK) return LS_ERR;
        s->repeats = (size_t)v;
        return LS_OK;
    }
}

static int is_repeat_seed(const ls_config_key *k) {
    return !strcmp(k->key, "train.seed") || !strcmp(k->key, "lora.seed");
}

/* After a stage's keys: how they go together, the trial count, and the sampled configurations. */
static int finish_stage(loader *L, ls_grid_stage *s, const stage_seen *seen, size_t trials_before) {
    ls_yaml_reader *r = &L->r;
    const int *at = seen->at;
    const char *method = ls_grid_method_names[s->method];
    int sampled = s->method != LS_GRID_METHOD_GRID;
    if (at[SK_GRID] && at[SK_PARAMETERS])
        return ls_yaml_fail(r, at[SK_PARAMETERS], "parameters",
                            "give either grid (axes) or parameters (a sampled search), not both (grid on line %d)",
                            at[SK_GRID]);
    if (at[SK_PARAMETERS] && !at[SK_METHOD])
        return ls_yaml_fail(r, at[SK_PARAMETERS], "method", "missing: parameters are sampled by method random or sobol");
    if (at[SK_PARAMETERS] && !sampled)
        return ls_yaml_fail(r, at[SK_METHOD], "method",
                            "grid runs the product of grid axes; parameters are sampled by method random or sobol");
    if (at[SK_GRID] && sampled)
        return ls_yaml_fail(r, at[SK_GRID], "grid", "method %s samples parameters, not grid axes (a key fixed for the "
                            "stage is 'KEY: {values: [VALUE]}' in parameters)", method);
    if (sampled && !at[SK_PARAMETERS])
        return ls_yaml_fail(r, at[SK_METHOD], "parameters", "missing: the keys method %s samples", method);
    if (at[SK_TRIALS] && !sampled)
        return ls_yaml_fail(r, at[SK_TRIALS], "trials",
                            "only for method random or sobol (a grid stage runs the product of its axes)");
    if (sampled && !at[SK_TRIALS])
        return ls_yaml_fail(r, at[SK_METHOD], "trials", "missing: how many configurations method %s draws", method);
    if (at[SK_SEED] && s->method != LS_GRID_METHOD_RANDOM)
        return ls_yaml_fail(r, at[SK_SEED], "seed", "only for method random (%s)",
                            sampled ? "Sobol points are fixed by their index" : "a grid stage draws nothing");
    if (s->method == LS_GRID_METHOD_SOBOL && s->n_params > gsl_qrng_sobol->max_dimension)
        return ls_yaml_fail(r, at[SK_PARAMETERS], "parameters", "method sobol takes at most %u parameters (GSL's "
                            "Sobol sequence), not %zu", gsl_qrng_sobol->max_dimension, s->n_params);
    if (s->repeats > 1) { /* the seeds are the repeats' */
        for (size_t i = 0; i < s->n_axes; i++)
            if (is_repeat_seed(s->axes[i].key))
                return ls_yaml_fail(r, s->axes[i].line, s->axes[i].key->key, "cannot be an axis of a stage with repeats "
                                    "(line %d): repeats set train.seed and lora.seed", at[SK_REPEATS]);
        for (size_t i = 0; i < s->n_params; i++)
            if (is_repeat_seed(s->params[i].key))
                return ls_yaml_fail(r, s->params[i].line, s->params[i].key->key, "cannot be a parameter of a stage with "
                                    "repeats (line %d): repeats set train.seed and lora.seed", at[SK_REPEATS]);
        for (size_t i = 0; i < s->n_keep; i++)
            if (is_repeat_seed(s->keep[i]))
                return ls_yaml_fail(r, seen->keep_line, "select.keep", "%s cannot be kept in a stage with repeats "
                                    "(line %d): repeats set train.seed and lora.seed", s->keep[i]->key, at[SK_REPEATS]);
    }
    for (size_t i = 0; i < s->n_keep; i++) {
        for (size_t j = 0; j < s->n_axes; j++)
            if (s->keep[i] == s->axes[j].key)
                return ls_yaml_fail(r, seen->keep_line, "select.keep", "%s is also an axis of stage %s (line %d)",
                                    s->keep[i]->key, s->name, s->axes[j].line);
        for (size_t j = 0; j < s->n_params; j++)
            if (s->keep[i] == s->params[j].key)
                return ls_yaml_fail(r, seen->keep_line, "select.keep", "%s is also a parameter of stage %s (line %d)",
                                    s->keep[i]->key, s->name, s->params[j].line);
    }
    if (sampled) s->n_configs = seen->trials;
    if ((double)s->n_configs * (double)s->repeats + (double)trials_before > LS_GRID_MAX_TRIALS) {
        const char *more = trials_before ? " with the earlier stages" : "";
        if (s->repeats > 1)
            return ls_yaml_fail(r, at[SK_REPEATS], "repeats", "%zu configurations x %zu repeats make more than %d "
                                "trials%s", s->n_configs, s->repeats, LS_GRID_MAX_TRIALS, more);
        return ls_yaml_fail(r, at[SK_TRIALS], "trials", "more than %d trials%s", LS_GRID_MAX_TRIALS, more);
    }
    s->n_trials = s->n_configs * s->repeats;
    if (sampled) {
        ls_strbuf b = {0};
        space_text(s, "", &b);
        s->space_hash = fnv1a(b.p, b.n);
        free(b.p);
        return sample_stage(L, s, at[SK_TRIALS]);
    }
    return LS_OK;
}

static void stage_init(ls_grid_stage *s, int line) {
    memset(s, 0, sizeof *s);
    s->line = line;
    s->select_from = -1;
    s->n_configs = 1;
    s->repeats = 1;
    s->n_trials = 1;
}

/* One stage mapping at r->ev. */
static int read_stage(loader *L, ls_grid_stage *s, size_t index) {
    ls_yaml_reader *r = &L->r;
    ls_grid *g = L->g;
    if (ls_yaml_check_plain(r, "stages") != LS_OK) return LS_ERR;
    stage_init(s, ls_yaml_line(r));
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, "stages", "a stage (a mapping: name, grid, select)");
    stage_seen seen;
    memset(&seen, 0, sizeof seen);
    for (;;) {
        if (ls_yaml_next(r, "stages") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, kline = ls_yaml_line(r), which = -1;
        if (ls_yaml_read_key(r, "stages", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        for (int i = 0; exact && i < SK_COUNT; i++)
            if (!strcmp(key, stage_keys[i])) which = i;
        if (which < 0)
            return ls_yaml_fail(r, kline, key, "unknown key in a stage (expected name, grid, select, method, trials, seed, "
                                "parameters, repeats, early_stopping)");
        if (seen.at[which]) return ls_yaml_fail(r, kline, key, "duplicate key (first on line %d)", seen.at[which]);
        seen.at[which] = kline;
        if (ls_yaml_next(r, key) != LS_OK) return LS_ERR;
        if (read_stage_value(L, s, index, which, kline, &seen, g->n_trials) != LS_OK) return LS_ERR;
    }
    if (!s->name) return ls_yaml_fail(r, s->line, "stages", "stage %zu has no name", index + 1);
    return finish_stage(L, s, &seen, g->n_trials);
}

static int read_stages(loader *L) {
    ls_yaml_reader *r = &L->r;
    ls_grid *g = L->g;
    if (ls_yaml_check_plain(r, "stages") != LS_OK) return LS_ERR;
    int line = ls_yaml_line(r);
    if (r->ev.type != YAML_SEQUENCE_START_EVENT) return ls_yaml_wrong(r, "stages", "a list of stages");
    for (;;) {
        if (ls_yaml_next(r, "stages") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (g->n_stages >= LS_GRID_MAX_STAGES)
            return ls_yaml_fail(r, ls_yaml_line(r), "stages", "more than %d stages", LS_GRID_MAX_STAGES);
        g->stages = ls_realloc(g->stages, (g->n_stages + 1) * sizeof *g->stages);
        ls_grid_stage *s = &g->stages[g->n_stages++];
        memset(s, 0, sizeof *s);
        if (read_stage(L, s, g->n_stages - 1) != LS_OK) return LS_ERR;
        g->n_trials += s->n_trials;
    }
    if (g->n_stages == 0) return ls_yaml_fail(r, line, "stages", "the list is empty");
    return LS_OK;
}

/* A top-level number (budget_flops, max_attempts): plain, finite, > 0 (>= 1 when at_least_one). */
static int read_top_number(ls_yaml_reader *r, const char *key, int line, const char *want, int at_least_one,
                           double *out) {
    if (ls_yaml_check_plain(r, key) != LS_OK) return LS_ERR;
    const yaml_event_t *e = &r->ev;
    if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ls_yaml_is_null(e))
        return ls_yaml_wrong(r, key, want);
    const char *s = (const char *)e->data.scalar.value;
    char shown[64];
    ls_yaml_show(shown, sizeof shown, s, e->data.scalar.length);
    if (strlen(s) != e->data.scalar.length || !ls_yaml_number_syntax(s))
        return ls_yaml_fail(r, line, key, "'%s' is not a number", shown);
    double v = strtod(s, NULL);
    if (!isfinite(v) || v <= 0 || (at_least_one && v < 1))
        return ls_yaml_fail(r, line, key, "%s is out of range %s", shown, at_least_one ? "[1, inf)" : "(0, inf)");
    *out = v;
    return LS_OK;
}

static int read_document(loader *L) {
    ls_yaml_reader *r = &L->r;
    ls_grid *g = L->g;
    /* top-level keys; grid, method, trials, seed, parameters and repeats make the one stage `main` */
    enum { T_NAME, T_BUDGET, T_BASE, T_STAGES, T_ATTEMPTS, T_COUNT };
    static const char *const top[] = {"name", "budget_flops", "base", "stages", "max_attempts", NULL};
    int seen[T_COUNT] = {0}, first_stage_key = 0;
    const char *first_stage_name = NULL;
    stage_seen main_seen;
    memset(&main_seen, 0, sizeof main_seen);
    if (ls_yaml_next(r, NULL) != LS_OK || ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_STREAM_END_EVENT) return ls_yaml_fail(r, 1, NULL, "the file is empty");
    if (ls_yaml_next(r, NULL) != LS_OK || ls_yaml_check_plain(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, NULL, "a mapping (name, budget_flops, max_attempts, base, grid or stages)");
    for (;;) {
        if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, line = ls_yaml_line(r), which = -1, stage_key = -1;
        if (ls_yaml_read_key(r, NULL, key, sizeof key, &exact) != LS_OK) return LS_ERR;
        for (int i = 0; exact && top[i]; i++)
            if (!strcmp(top[i], key)) which = i;
        for (int i = SK_GRID; exact && which < 0 && i < SK_COUNT; i++)
            if (i != SK_SELECT && !strcmp(stage_keys[i], key)) stage_key = i;
        if (which < 0 && stage_key < 0)
            return ls_yaml_fail(r, line, key, "unknown key (expected name, budget_flops, max_attempts, base, grid, stages; "
                                "or method, trials, seed, parameters, repeats, early_stopping)");
        int *where = which >= 0 ? &seen[which] : &main_seen.at[stage_key];
        if (*where) return ls_yaml_fail(r, line, key, "duplicate key (first on line %d)", *where);
        *where = line;
        if (ls_yaml_next(r, key) != LS_OK) return LS_ERR;
        if (stage_key >= 0) { /* a key of the single stage `main` */
            if (seen[T_STAGES])
                return ls_yaml_fail(r, line, key, "give either %s or stages, not both (stages on line %d)", key,
                                    seen[T_STAGES]);
            if (!first_stage_key) {
                first_stage_key = line;
                first_stage_name = stage_keys[stage_key];
                g->stages = ls_calloc(1, sizeof *g->stages);
                g->n_stages = 1;
                stage_init(&g->stages[0], line);
                g->stages[0].name = ls_strdup("main");
            }
            if (read_stage_value(L, &g->stages[0], 0, stage_key, line, &main_seen, 0) != LS_OK) return LS_ERR;
            continue;
        }
        switch (which) {
        case T_NAME:
            if (read_name(r, "name", &g->name) != LS_OK) return LS_ERR;
            break;
        case T_BUDGET:
            if (read_top_number(r, key, line, "a number of FLOPS (such as 1e17)", 0, &g->budget_flops) != LS_OK)
                return LS_ERR;
            break;
        case T_ATTEMPTS: {
            double v;
            if (read_top_number(r, key, line, "a whole number of attempts (such as 3)", 1, &v) != LS_OK) return LS_ERR;
            if (v != floor(v) || v > 1000) return ls_yaml_fail(r, line, key, "%g is not a whole number in [1, 1000]", v);
            g->max_attempts = (int)v;
            break;
        }
        case T_BASE:
            if (read_base(L) != LS_OK) return LS_ERR;
            break;
        case T_STAGES:
            if (first_stage_key)
                return ls_yaml_fail(r, line, key, "give either %s or stages, not both (%s on line %d)", first_stage_name,
                                    first_stage_name, first_stage_key);
            if (read_stages(L) != LS_OK) return LS_ERR;
            break;
        }
    }
    if (ls_yaml_next(r, NULL) != LS_OK || ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_STREAM_END_EVENT)
        return ls_yaml_fail(r, ls_yaml_line(r), NULL, "only one YAML document is allowed");
    if (!g->name) return ls_yaml_fail(r, 1, "name", "missing: the sweep's name (results go to results/<name>.h5)");
    if (!first_stage_key && !seen[T_STAGES])
        return ls_yaml_fail(r, 1, "grid", "missing: give grid (axes), parameters (a sampled search) or stages");
    if (first_stage_key) {
        if (finish_stage(L, &g->stages[0], &main_seen, 0) != LS_OK) return LS_ERR;
        g->n_trials = g->stages[0].n_trials;
    }
    return LS_OK;
}

/* ---- identity ------------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void make_canonical(ls_grid *g) {
    ls_strbuf b = {0};
    ls_strbuf_puts(&b, "base:\n");
    char *base = ls_config_to_yaml(&g->base);
    for (const char *p = base; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        ls_strbuf_puts(&b, "  ");
        ls_strbuf_add(&b, p, n);
        p += n;
    }
    free(base);
    ls_strbuf_puts(&b, "stages:\n");
    for (size_t i = 0; i < g->n_stages; i++) {
        const ls_grid_stage *s = &g->stages[i];
        ls_strbuf_puts(&b, "  - name: ");
        ls_strbuf_puts(&b, s->name);
        ls_strbuf_puts(&b, "\n");
        if (s->select_from >= 0) {
            ls_strbuf_puts(&b, "    select: {from: ");
            ls_strbuf_puts(&b, g->stages[s->select_from].name);
            ls_strbuf_puts(&b, ", metric: ");
            ls_strbuf_puts(&b, ls_grid_metric_names[s->metric]);
            ls_strbuf_puts(&b, ", keep: [");
            for (size_t k = 0; k < s->n_keep; k++) {
                if (k) ls_strbuf_puts(&b, ", ");
                ls_strbuf_puts(&b, s->keep[k]->key);
            }
            ls_strbuf_puts(&b, "]}\n");
        }
        if (s->repeats > 1) ls_strbuf_printf(&b, "    repeats: %zu\n", s->repeats);
        const ls_grid_early_stopping *es = &s->early_stopping;
        if (es->type != LS_GRID_ES_NONE) {
            ls_strbuf_printf(&b, "    early_stopping: {type: %s, metric: val_loss, min_steps: %d, eta: %d",
                             ls_grid_es_names[es->type], es->min_steps, es->eta);
            if (es->type == LS_GRID_ES_MEDIAN) ls_strbuf_printf(&b, ", min_trials: %d", es->min_trials);
            ls_strbuf_puts(&b, "}\n");
        }
        if (s->method != LS_GRID_METHOD_GRID) { /* a sampled stage: its space and how many it draws */
            space_text(s, "    ", &b);
            ls_strbuf_printf(&b, "    trials: %zu\n", s->n_configs);
            continue;
        }
        ls_strbuf_puts(&b, "    grid:\n");
        for (size_t a = 0; a < s->n_axes; a++) {
            ls_strbuf_puts(&b, "      ");
            ls_strbuf_puts(&b, s->axes[a].key->key);
            ls_strbuf_puts(&b, ": [");
            for (size_t v = 0; v < s->axes[a].n_values; v++) {
                if (v) ls_strbuf_puts(&b, ", ");
                ls_strbuf_puts(&b, s->axes[a].values[v]);
            }
            ls_strbuf_puts(&b, "]\n");
        }
    }
    g->canonical = b.p;
    g->hash = fnv1a(b.p, b.n);
}

/* ---- growing a grid ------------------------------------------------------------------------- */

static int has_value(const ls_grid_axis *a, const char *v) {
    for (size_t i = 0; i < a->n_values; i++)
        if (!strcmp(a->values[i], v)) return 1;
    return 0;
}

int ls_grid_extends(const ls_grid *old, const ls_grid *g) {
    if (!ls_config_equal(&old->base, &g->base)) return ls_error("base differs");
    if (g->n_stages < old->n_stages)
        return ls_error("stage %s was removed", old->stages[g->n_stages].name);
    for (size_t i = 0; i < old->n_stages; i++) {
        const ls_grid_stage *a = &old->stages[i], *b = &g->stages[i];
        if (strcmp(a->name, b->name)) return ls_error("stage %zu was %s and is now %s (stages may only be added at the end)", i + 1, a->name, b->name);
        if (a->select_from != b->select_from || a->metric != b->metric || a->n_keep != b->n_keep)
            return ls_error("stage %s: its select changed", a->name);
        for (size_t k = 0; k < a->n_keep; k++)
            if (a->keep[k] != b->keep[k]) return ls_error("stage %s: its select.keep changed", a->name);
        if (a->method != b->method)
            return ls_error("stage %s: its method changed from %s to %s", a->name, ls_grid_method_names[a->method],
                            ls_grid_method_names[b->method]);
        const ls_grid_early_stopping *ea = &a->early_stopping, *eb = &b->early_stopping;
        if (ea->type != eb->type || (ea->type != LS_GRID_ES_NONE && (ea->min_steps != eb->min_steps || ea->eta != eb->eta ||
                                                                    ea->min_trials != eb->min_trials)))
            return ls_error("stage %s: its early_stopping changed (the decisions already taken would not be this "
                            "rule's)", a->name);
        if (b->repeats < a->repeats)
            return ls_error("stage %s: repeats went down from %zu to %zu", a->name, a->repeats, b->repeats);
        if (a->method != LS_GRID_METHOD_GRID) { /* the same space; more configurations keep the first ones */
            ls_strbuf sa = {0}, sb = {0};
            space_text(a, "", &sa);
            space_text(b, "", &sb);
            int same = !strcmp(sa.p, sb.p);
            free(sa.p), free(sb.p);
            if (!same)
                return ls_error("stage %s: its search space changed (a sampled stage may only raise trials or repeats)",
                                a->name);
            if (b->n_configs < a->n_configs)
                return ls_error("stage %s: trials went down from %zu to %zu", a->name, a->n_configs, b->n_configs);
            continue;
        }
        if (a->n_axes != b->n_axes) return ls_error("stage %s: its axes changed (values may be added, not axes)", a->name);
        for (size_t x = 0; x < a->n_axes; x++) {
            if (a->axes[x].key != b->axes[x].key)
                return ls_error("stage %s: axis %s is now %s", a->name, a->axes[x].key->key, b->axes[x].key->key);
            for (size_t v = 0; v < a->axes[x].n_values; v++)
                if (!has_value(&b->axes[x], a->axes[x].values[v]))
                    return ls_error("stage %s: %s lost the value %s", a->name, a->axes[x].key->key, a->axes[x].values[v]);
        }
    }
    return LS_OK;
}

/* ---- expansion ------------------------------------------------------------------------------ */

void ls_grid_trials_free(ls_grid_trial *trials, size_t n) {
    if (!trials) return;
    for (size_t i = 0; i < n; i++) {
        ls_config_free(&trials[i].config);
        free(trials[i].overrides);
    }
    free(trials);
}

/* The `where` of messages about a stage: "FILE:LINE: stage NAME". */
static void stage_where(const ls_grid *g, const ls_grid_stage *s, char *dst, size_t cap) {
    snprintf(dst, cap, "%s:%d: stage %s", g->source, s->line, s->name);
}

int ls_grid_expand(const ls_grid *g, size_t stage, const ls_trial_config *winner, ls_grid_trial **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (stage >= g->n_stages) return ls_error("%s: no stage %zu (the grid has %zu)", g->source, stage, g->n_stages);
    const ls_grid_stage *s = &g->stages[stage];
    char where[512];
    stage_where(g, s, where, sizeof where);
    if (s->select_from >= 0 && !winner)
        return ls_error("%s: needs the winner of stage %s", where, g->stages[s->select_from].name);
    if (s->select_from < 0 && winner) return ls_error("%s: has no select clause, so takes no winner", where);

    /* base + kept keys, the part every trial shares */
    ls_trial_config common;
    ls_config_copy(&common, &g->base);
    ls_strbuf kept = {0};
    for (size_t k = 0; k < s->n_keep; k++) {
        char *v = ls_config_value_yaml(winner, s->keep[k]);
        int rc = ls_config_set(&common, s->keep[k]->key, v);
        if (kept.n) ls_strbuf_puts(&kept, " ");
        ls_strbuf_puts(&kept, s->keep[k]->key);
        ls_strbuf_puts(&kept, "=");
        ls_strbuf_puts(&kept, v);
        free(v);
        if (rc != LS_OK) {
            ls_error_prefix("%s: from the winner of %s", where, g->stages[s->select_from].name);
            ls_config_free(&common);
            free(kept.p);
            return LS_ERR;
        }
    }

    ls_grid_trial *t = ls_calloc(s->n_trials, sizeof *t);
    size_t done = 0, K = s->repeats, P = s->n_params;
    uint64_t *train_seed = ls_calloc(K, sizeof *train_seed), *lora_seed = ls_calloc(K, sizeof *lora_seed);
    int rc = LS_OK;
    for (size_t c = 0; c < s->n_configs && rc == LS_OK; c++) {
        ls_grid_trial *tr = &t[c * K];
        ls_config_copy(&tr->config, &common);
        tr->stage = s->name;
        tr->stage_index = stage;
        tr->index = c * K;
        tr->configuration = c;
        done = c * K + 1;
        ls_strbuf ov = {0};
        if (kept.n) ls_strbuf_puts(&ov, kept.p);
        if (s->method == LS_GRID_METHOD_GRID) {
            size_t rest = c;
            /* the last axis varies fastest: index = ((v0 * n1) + v1) * n2 + v2 ... */
            size_t stride = s->n_configs;
            for (size_t a = 0; a < s->n_axes && rc == LS_OK; a++) {
                const ls_grid_axis *ax = &s->axes[a];
                stride /= ax->n_values;
                size_t v = rest / stride;
                rest %= stride;
                rc = ls_config_set(&tr->config, ax->key->key, ax->values[v]);
                if (ov.n) ls_strbuf_puts(&ov, " ");
                ls_strbuf_printf(&ov, "%s=%s", ax->key->key, ax->values[v]);
            }
        } else { /* the sampled configuration c */
            for (size_t p = 0; p < P && rc == LS_OK; p++) {
                rc = ls_config_set(&tr->config, s->params[p].key->key, s->points[c * P + p]);
                if (ov.n) ls_strbuf_puts(&ov, " ");
                ls_strbuf_printf(&ov, "%s=%s", s->params[p].key->key, s->points[c * P + p]);
            }
        }
        tr->overrides = ov.p ? ov.p : ls_strdup("");
        if (rc != LS_OK) {
            ls_error_prefix("%s (%s)", where, tr->overrides);
            break;
        }
        /* validate with a source that says which trial it is, then name the grid file again */
        char *src = tr->config.source;
        size_t cap = strlen(where) + strlen(tr->overrides) + 8;
        tr->config.source = ls_malloc(cap);
        snprintf(tr->config.source, cap, "%s (%s)", where, tr->overrides);
        rc = ls_config_validate(&tr->config);
        free(tr->config.source);
        tr->config.source = src;
        tr->id = tr->config_id = ls_config_hash(&tr->config);
        if (rc != LS_OK || K == 1) continue;
        /* its repeats: the same configuration with the seeds of repeat r (seeds do not change what
         * validates) */
        ls_grid_repeat_seeds(tr->id, tr->config.train.seed, tr->config.lora.seed, K, train_seed, lora_seed);
        for (size_t r = 1; r < K; r++) {
            ls_grid_trial *u = &t[c * K + r];
            ls_config_copy(&u->config, &tr->config);
            u->config.train.seed = train_seed[r];
            u->config.lora.seed = lora_seed[r];
            u->stage = s->name;
            u->stage_index = stage;
            u->index = c * K + r;
            u->configuration = c;
            u->repeat = r;
            u->config_id = tr->id;
            u->id = ls_config_hash(&u->config);
            ls_strbuf uo = {0};
            ls_strbuf_printf(&uo, "%s%strain.seed=%" PRIu64 " lora.seed=%" PRIu64, tr->overrides,
                             tr->overrides[0] ? " " : "", train_seed[r], lora_seed[r]);
            u->overrides = uo.p;
            done = c * K + r + 1;
        }
    }
    free(train_seed);
    free(lora_seed);
    ls_config_free(&common);
    free(kept.p);
    if (rc != LS_OK) {
        ls_grid_trials_free(t, done);
        return LS_ERR;
    }
    *out = t;
    *n = s->n_trials;
    return LS_OK;
}

void ls_grid_repeat_seeds(uint64_t config_id, uint64_t train_seed0, uint64_t lora_seed0, size_t repeats,
                          uint64_t *train, uint64_t *lora) {
    const uint64_t mask = ((uint64_t)1 << 53) - 1; /* LS_CONFIG_SEED_MAX: exact in JSON */
    for (size_t r = 0; r < repeats; r++) {
        if (r == 0) {
            train[0] = train_seed0, lora[0] = lora_seed0;
            continue;
        }
        uint64_t t = config_id ^ (0x9E3779B97F4A7C15ull * (uint64_t)r), st = ls_rng_next(&t);
        uint64_t *out[2] = {&train[r], &lora[r]}, *prev[2] = {train, lora};
        for (int k = 0; k < 2; k++) { /* distinct from the earlier repeats' (a draw again when not) */
            int fresh;
            do {
                *out[k] = ls_rng_next(&st) & mask;
                fresh = 1;
                for (size_t q = 0; q < r; q++) fresh &= prev[k][q] != *out[k];
            } while (!fresh);
        }
    }
}

int ls_grid_configuration_of(const ls_grid *g, size_t stage, const ls_trial_config *c, uint64_t *config_id,
                             size_t *repeat) {
    *config_id = ls_config_hash(c);
    *repeat = 0;
    if (stage >= g->n_stages) return ls_error("%s: no stage %zu (the grid has %zu)", g->source, stage, g->n_stages);
    const ls_grid_stage *s = &g->stages[stage];
    if (s->repeats <= 1) return LS_OK; /* every trial is its own configuration */
    ls_trial_config own;
    ls_config_copy(&own, c);
    own.train.seed = g->base.train.seed;
    own.lora.seed = g->base.lora.seed;
    uint64_t id = ls_config_hash(&own);
    ls_config_free(&own);
    uint64_t *ts = ls_calloc(s->repeats, sizeof *ts), *ls_ = ls_calloc(s->repeats, sizeof *ls_);
    ls_grid_repeat_seeds(id, g->base.train.seed, g->base.lora.seed, s->repeats, ts, ls_);
    int found = -1;
    for (size_t r = 0; r < s->repeats && found < 0; r++)
        if (ts[r] == c->train.seed && ls_[r] == c->lora.seed) found = (int)r;
    free(ts);
    free(ls_);
    if (found < 0) return ls_error("stage %s: the trial has the seeds of none of the stage's %zu repeats", s->name, s->repeats);
    *config_id = id;
    *repeat = (size_t)found;
    return LS_OK;
}

/* Load-time check: every stage's trials validate, a stage with select once per candidate winner
 * (each trial of its select.from stage, or the first alone past the cap on checks). */
static int validate_all(ls_grid *g) {
    ls_grid_trial **stand = ls_calloc(g->n_stages, sizeof *stand);
    size_t *count = ls_calloc(g->n_stages, sizeof *count);
    size_t checks = 0;
    int rc = LS_OK;
    for (size_t i = 0; i < g->n_stages && rc == LS_OK; i++) {
        const ls_grid_stage *s = &g->stages[i];
        if (s->select_from < 0) {
            rc = ls_grid_expand(g, i, NULL, &stand[i], &count[i]);
            checks += count[i];
            continue;
        }
        size_t from = (size_t)s->select_from, nc = count[from];
        int all = checks + nc * s->n_trials <= LS_GRID_MAX_TRIALS * 2;
        for (size_t c = 0; c < nc && rc == LS_OK; c++) {
            if (c > 0 && !all) break;
            if (stand[from][c].repeat > 0) continue; /* the same configuration: its seeds change no check */
            ls_grid_trial *t = NULL;
            size_t n = 0;
            rc = ls_grid_expand(g, i, &stand[from][c].config, &t, &n);
            checks += n;
            if (rc == LS_OK && c == 0) stand[i] = t, count[i] = n;
            else ls_grid_trials_free(t, n);
        }
    }
    for (size_t i = 0; i < g->n_stages; i++) ls_grid_trials_free(stand[i], count[i]);
    free(stand);
    free(count);
    return rc;
}

/* Early stopping needs what only the whole file tells: one train.max_steps for the stage (its
 * rungs are defined over it), a first rung below it, and, under ASHA, a configuration left at
 * the top rung when a later stage selects from this one. */
static int check_early_stopping(const ls_grid *g) {
    for (size_t i = 0; i < g->n_stages; i++) {
        const ls_grid_stage *s = &g->stages[i];
        const ls_grid_early_stopping *es = &s->early_stopping;
        if (es->type == LS_GRID_ES_NONE) continue;
        for (size_t a = 0; a < s->n_axes; a++)
            if (!strcmp(s->axes[a].key->key, "train.max_steps"))
                return ls_error("%s:%d: train.max_steps: cannot be an axis of a stage with early_stopping (line %d): "
                                "its rungs are defined over one max_steps", g->source, s->axes[a].line, es->line);
        for (size_t p = 0; p < s->n_params; p++)
            if (!strcmp(s->params[p].key->key, "train.max_steps"))
                return ls_error("%s:%d: train.max_steps: cannot be a parameter of a stage with early_stopping (line "
                                "%d): its rungs are defined over one max_steps", g->source, s->params[p].line, es->line);
        for (size_t k = 0; k < s->n_keep; k++)
            if (!strcmp(s->keep[k]->key, "train.max_steps"))
                return ls_error("%s:%d: select.keep: train.max_steps cannot be kept in a stage with early_stopping: "
                                "its rungs are defined over base's max_steps", g->source, es->line);
        int max_steps = g->base.train.max_steps;
        if (es->min_steps >= max_steps)
            return ls_error("%s:%d: early_stopping.min_steps: %d is not less than train.max_steps (%d): no rung below "
                            "the top", g->source, es->line, es->min_steps, max_steps);
        if (es->type != LS_GRID_ES_ASHA) continue;
        int rungs[LS_ES_MAX_RUNGS], n_rungs = ls_es_rungs(es->min_steps, es->eta, max_steps, rungs, LS_ES_MAX_RUNGS);
        size_t top = ls_es_asha_survivors(s->n_configs, es->eta, n_rungs);
        for (size_t j = i + 1; j < g->n_stages && top == 0; j++)
            if (g->stages[j].select_from == (int)i)
                return ls_error("%s:%d: early_stopping: stage %s selects from stage %s, but ASHA would stop all of its "
                                "%zu configurations below the top (eta %d keeps 1 in %d at each of its %d rungs below "
                                "max_steps: it needs at least %.0f configurations)", g->source, es->line,
                                g->stages[j].name, s->name, s->n_configs, es->eta, es->eta, n_rungs - 1,
                                pow(es->eta, n_rungs - 1));
    }
    return LS_OK;
}

/* ---- the public loading API ----------------------------------------------------------------- */

void ls_grid_free(ls_grid *g) {
    if (!g) return;
    free(g->name);
    free(g->source);
    free(g->results_path);
    ls_config_free(&g->base);
    for (size_t i = 0; i < g->n_stages; i++) stage_free(&g->stages[i]);
    free(g->stages);
    free(g->canonical);
    memset(g, 0, sizeof *g);
}

static int load_with(const char *yaml, size_t len, const char *name, char *base_dir, ls_grid *g) {
    memset(g, 0, sizeof *g);
    if (len > LS_CONFIG_MAX_BYTES) {
        free(base_dir);
        return ls_error("%s: too large (%zu bytes, a grid file has at most %d)", name, len, LS_CONFIG_MAX_BYTES);
    }
    g->source = ls_strdup(name);
    g->max_attempts = 3;
    ls_config_defaults(&g->base);
    free(g->base.source);
    free(g->base.base_dir);
    g->base.source = ls_strdup(name);
    g->base.base_dir = base_dir; /* the defaults' paths are empty: nothing to re-resolve */
    loader L;
    memset(&L, 0, sizeof L);
    L.g = g;
    ls_config_keys(&L.n_keys);
    L.key_line = ls_calloc(L.n_keys, sizeof *L.key_line);
    int rc = ls_yaml_open(&L.r, yaml, len, g->source);
    if (rc == LS_OK) {
        rc = read_document(&L);
        ls_yaml_close(&L.r);
    }
    free(L.key_line);
    if (rc == LS_OK) rc = check_early_stopping(g);
    if (rc == LS_OK) {
        size_t cap = strlen(g->name) + 16;
        g->results_path = ls_malloc(cap);
        snprintf(g->results_path, cap, "results/%s.h5", g->name);
        make_canonical(g);
        rc = validate_all(g);
    }
    if (rc != LS_OK) ls_grid_free(g);
    return rc;
}

int ls_grid_load_string(const char *yaml, size_t len, const char *name, const char *base_dir, ls_grid *g) {
    return load_with(yaml, len, name ? name : "<string>", base_dir ? ls_strdup(base_dir) : ls_yaml_current_dir(), g);
}

int ls_grid_load_file(const char *path, ls_grid *g) {
    memset(g, 0, sizeof *g);
    char *buf;
    size_t len;
    if (ls_yaml_read_file(path, LS_CONFIG_MAX_BYTES, &buf, &len) != LS_OK) return LS_ERR;
    int rc = load_with(buf, len, path, ls_yaml_dir_of(path), g);
    free(buf);
    return rc;
}

int ls_grid_stage_find(const ls_grid *g, const char *name) {
    for (size_t i = 0; i < g->n_stages; i++)
        if (!strcmp(g->stages[i].name, name)) return (int)i;
    return -1;
}

/* Each stage's trials take train.ctx from its own axis, from the winner they start from (whose
 * stage is checked in turn), or from base: base's value is checked only when a stage uses it. */
int ls_grid_check_model(const ls_grid *g, int max_positions) {
    for (size_t i = 0; i < g->n_stages; i++) {
        const ls_grid_stage *s = &g->stages[i];
        const ls_grid_axis *ctx = NULL;
        int kept = 0;
        for (size_t a = 0; a < s->n_axes; a++)
            if (!strcmp(s->axes[a].key->key, "train.ctx")) ctx = &s->axes[a];
        for (size_t k = 0; k < s->n_keep; k++) kept |= !strcmp(s->keep[k]->key, "train.ctx");
        size_t param = s->n_params;
        for (size_t p = 0; p < s->n_params; p++)
            if (!strcmp(s->params[p].key->key, "train.ctx")) param = p;
        if (ctx) {
            for (size_t v = 0; v < ctx->n_values; v++)
                if (atol(ctx->values[v]) > max_positions)
                    return ls_error("%s:%d: train.ctx: %s is more than the model's max_position_embeddings (%d)",
                                    g->source, ctx->line, ctx->values[v], max_positions);
        } else if (param < s->n_params) { /* every sampled value (the points are drawn at load) */
            for (size_t c = 0; c < s->n_configs; c++) {
                const char *v = s->points[c * s->n_params + param];
                if (atol(v) > max_positions)
                    return ls_error("%s:%d: train.ctx: %s (configuration %zu) is more than the model's "
                                    "max_position_embeddings (%d)", g->source, s->params[param].line, v, c, max_positions);
            }
        } else if (!kept && g->base.train.ctx > max_positions) {
            return ls_error("%s: train.ctx: %d (base, which stage %s uses) is more than the model's "
                            "max_position_embeddings (%d)", g->source, g->base.train.ctx, s->name, max_positions);
        }
    }
    return LS_OK;
}

/* ---- selection and budget ------------------------------------------------------------------- */

int ls_grid_select(const ls_grid_trial *trials, size_t n, const ls_grid_result *results, size_t n_results,
                   ls_grid_metric metric, size_t *winner) {
    if ((unsigned)metric >= LS_GRID_METRIC_COUNT) return ls_error("unknown metric %d", (int)metric);
    size_t n_cfg = 0;
    for (size_t i = 0; i < n; i++)
        if (trials[i].configuration >= n_cfg) n_cfg = trials[i].configuration + 1;
    /* per configuration: the sum of its trials' metrics, how many, whether one has none */
    double *sum = ls_calloc(n_cfg ? n_cfg : 1, sizeof *sum);
    size_t *count = ls_calloc(n_cfg ? n_cfg : 1, sizeof *count), *first = ls_calloc(n_cfg ? n_cfg : 1, sizeof *first);
    char *missing = ls_calloc(n_cfg ? n_cfg : 1, 1);
    int repeated = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = trials[i].configuration;
        if (count[c]++ == 0 || i < first[c]) first[c] = i;
        repeated |= count[c] > 1;
        double v = NAN;
        for (size_t j = 0; j < n_results; j++)
            if (results[j].id == trials[i].id) {
                v = results[j].metric[metric];
                break;
            }
        if (isfinite(v)) sum[c] += v;
        else missing[c] = 1;
    }
    int found = 0;
    double best = 0;
    for (size_t c = 0; c < n_cfg; c++) {
        if (!count[c] || missing[c]) continue;
        double mean = sum[c] / (double)count[c];
        if (!found || mean < best) found = 1, best = mean, *winner = first[c];
    }
    free(sum), free(count), free(first), free(missing);
    if (!found && repeated)
        return ls_error("stage %s: no configuration has a %s in every repeat", trials[0].stage,
                        ls_grid_metric_names[metric]);
    if (!found)
        return ls_error("stage %s: no trial has a %s", n ? trials[0].stage : "?", ls_grid_metric_names[metric]);
    return LS_OK;
}

/* A group of trials the budget admits or skips together. */
typedef struct {
    size_t first, n;          /* into the member order */
    size_t lowest;            /* its lowest trial index */
    double cost;
    int known;                /* every member has an estimate */
} budget_unit;

static const size_t *sort_group;
static int by_group(const void *pa, const void *pb) {
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    if (sort_group && sort_group[a] != sort_group[b]) return sort_group[a] < sort_group[b] ? -1 : 1;
    return (a > b) - (a < b);
}

static int by_cost(const void *pa, const void *pb) {
    const budget_unit *a = pa, *b = pb;
    if (a->known != b->known) return a->known ? -1 : 1;
    if (a->known && a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
    return (a->lowest > b->lowest) - (a->lowest < b->lowest);
}

void ls_grid_budget_plan_groups(const double *flops, const size_t *group, size_t n, double *left,
                                ls_grid_budget_entry *out) {
    if (n == 0) return;
    size_t *member = ls_malloc(n * sizeof *member);
    for (size_t i = 0; i < n; i++) member[i] = i;
    sort_group = group;
    qsort(member, n, sizeof *member, by_group); /* by group, then index */
    sort_group = NULL;
    budget_unit *u = ls_calloc(n, sizeof *u);
    size_t nu = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = member[k];
        if (k == 0 || !group || group[i] != group[member[k - 1]]) u[nu++] = (budget_unit){k, 0, i, 0, 1};
        budget_unit *b = &u[nu - 1];
        b->n++;
        if (!isfinite(flops[i]) || flops[i] < 0) b->known = 0;
        else b->cost += flops[i];
    }
    qsort(u, nu, sizeof *u, by_cost);
    size_t o = 0;
    for (size_t k = 0; k < nu; k++) {
        const budget_unit *b = &u[k];
        char reason[160] = "";
        int skipped = 1;
        if (!b->known) snprintf(reason, sizeof reason, "no FLOPS estimate");
        else if (b->cost > *left && b->n > 1)
            snprintf(reason, sizeof reason, "estimated %.3g FLOPS for %zu repeats, %.3g left of the budget", b->cost,
                     b->n, *left);
        else if (b->cost > *left)
            snprintf(reason, sizeof reason, "estimated %.3g FLOPS, %.3g left of the budget", b->cost, *left);
        else {
            skipped = 0;
            *left -= b->cost;
        }
        for (size_t m = 0; m < b->n; m++, o++) {
            ls_grid_budget_entry *e = &out[o];
            memset(e, 0, sizeof *e);
            e->trial = member[b->first + m];
            e->flops = flops[e->trial];
            e->skipped = skipped;
            snprintf(e->reason, sizeof e->reason, "%s", reason);
        }
    }
    free(u);
    free(member);
}

void ls_grid_budget_plan(const double *flops, size_t n, double *left, ls_grid_budget_entry *out) {
    ls_grid_budget_plan_groups(flops, NULL, n, left, out);
}
