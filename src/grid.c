/*
 * grid.c: sweep grid files: loading and checking, stage expansion, winner selection, the grid's
 * identity and the budget plan (API and rules in include/lorasweep/grid.h, format in docs/sweep.md).
 *
 * Decisions:
 *  - The file is read as libyaml events, as config.c reads trial files: every key has its line,
 *    anchors/aliases/tags are refused as they come, nothing is expanded. The few reader helpers
 *    are repeated here rather than exported from config.c, whose reader is tied to its table.
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

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "lorasweep/common.h"

const char *const ls_grid_metric_names[LS_GRID_METRIC_COUNT] = {"final_val_loss", "mse", "mae"};

/* ---- small helpers -------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
        b->p = ls_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* User text for a message: at most 48 bytes, control characters as '?' (one line). */
static void show(char *dst, size_t cap, const char *s, size_t n) {
    size_t limit = 48, o = 0;
    if (cap < limit + 4) limit = cap - 4;
    size_t take = n < limit ? n : limit;
    if (take < n)
        while (take > 0 && ((unsigned char)s[take] & 0xC0) == 0x80) take--;
    for (size_t i = 0; i < take; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[o++] = (ch < 0x20 || ch == 0x7F) ? '?' : (char)ch;
    }
    if (take < n) memcpy(dst + o, "...", 3), o += 3;
    dst[o] = '\0';
}

static char *current_dir(void) {
    for (size_t cap = 256; cap <= (1u << 20); cap *= 2) {
        char *buf = ls_malloc(cap);
        if (getcwd(buf, cap)) return buf;
        free(buf);
        if (errno != ERANGE) break;
    }
    return ls_strdup(".");
}

/* The absolute directory of a file path. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash && path[0] == '/') {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        char *d = ls_malloc(n + 1);
        memcpy(d, path, n);
        d[n] = '\0';
        return d;
    }
    char *cwd = current_dir();
    if (!slash) return cwd;
    sbuf b = {0};
    sb_puts(&b, cwd);
    sb_puts(&b, "/");
    sb_add(&b, path, (size_t)(slash - path));
    free(cwd);
    return b.p;
}

/* YAML 1.2 decimal number syntax (as config.c). */
static int number_syntax(const char *s) {
    if (*s == '-' || *s == '+') s++;
    int digits = 0;
    while (*s >= '0' && *s <= '9') s++, digits++;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') s++, digits++;
    }
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+') s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == '\0';
}

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

/* ---- the event reader ----------------------------------------------------------------------- */

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;
    int has_ev;
    const char *name;
    const unsigned char *text;
    size_t len;
} reader;

static int line_of(const yaml_mark_t *m) { return (int)m->line + 1; }
static int ev_line(const reader *r) { return line_of(&r->ev.start_mark); }

/* "NAME:LINE: KEY: message" (key left out when NULL). */
static int fail_at(const reader *r, int line, const char *key, const char *fmt, ...) LS_PRINTF(4, 5);
static int fail_at(const reader *r, int line, const char *key, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ls_error("%s:%d: %s%s%s", r->name, line, key ? key : "", key ? ": " : "", msg);
}

static int next_event(reader *r, const char *key) {
    if (r->has_ev) yaml_event_delete(&r->ev);
    r->has_ev = 0;
    if (!yaml_parser_parse(&r->parser, &r->ev)) {
        const yaml_parser_t *p = &r->parser;
        size_t line = p->problem_mark.line;
        if (p->error == YAML_READER_ERROR) {
            line = 0;
            for (size_t i = 0; i < p->problem_offset && i < r->len; i++) line += r->text[i] == '\n';
        }
        const char *problem = p->problem ? p->problem : "cannot be parsed";
        if (p->context)
            return fail_at(r, (int)line + 1, key, "YAML syntax error: %s (%s)", problem, p->context);
        return fail_at(r, (int)line + 1, key, "YAML syntax error: %s", problem);
    }
    r->has_ev = 1;
    return LS_OK;
}

static int is_null_scalar(const yaml_event_t *e) {
    if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static void describe(char *dst, size_t cap, const yaml_event_t *e) {
    if (e->type == YAML_MAPPING_START_EVENT) snprintf(dst, cap, "a mapping");
    else if (e->type == YAML_SEQUENCE_START_EVENT) snprintf(dst, cap, "a list");
    else if (is_null_scalar(e)) snprintf(dst, cap, "an empty value");
    else if (e->type == YAML_SCALAR_EVENT) {
        char s[64];
        show(s, sizeof s, (const char *)e->data.scalar.value, e->data.scalar.length);
        if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) snprintf(dst, cap, "'%s'", s);
        else snprintf(dst, cap, "the string \"%s\"", s);
    } else snprintf(dst, cap, "something else");
}

static int wrong(const reader *r, const char *key, const char *want) {
    char got[96];
    describe(got, sizeof got, &r->ev);
    return fail_at(r, ev_line(r), key, "expected %s, got %s", want, got);
}

static int check_plain_node(const reader *r, const char *key) {
    const yaml_event_t *e = &r->ev;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    char s[64];
    if (e->type == YAML_ALIAS_EVENT) {
        const char *a = (const char *)e->data.alias.anchor;
        show(s, sizeof s, a, strlen(a));
        return fail_at(r, ev_line(r), key, "aliases (*%s) are not supported", s);
    }
    if (e->type == YAML_SCALAR_EVENT) anchor = e->data.scalar.anchor, tag = e->data.scalar.tag;
    else if (e->type == YAML_SEQUENCE_START_EVENT) anchor = e->data.sequence_start.anchor, tag = e->data.sequence_start.tag;
    else if (e->type == YAML_MAPPING_START_EVENT) anchor = e->data.mapping_start.anchor, tag = e->data.mapping_start.tag;
    if (anchor) {
        show(s, sizeof s, (const char *)anchor, strlen((const char *)anchor));
        return fail_at(r, ev_line(r), key, "anchors (&%s) are not supported", s);
    }
    if (tag) {
        show(s, sizeof s, (const char *)tag, strlen((const char *)tag));
        return fail_at(r, ev_line(r), key, "tags (%s) are not supported", s);
    }
    return LS_OK;
}

/* The key scalar at r->ev into dst (shown form); *exact is 0 when that differs from the key. */
static int read_key(const reader *r, const char *ctx, char *dst, size_t cap, int *exact) {
    const yaml_event_t *e = &r->ev;
    if (check_plain_node(r, ctx) != LS_OK) return LS_ERR;
    if (e->type != YAML_SCALAR_EVENT || is_null_scalar(e)) {
        char got[96];
        describe(got, sizeof got, e);
        return fail_at(r, ev_line(r), ctx, "keys must be names, got %s", got);
    }
    show(dst, cap, (const char *)e->data.scalar.value, e->data.scalar.length);
    *exact = strlen(dst) == e->data.scalar.length && !memcmp(dst, e->data.scalar.value, e->data.scalar.length);
    return LS_OK;
}

/* A scalar as YAML text that ls_config_set reads back the same: plain as written, others in
 * double quotes with escapes. `in_list`: an empty plain scalar becomes "~" (a list item). */
static void scalar_text(const yaml_event_t *e, int in_list, sbuf *out) {
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (n == 0 && in_list) sb_puts(out, "~");
        else sb_add(out, s, n);
        return;
    }
    sb_puts(out, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            sb_add(out, esc, 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_puts(out, esc);
        } else sb_add(out, (const char *)&c, 1);
    }
    sb_puts(out, "\"");
}

/* The value node at r->ev (a scalar, or a list of scalars) as YAML text for ls_config_set; the
 * reader is left on the node's last event. */
static int node_text(reader *r, const char *key, sbuf *out) {
    if (check_plain_node(r, key) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_SCALAR_EVENT) {
        scalar_text(&r->ev, 0, out);
        return LS_OK;
    }
    if (r->ev.type != YAML_SEQUENCE_START_EVENT) return wrong(r, key, "a value");
    sb_puts(out, "[");
    for (int i = 0;; i++) {
        if (next_event(r, key) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (check_plain_node(r, key) != LS_OK) return LS_ERR;
        if (r->ev.type != YAML_SCALAR_EVENT) return wrong(r, key, "a name in the list");
        if (i) sb_puts(out, ", ");
        scalar_text(&r->ev, 1, out);
    }
    sb_puts(out, "]");
    return LS_OK;
}

/* ---- loading -------------------------------------------------------------------------------- */

typedef struct {
    reader r;
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
    reader *r = &L->r;
    const ls_config_key *k = ls_config_find(dotted);
    if (k) {
        size_t i = (size_t)(k - ls_config_keys(NULL));
        if (L->key_line[i]) return fail_at(r, line, k->key, "duplicate key (first on line %d)", L->key_line[i]);
        L->key_line[i] = line;
    }
    sbuf text = {0};
    int rc = node_text(r, dotted, &text);
    if (rc == LS_OK) rc = set_key(L, &L->g->base, dotted, text.p ? text.p : "", line);
    free(text.p);
    return rc;
}

static int read_base(loader *L) {
    reader *r = &L->r;
    if (check_plain_node(r, "base") != LS_OK) return LS_ERR;
    if (is_null_scalar(&r->ev)) return LS_OK;
    if (r->ev.type != YAML_MAPPING_START_EVENT) return wrong(r, "base", "a mapping of trial keys");
    char seen[16][32];
    int seen_line[16], n_seen = 0;
    for (;;) {
        if (next_event(r, "base") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) return LS_OK;
        char key[64];
        int exact, line = ev_line(r);
        if (read_key(r, "base", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        if (exact && key_is_section(key)) {
            for (int i = 0; i < n_seen; i++)
                if (!strcmp(seen[i], key))
                    return fail_at(r, line, key, "duplicate section (first on line %d)", seen_line[i]);
            if (n_seen < 16 && strlen(key) < sizeof seen[0]) {
                memcpy(seen[n_seen], key, strlen(key) + 1); /* fits: checked just above */
                seen_line[n_seen++] = line;
            }
            if (next_event(r, key) != LS_OK || check_plain_node(r, key) != LS_OK) return LS_ERR;
            if (is_null_scalar(&r->ev)) continue;
            if (r->ev.type != YAML_MAPPING_START_EVENT)
                return wrong(r, key, "a mapping of keys (such as 'lr: 1.0e-4')");
            for (;;) {
                if (next_event(r, key) != LS_OK) return LS_ERR;
                if (r->ev.type == YAML_MAPPING_END_EVENT) break;
                char sub[64], dotted[160];
                int sub_exact, sub_line = ev_line(r);
                if (read_key(r, key, sub, sizeof sub, &sub_exact) != LS_OK) return LS_ERR;
                snprintf(dotted, sizeof dotted, "%s.%s", key, sub);
                if (!sub_exact) return fail_at(r, sub_line, dotted, "unknown key");
                if (next_event(r, dotted) != LS_OK || read_base_value(L, dotted, sub_line) != LS_OK) return LS_ERR;
            }
            continue;
        }
        if (!exact) return fail_at(r, line, key, "unknown key");
        if (!strchr(key, '.') && !ls_config_find(key))
            return fail_at(r, line, key, "unknown section (expected name, model, data, encoding, split, lora, train, "
                                         "eval, or a dotted key such as train.lr)");
        if (next_event(r, key) != LS_OK || read_base_value(L, key, line) != LS_OK) return LS_ERR;
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
    reader *r = &L->r;
    if (check_plain_node(r, ctx) != LS_OK) return LS_ERR;
    s->n_trials = 1;
    if (is_null_scalar(&r->ev)) return LS_OK;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return wrong(r, ctx, "a mapping of axes (such as 'train.lr: [1e-5, 1e-4]')");
    ls_trial_config scratch;
    ls_config_defaults(&scratch);
    int rc = LS_OK;
    while (rc == LS_OK) {
        if ((rc = next_event(r, ctx)) != LS_OK) break;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, line = ev_line(r);
        if ((rc = read_key(r, ctx, key, sizeof key, &exact)) != LS_OK) break;
        const ls_config_key *k = exact ? ls_config_find(key) : NULL;
        if (!k) { /* ls_config_set words the message (with a suggestion) */
            rc = set_key(L, &scratch, key, "", line);
            if (rc == LS_OK) rc = fail_at(r, line, key, "unknown key");
            break;
        }
        for (size_t i = 0; i < s->n_axes; i++)
            if (s->axes[i].key == k) rc = fail_at(r, line, k->key, "duplicate axis (first on line %d)", s->axes[i].line);
        if (rc != LS_OK) break;
        s->axes = ls_realloc(s->axes, (s->n_axes + 1) * sizeof *s->axes);
        ls_grid_axis *a = &s->axes[s->n_axes++];
        memset(a, 0, sizeof *a);
        a->key = k;
        a->line = line;
        if ((rc = next_event(r, k->key)) != LS_OK || (rc = check_plain_node(r, k->key)) != LS_OK) break;
        int one = r->ev.type == YAML_SCALAR_EVENT && !is_null_scalar(&r->ev); /* `key: value`: one value */
        if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT && !is_null_scalar(&r->ev)) {
            rc = wrong(r, k->key, "a list of values");
            break;
        }
        if (!one && is_null_scalar(&r->ev)) {
            rc = fail_at(r, line, k->key, "the axis has no values");
            break;
        }
        while (rc == LS_OK) {
            if (!one) {
                if ((rc = next_event(r, k->key)) != LS_OK) break;
                if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
            }
            int vline = ev_line(r);
            if (a->n_values >= LS_GRID_MAX_TRIALS) {
                rc = fail_at(r, vline, k->key, "more than %d values", LS_GRID_MAX_TRIALS);
                break;
            }
            sbuf text = {0};
            rc = node_text(r, k->key, &text);
            if (rc == LS_OK) rc = set_key(L, &scratch, k->key, text.p ? text.p : "", vline);
            free(text.p);
            if (rc != LS_OK) break;
            char *v = ls_config_value_yaml(&scratch, k);
            for (size_t i = 0; i < a->n_values && rc == LS_OK; i++)
                if (!strcmp(a->values[i], v)) rc = fail_at(r, vline, k->key, "%s is listed twice", v);
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
            rc = fail_at(r, line, k->key, "the axis has no values");
            break;
        }
        if ((double)s->n_trials * (double)a->n_values + (double)trials_before > LS_GRID_MAX_TRIALS) {
            rc = fail_at(r, grid_line, ctx, "the axes make more than %d trials%s", LS_GRID_MAX_TRIALS,
                         trials_before ? " with the earlier stages" : "");
            break;
        }
        s->n_trials *= a->n_values;
    }
    ls_config_free(&scratch);
    return rc;
}

/* A name (the sweep's, a stage's, select.from) at r->ev into *out. */
static int read_name(reader *r, const char *key, char **out) {
    if (check_plain_node(r, key) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_SCALAR_EVENT || is_null_scalar(&r->ev)) return wrong(r, key, "a name");
    const char *s = (const char *)r->ev.data.scalar.value;
    size_t n = r->ev.data.scalar.length;
    if (!valid_name(s, n)) {
        char shown[64];
        show(shown, sizeof shown, s, n);
        return fail_at(r, ev_line(r), key, "'%s' is not a name (1 to %d of A-Z a-z 0-9 _ - ., not starting with '.')",
                       shown, LS_GRID_MAX_NAME);
    }
    free(*out);
    *out = ls_malloc(n + 1);
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return LS_OK;
}

static int read_select(loader *L, ls_grid_stage *s, size_t stage_index, int *keep_line) {
    reader *r = &L->r;
    ls_grid *g = L->g;
    if (check_plain_node(r, "select") != LS_OK) return LS_ERR;
    int line = ev_line(r);
    if (r->ev.type != YAML_MAPPING_START_EVENT) return wrong(r, "select", "a mapping (from, metric, keep)");
    int have_from = 0, have_keep = 0, seen[3] = {0};
    s->metric = LS_GRID_METRIC_FINAL_VAL_LOSS;
    for (;;) {
        if (next_event(r, "select") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, kline = ev_line(r), which;
        if (read_key(r, "select", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        which = !exact ? -1 : !strcmp(key, "from") ? 0 : !strcmp(key, "metric") ? 1 : !strcmp(key, "keep") ? 2 : -1;
        char dotted[96];
        snprintf(dotted, sizeof dotted, "select.%s", key);
        if (which < 0) return fail_at(r, kline, dotted, "unknown key (expected from, metric, keep)");
        if (seen[which]) return fail_at(r, kline, dotted, "duplicate key (first on line %d)", seen[which]);
        seen[which] = kline;
        if (next_event(r, dotted) != LS_OK) return LS_ERR;
        if (which == 0) {
            char *from = NULL;
            if (read_name(r, dotted, &from) != LS_OK) return LS_ERR;
            int found = -1;
            for (size_t i = 0; i < stage_index; i++)
                if (!strcmp(g->stages[i].name, from)) found = (int)i;
            if (found < 0) {
                int rc = stage_index == 0
                             ? fail_at(r, ev_line(r), dotted, "the first stage has no earlier stage to select from")
                             : fail_at(r, ev_line(r), dotted, "'%s' is not an earlier stage", from);
                free(from);
                return rc;
            }
            free(from);
            s->select_from = found;
            have_from = 1;
        } else if (which == 1) {
            if (check_plain_node(r, dotted) != LS_OK) return LS_ERR;
            if (r->ev.type != YAML_SCALAR_EVENT || is_null_scalar(&r->ev)) return wrong(r, dotted, "a metric name");
            int m = -1;
            for (int i = 0; i < LS_GRID_METRIC_COUNT; i++)
                if (strlen(ls_grid_metric_names[i]) == r->ev.data.scalar.length &&
                    !memcmp(ls_grid_metric_names[i], r->ev.data.scalar.value, r->ev.data.scalar.length))
                    m = i;
            if (m < 0) {
                char shown[64];
                show(shown, sizeof shown, (const char *)r->ev.data.scalar.value, r->ev.data.scalar.length);
                return fail_at(r, ev_line(r), dotted, "'%s' is not one of final_val_loss, mse, mae", shown);
            }
            s->metric = (ls_grid_metric)m;
        } else {
            if (check_plain_node(r, dotted) != LS_OK) return LS_ERR;
            *keep_line = ev_line(r);
            int one = r->ev.type == YAML_SCALAR_EVENT && !is_null_scalar(&r->ev);
            if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT) return wrong(r, dotted, "a list of keys");
            for (;;) {
                if (!one) {
                    if (next_event(r, dotted) != LS_OK) return LS_ERR;
                    if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
                }
                char k[64];
                int kexact, vline = ev_line(r);
                if (read_key(r, dotted, k, sizeof k, &kexact) != LS_OK) return LS_ERR;
                const ls_config_key *ck = kexact ? ls_config_find(k) : NULL;
                if (!ck) {
                    ls_trial_config scratch;
                    ls_config_defaults(&scratch);
                    int rc = set_key(L, &scratch, k, "", vline);
                    ls_config_free(&scratch);
                    return rc == LS_OK ? fail_at(r, vline, k, "unknown key") : LS_ERR;
                }
                for (size_t i = 0; i < s->n_keep; i++)
                    if (s->keep[i] == ck) return fail_at(r, vline, dotted, "%s is listed twice", ck->key);
                if (s->n_keep >= 256) return fail_at(r, vline, dotted, "too many keys");
                s->keep = ls_realloc(s->keep, (s->n_keep + 1) * sizeof *s->keep);
                s->keep[s->n_keep++] = ck;
                if (one) break;
            }
            have_keep = s->n_keep > 0;
            if (!have_keep) return fail_at(r, *keep_line, dotted, "name at least one key to copy from the winner");
        }
    }
    if (!have_from) return fail_at(r, line, "select.from", "missing: the earlier stage whose best trial this one starts from");
    if (!have_keep) return fail_at(r, line, "select.keep", "missing: the keys copied from the winner (such as [train.lr])");
    return LS_OK;
}

/* One stage mapping at r->ev. */
static int read_stage(loader *L, ls_grid_stage *s, size_t index) {
    reader *r = &L->r;
    ls_grid *g = L->g;
    if (check_plain_node(r, "stages") != LS_OK) return LS_ERR;
    s->line = ev_line(r);
    s->select_from = -1;
    s->n_trials = 1;
    if (r->ev.type != YAML_MAPPING_START_EVENT) return wrong(r, "stages", "a stage (a mapping: name, grid, select)");
    int seen[3] = {0}, keep_line = 0;
    for (;;) {
        if (next_event(r, "stages") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, kline = ev_line(r);
        if (read_key(r, "stages", key, sizeof key, &exact) != LS_OK) return LS_ERR;
        int which = !exact ? -1 : !strcmp(key, "name") ? 0 : !strcmp(key, "grid") ? 1 : !strcmp(key, "select") ? 2 : -1;
        if (which < 0) return fail_at(r, kline, key, "unknown key in a stage (expected name, grid, select)");
        if (seen[which]) return fail_at(r, kline, key, "duplicate key (first on line %d)", seen[which]);
        seen[which] = kline;
        if (next_event(r, key) != LS_OK) return LS_ERR;
        if (which == 0) {
            if (read_name(r, "name", &s->name) != LS_OK) return LS_ERR;
            for (size_t i = 0; i < index; i++)
                if (!strcmp(g->stages[i].name, s->name))
                    return fail_at(r, kline, "name", "stage '%s' is defined twice (first on line %d)", s->name,
                                   g->stages[i].line);
        } else if (which == 1) {
            if (read_axes(L, s, "grid", kline, g->n_trials) != LS_OK) return LS_ERR;
        } else if (read_select(L, s, index, &keep_line) != LS_OK) return LS_ERR;
    }
    if (!s->name) return fail_at(r, s->line, "stages", "stage %zu has no name", index + 1);
    for (size_t i = 0; i < s->n_keep; i++)
        for (size_t j = 0; j < s->n_axes; j++)
            if (s->keep[i] == s->axes[j].key)
                return fail_at(r, keep_line, "select.keep", "%s is also an axis of stage %s (line %d)", s->keep[i]->key,
                               s->name, s->axes[j].line);
    return LS_OK;
}

static int read_stages(loader *L) {
    reader *r = &L->r;
    ls_grid *g = L->g;
    if (check_plain_node(r, "stages") != LS_OK) return LS_ERR;
    int line = ev_line(r);
    if (r->ev.type != YAML_SEQUENCE_START_EVENT) return wrong(r, "stages", "a list of stages");
    for (;;) {
        if (next_event(r, "stages") != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (g->n_stages >= LS_GRID_MAX_STAGES)
            return fail_at(r, ev_line(r), "stages", "more than %d stages", LS_GRID_MAX_STAGES);
        g->stages = ls_realloc(g->stages, (g->n_stages + 1) * sizeof *g->stages);
        ls_grid_stage *s = &g->stages[g->n_stages++];
        memset(s, 0, sizeof *s);
        if (read_stage(L, s, g->n_stages - 1) != LS_OK) return LS_ERR;
        g->n_trials += s->n_trials;
    }
    if (g->n_stages == 0) return fail_at(r, line, "stages", "the list is empty");
    return LS_OK;
}

static int read_document(loader *L) {
    reader *r = &L->r;
    ls_grid *g = L->g;
    static const char *const top[] = {"name", "budget_flops", "base", "grid", "stages", NULL};
    int seen[5] = {0};
    if (next_event(r, NULL) != LS_OK || next_event(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type == YAML_STREAM_END_EVENT) return fail_at(r, 1, NULL, "the file is empty");
    if (next_event(r, NULL) != LS_OK || check_plain_node(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_MAPPING_START_EVENT)
        return wrong(r, NULL, "a mapping (name, budget_flops, base, grid or stages)");
    for (;;) {
        if (next_event(r, NULL) != LS_OK) return LS_ERR;
        if (r->ev.type == YAML_MAPPING_END_EVENT) break;
        char key[64];
        int exact, line = ev_line(r), which = -1;
        if (read_key(r, NULL, key, sizeof key, &exact) != LS_OK) return LS_ERR;
        for (int i = 0; exact && top[i]; i++)
            if (!strcmp(top[i], key)) which = i;
        if (which < 0) return fail_at(r, line, key, "unknown key (expected name, budget_flops, base, grid, stages)");
        if (seen[which]) return fail_at(r, line, key, "duplicate key (first on line %d)", seen[which]);
        seen[which] = line;
        if (next_event(r, key) != LS_OK) return LS_ERR;
        switch (which) {
        case 0:
            if (read_name(r, "name", &g->name) != LS_OK) return LS_ERR;
            break;
        case 1: {
            if (check_plain_node(r, key) != LS_OK) return LS_ERR;
            const yaml_event_t *e = &r->ev;
            if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || is_null_scalar(e))
                return wrong(r, key, "a number of FLOPS (such as 1e17)");
            const char *s = (const char *)e->data.scalar.value;
            char shown[64];
            show(shown, sizeof shown, s, e->data.scalar.length);
            if (strlen(s) != e->data.scalar.length || !number_syntax(s))
                return fail_at(r, line, key, "'%s' is not a number", shown);
            double v = strtod(s, NULL);
            if (!isfinite(v) || v <= 0) return fail_at(r, line, key, "%s is out of range (0, inf)", shown);
            g->budget_flops = v;
            break;
        }
        case 2:
            if (read_base(L) != LS_OK) return LS_ERR;
            break;
        case 3: {
            if (seen[4]) return fail_at(r, line, key, "give either grid or stages, not both (stages on line %d)", seen[4]);
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
            if (seen[3]) return fail_at(r, line, key, "give either grid or stages, not both (grid on line %d)", seen[3]);
            if (read_stages(L) != LS_OK) return LS_ERR;
            break;
        }
    }
    if (next_event(r, NULL) != LS_OK || next_event(r, NULL) != LS_OK) return LS_ERR;
    if (r->ev.type != YAML_STREAM_END_EVENT) return fail_at(r, ev_line(r), NULL, "only one YAML document is allowed");
    if (!g->name) return fail_at(r, 1, "name", "missing: the sweep's name (results go to results/<name>.h5)");
    if (!seen[3] && !seen[4]) return fail_at(r, 1, "grid", "missing: give grid (axes) or stages");
    return LS_OK;
}

/* ---- identity ------------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void make_canonical(ls_grid *g) {
    sbuf b = {0};
    sb_puts(&b, "base:\n");
    char *base = ls_config_to_yaml(&g->base);
    for (const char *p = base; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        sb_puts(&b, "  ");
        sb_add(&b, p, n);
        p += n;
    }
    free(base);
    sb_puts(&b, "stages:\n");
    for (size_t i = 0; i < g->n_stages; i++) {
        const ls_grid_stage *s = &g->stages[i];
        sb_puts(&b, "  - name: ");
        sb_puts(&b, s->name);
        sb_puts(&b, "\n");
        if (s->select_from >= 0) {
            sb_puts(&b, "    select: {from: ");
            sb_puts(&b, g->stages[s->select_from].name);
            sb_puts(&b, ", metric: ");
            sb_puts(&b, ls_grid_metric_names[s->metric]);
            sb_puts(&b, ", keep: [");
            for (size_t k = 0; k < s->n_keep; k++) {
                if (k) sb_puts(&b, ", ");
                sb_puts(&b, s->keep[k]->key);
            }
            sb_puts(&b, "]}\n");
        }
        sb_puts(&b, "    grid:\n");
        for (size_t a = 0; a < s->n_axes; a++) {
            sb_puts(&b, "      ");
            sb_puts(&b, s->axes[a].key->key);
            sb_puts(&b, ": [");
            for (size_t v = 0; v < s->axes[a].n_values; v++) {
                if (v) sb_puts(&b, ", ");
                sb_puts(&b, s->axes[a].values[v]);
            }
            sb_puts(&b, "]\n");
        }
    }
    g->canonical = b.p;
    g->hash = fnv1a(b.p, b.n);
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
    sbuf kept = {0};
    for (size_t k = 0; k < s->n_keep; k++) {
        char *v = ls_config_value_yaml(winner, s->keep[k]);
        int rc = ls_config_set(&common, s->keep[k]->key, v);
        if (kept.n) sb_puts(&kept, " ");
        sb_puts(&kept, s->keep[k]->key);
        sb_puts(&kept, "=");
        sb_puts(&kept, v);
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
        sbuf ov = {0};
        if (kept.n) sb_puts(&ov, kept.p);
        size_t rest = i;
        /* the last axis varies fastest: index = ((v0 * n1) + v1) * n2 + v2 ... */
        size_t stride = s->n_trials;
        for (size_t a = 0; a < s->n_axes && rc == LS_OK; a++) {
            const ls_grid_axis *ax = &s->axes[a];
            stride /= ax->n_values;
            size_t v = rest / stride;
            rest %= stride;
            rc = ls_config_set(&tr->config, ax->key->key, ax->values[v]);
            if (ov.n) sb_puts(&ov, " ");
            sb_puts(&ov, ax->key->key);
            sb_puts(&ov, "=");
            sb_puts(&ov, ax->values[v]);
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
    int rc = LS_OK;
    if (!yaml_parser_initialize(&L.r.parser)) rc = ls_error("%s: cannot start the YAML parser", name);
    if (rc == LS_OK) {
        L.r.name = g->source;
        L.r.text = (const unsigned char *)(yaml ? yaml : "");
        L.r.len = yaml ? len : 0;
        yaml_parser_set_input_string(&L.r.parser, L.r.text, L.r.len);
        rc = read_document(&L);
        if (L.r.has_ev) yaml_event_delete(&L.r.ev);
        yaml_parser_delete(&L.r.parser);
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
    return load_with(yaml, len, name ? name : "<string>", base_dir ? ls_strdup(base_dir) : current_dir(), g);
}

int ls_grid_load_file(const char *path, ls_grid *g) {
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (!f) return ls_error("%s: cannot open: %s", path, strerror(errno));
    size_t cap = LS_CONFIG_MAX_BYTES + 1, len = 0, got;
    char *buf = ls_malloc(cap);
    while (len < cap && (got = fread(buf + len, 1, cap - len, f)) > 0) len += got;
    int failed = ferror(f), err = errno;
    fclose(f);
    if (failed) {
        free(buf);
        return ls_error("%s: cannot read: %s", path, strerror(err));
    }
    if (len > LS_CONFIG_MAX_BYTES) {
        free(buf);
        return ls_error("%s: too large (more than %d bytes)", path, LS_CONFIG_MAX_BYTES);
    }
    int rc = load_with(buf, len, path, dir_of(path), g);
    free(buf);
    return rc;
}

int ls_grid_stage_find(const ls_grid *g, const char *name) {
    for (size_t i = 0; i < g->n_stages; i++)
        if (!strcmp(g->stages[i].name, name)) return (int)i;
    return -1;
}

int ls_grid_check_model(const ls_grid *g, int max_positions) {
    if (g->base.train.ctx > max_positions)
        return ls_error("%s: train.ctx: %d (base) is more than the model's max_position_embeddings (%d)", g->source,
                        g->base.train.ctx, max_positions);
    for (size_t i = 0; i < g->n_stages; i++)
        for (size_t a = 0; a < g->stages[i].n_axes; a++) {
            const ls_grid_axis *ax = &g->stages[i].axes[a];
            if (strcmp(ax->key->key, "train.ctx")) continue;
            for (size_t v = 0; v < ax->n_values; v++)
                if (atol(ax->values[v]) > max_positions)
                    return ls_error("%s:%d: train.ctx: %s is more than the model's max_position_embeddings (%d)",
                                    g->source, ax->line, ax->values[v], max_positions);
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
