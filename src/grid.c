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
 */
#include "lorasweep/grid.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void axis_free(ls_grid_axis *a) {
    for (size_t i = 0; i < a->n_values; i++) free(a->values[i]);
    free(a->values);
}

static void stage_free(ls_grid_stage *s) {
    free(s->name);
    for (size_t i = 0; i < s->n_axes; i++) axis_free(&s->axes[i]);
    free(s->axes);
    free(s->keep);
    memset(s, 0, sizeof *s);
}

/* The axes of a stage (the mapping at r->ev, its key on grid_line) into s; `trials_before` are the
 * earlier stages' trials. */
static int read_axes(loader *L, ls_grid_stage *s, const char *ctx, int grid_line, size_t trials_before) {
    ls_yaml_reader *r = &L->r;
    if (ls_yaml_check_plain(r, ctx) != LS_OK) return LS_ERR;
    s->n_trials = 1;
    if (ls_yaml_is_null(&r->ev)) return LS_OK;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, ctx, "a mapping of axes (such as 'train.lr: [1e-5, 1e-4]')");
    ls_trial_config scratch;
    ls_config_defaults(&scratch);
    int rc = LS_OK;
    while (rc == LS_OK) {
        if ((rc = ls_yaml_next(r, ctx)) != LS_OK) break;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, line = ls_yaml_line(r);
        if ((rc = ls_yaml_read_key(r, ctx, key, sizeof key, &exact)) != LS_OK) break;
        const ls_config_key *k = exact ? ls_config_find(key) : NULL;
        if (!k) { /* ls_config_set words the message (with a suggestion) */
            rc = set_key(L, &scratch, key, "", line);
            if (rc == LS_OK) rc = ls_yaml_fail(r, line, key, "unknown key");
            break;
        }
        for (size_t i = 0; i < s->n_axes; i++)
            if (s->axes[i].key == k)
                rc = ls_yaml_fail(r, line, k->key, "duplicate axis (first on line %d)", s->axes[i].line);
        /* Worker ranks are grouped once per sweep (sweep.c), so every trial has the same group size. */
        if (rc == LS_OK && !strcmp(k->key, "train.ranks_per_trial"))
            rc = ls_yaml_fail(r, line, k->key, "cannot be an axis: a sweep runs every trial on the same number "
                              "of ranks; set it in base");
        if (rc != LS_OK) break;
        s->axes = ls_realloc(s->axes, (s->n_axes + 1) * sizeof *s->axes);
        ls_grid_axis *a = &s->axes[s->n_axes++];
        memset(a, 0, sizeof *a);
        a->key = k;
        a->line = line;
        if ((rc = ls_yaml_next(r, k->key)) != LS_OK || (rc = ls_yaml_check_plain(r, k->key)) != LS_OK) break;
        int one = r->ev.type == YAML_SCALAR_EVENT && !ls_yaml_is_null(&r->ev); /* `key: value`: one value */
        if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT && !ls_yaml_is_null(&r->ev)) {
            rc = ls_yaml_wrong(r, k->key, "a list of values");
            break;
        }
        if (!one && ls_yaml_is_null(&r->ev)) {
            rc = ls_yaml_fail(r, line, k->key, "the axis has no values");
            break;
        }
        while (rc == LS_OK) {
            if (!one) {
                if ((rc = ls_yaml_next(r, k->key)) != LS_OK) break;
                if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
            }
            int vline = ls_yaml_line(r);
            if (a->n_values >= LS_GRID_MAX_TRIALS) {
                rc = ls_yaml_fail(r, vline, k->key, "more than %d values", LS_GRID_MAX_TRIALS);
                break;
            }
            ls_strbuf text = {0};
            rc = node_text(r, k->key, &text);
            if (rc == LS_OK) rc = set_key(L, &scratch, k->key, text.p ? text.p : "", vline);
            free(text.p);
            if (rc != LS_OK) break;
            char *v = ls_config_value_yaml(&scratch, k);
            for (size_t i = 0; i < a->n_values && rc == LS_OK; i++)
                if (!strcmp(a->values[i], v)) rc = ls_yaml_fail(r, vline, k->key, "%s is listed twice", v);
            if (rc != LS_OK) {
                free(v);
                break;
            }
            a->values = ls_realloc(a->values, (a->n_values + 1) * sizeof *a->values);
            a->values[a->n_values++] = v;
            if (one) break;
        }
        if (rc != LS_OK) break;
        if (a->n_values == 0) {
            rc = ls_yaml_fail(r, line, k->key, "the axis has no values");
            break;
        }
        if ((double)s->n_trials * (double)a->n_values + (double)trials_before > LS_GRID_MAX_TRIALS) {
            rc = ls_yaml_fail(r, grid_line, ctx, "the axes make more than %d trials%s", LS_GRID_MAX_TRIALS,
                              trials_before ? " with the earlier stages" : "");
            break;
        }
        s->n_trials *= a->n_values;
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

/* One stage mapping at r->ev. */
static int read_stage(loader *L, ls_grid_stage *s, size_t index) {
    ls_yaml_reader *r = &L->r;
    ls_grid *g = L->g;
    if (ls_yaml_check_plain(r, "stages") != LS_OK) return LS_ERR;
    s->line = ls_yaml_line(r);
    s->select_from = -1;
    s->n_trials = 1;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, "stages", "a stage (a mapping: name, grid, select)");
    int seen[3] = {0}, keep_line = 0;
    for (;;) {
        if (ls_yaml_next(r, "stages") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, kline = ls_yaml_line(r);
        if (ls_yaml_read_key(r, "stages", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        int which = !exact ? -1 : !strcmp(key, "name") ? 0 : !strcmp(key, "grid") ? 1 : !strcmp(key, "select") ? 2 : -1;
        if (which < 0) return ls_yaml_fail(r, kline, key, "unknown key in a stage (expected name, grid, select)");
        if (seen[which]) return ls_yaml_fail(r, kline, key, "duplicate key (first on line %d)", seen[which]);
        seen[which] = kline;
        if (ls_yaml_next(r, key) != LS_OK) return LS_ERR;
        if (which == 0) {
            if (read_name(r, "name", &s->name) != LS_OK) return LS_ERR;
            for (size_t i = 0; i < index; i++)
                if (!strcmp(g->stages[i].name, s->name))
                    return ls_yaml_fail(r, kline, "name", "stage '%s' is defined twice (first on line %d)", s->name,
                                        g->stages[i].line);
        } else if (which == 1) {
            if (read_axes(L, s, "grid", kline, g->n_trials) != LS_OK) return LS_ERR;
        } else if (read_select(L, s, index, &keep_line) != LS_OK) return LS_ERR;
    }
    if (!s->name) return ls_yaml_fail(r, s->line, "stages", "stage %zu has no name", index + 1);
    for (size_t i = 0; i < s->n_keep; i++)
        for (size_t j = 0; j < s->n_axes; j++)
            if (s->keep[i] == s->axes[j].key)
                return ls_yaml_fail(r, keep_line, "select.keep", "%s is also an axis of stage %s (line %d)",
                                    s->keep[i]->key, s->name, s->axes[j].line);
    return LS_OK;
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
    static const char *const top[] = {"name", "budget_flops", "base", "grid", "stages", "max_attempts", NULL};
    int seen[6] = {0};
    if (ls_yaml_next(r, NULL) != LS_OK || ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_STREAM_END_EVENT) return ls_yaml_fail(r, 1, NULL, "the file is empty");
    if (ls_yaml_next(r, NULL) != LS_OK || ls_yaml_check_plain(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return ls_yaml_wrong(r, NULL, "a mapping (name, budget_flops, max_attempts, base, grid or stages)");
    for (;;) {
        if (ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, line = ls_yaml_line(r), which = -1;
        if (ls_yaml_read_key(r, NULL, key, sizeof key, &exact) != LS_OK) return LS_ERR;
        for (int i = 0; exact && top[i]; i++)
            if (!strcmp(top[i], key)) which = i;
        if (which < 0)
            return ls_yaml_fail(r, line, key, "unknown key (expected name, budget_flops, max_attempts, base, grid, stages)");
        if (seen[which]) return ls_yaml_fail(r, line, key, "duplicate key (first on line %d)", seen[which]);
        seen[which] = line;
        if (ls_yaml_next(r, key) != LS_OK) return LS_ERR;
        switch (which) {
        case 0:
            if (read_name(r, "name", &g->name) != LS_OK) return LS_ERR;
            break;
        case 1:
            if (read_top_number(r, key, line, "a number of FLOPS (such as 1e17)", 0, &g->budget_flops) != LS_OK)
                return LS_ERR;
            break;
        case 5: {
            double v;
            if (read_top_number(r, key, line, "a whole number of attempts (such as 3)", 1, &v) != LS_OK) return LS_ERR;
            if (v != floor(v) || v > 1000) return ls_yaml_fail(r, line, key, "%g is not a whole number in [1, 1000]", v);
            g->max_attempts = (int)v;
            break;
        }
        case 2:
            if (read_base(L) != LS_OK) return LS_ERR;
            break;
        case 3: {
            if (seen[4])
                return ls_yaml_fail(r, line, key, "give either grid or stages, not both (stages on line %d)", seen[4]);
            g->stages = ls_calloc(1, sizeof *g->stages);
            g->n_stages = 1;
            ls_grid_stage *s = &g->stages[0];
            s->name = ls_strdup("main");
            s->line = line;
            s->select_from = -1;
            if (read_axes(L, s, "grid", line, 0) != LS_OK) return LS_ERR;
            g->n_trials = s->n_trials;
            break;
        }
        case 4:
            if (seen[3])
                return ls_yaml_fail(r, line, key, "give either grid or stages, not both (grid on line %d)", seen[3]);
            if (read_stages(L) != LS_OK) return LS_ERR;
            break;
        }
    }
    if (ls_yaml_next(r, NULL) != LS_OK || ls_yaml_next(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_STREAM_END_EVENT)
        return ls_yaml_fail(r, ls_yaml_line(r), NULL, "only one YAML document is allowed");
    if (!g->name) return ls_yaml_fail(r, 1, "name", "missing: the sweep's name (results go to results/<name>.h5)");
    if (!seen[3] && !seen[4]) return ls_yaml_fail(r, 1, "grid", "missing: give grid (axes) or stages");
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
    size_t done = 0;
    int rc = LS_OK;
    for (size_t i = 0; i < s->n_trials && rc == LS_OK; i++) {
        ls_grid_trial *tr = &t[i];
        ls_config_copy(&tr->config, &common);
        tr->stage = s->name;
        tr->stage_index = stage;
        tr->index = i;
        done = i + 1;
        ls_strbuf ov = {0};
        if (kept.n) ls_strbuf_puts(&ov, kept.p);
        size_t rest = i;
        /* the last axis varies fastest: index = ((v0 * n1) + v1) * n2 + v2 ... */
        size_t stride = s->n_trials;
        for (size_t a = 0; a < s->n_axes && rc == LS_OK; a++) {
            const ls_grid_axis *ax = &s->axes[a];
            stride /= ax->n_values;
            size_t v = rest / stride;
            rest %= stride;
            rc = ls_config_set(&tr->config, ax->key->key, ax->values[v]);
            if (ov.n) ls_strbuf_puts(&ov, " ");
            ls_strbuf_puts(&ov, ax->key->key);
            ls_strbuf_puts(&ov, "=");
            ls_strbuf_puts(&ov, ax->values[v]);
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
        tr->id = ls_config_hash(&tr->config);
    }
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
        if (ctx) {
            for (size_t v = 0; v < ctx->n_values; v++)
                if (atol(ctx->values[v]) > max_positions)
                    return ls_error("%s:%d: train.ctx: %s is more than the model's max_position_embeddings (%d)",
                                    g->source, ctx->line, ctx->values[v], max_positions);
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
    int found = 0;
    double best = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n_results; j++) {
            if (results[j].id != trials[i].id) continue;
            double v = results[j].metric[metric];
            if (isfinite(v) && (!found || v < best)) found = 1, best = v, *winner = i;
            break;
        }
    if (!found)
        return ls_error("stage %s: no trial has a %s", n ? trials[0].stage : "?", ls_grid_metric_names[metric]);
    return LS_OK;
}

static int by_cost(const void *pa, const void *pb) {
    const ls_grid_budget_entry *a = pa, *b = pb;
    int fa = isfinite(a->flops) && a->flops >= 0, fb = isfinite(b->flops) && b->flops >= 0;
    if (fa != fb) return fa ? -1 : 1;
    if (fa && a->flops != b->flops) return a->flops > b->flops ? -1 : 1;
    return a->trial < b->trial ? -1 : a->trial > b->trial;
}

void ls_grid_budget_plan(const double *flops, size_t n, double *left, ls_grid_budget_entry *out) {
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].trial = i;
        out[i].flops = flops[i];
    }
    if (n > 1) qsort(out, n, sizeof *out, by_cost);
    for (size_t i = 0; i < n; i++) {
        ls_grid_budget_entry *e = &out[i];
        if (!isfinite(e->flops) || e->flops < 0) {
            e->skipped = 1;
            snprintf(e->reason, sizeof e->reason, "no FLOPS estimate");
        } else if (e->flops > *left) {
            e->skipped = 1;
            snprintf(e->reason, sizeof e->reason, "estimated %.3g FLOPS, %.3g left of the budget", e->flops, *left);
        } else *left -= e->flops;
    }
}
