/*
 * yaml_reader.c: the libyaml event reader shared by config.c and grid.c (API in
 * include/lorasweep/yaml_reader.h).
 *
 * Decisions:
 *  - Only the reading and the messages are shared; what the keys mean stays with each loader
 *    (config.c walks its key table, grid.c hands values back to ls_config_set).
 *  - Lines are passed as ints, not libyaml marks, so a loader can report at a line it kept
 *    (the first occurrence of a duplicate, the start of a stage).
 */
#include "lorasweep/yaml_reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ls_yaml_open(ls_yaml_reader *r, const char *text, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    if (!yaml_parser_initialize(&r->parser)) return ls_error("%s: cannot start the YAML parser", name ? name : "");
    r->name = name;
    r->text = (const unsigned char *)(text ? text : "");
    r->len = text ? len : 0;
    yaml_parser_set_input_string(&r->parser, r->text, r->len);
    return LS_OK;
}

void ls_yaml_close(ls_yaml_reader *r) {
    if (r->has_ev) yaml_event_delete(&r->ev);
    r->has_ev = 0;
    yaml_parser_delete(&r->parser);
}

int ls_yaml_line(const ls_yaml_reader *r) { return (int)r->ev.start_mark.line + 1; }

int ls_yaml_fail(const ls_yaml_reader *r, int line, const char *key, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *k = key ? key : "", *sep = key ? ": " : "";
    if (r->name && line > 0) return ls_error("%s:%d: %s%s%s", r->name, line, k, sep, msg);
    if (r->name) return ls_error("%s: %s%s%s", r->name, k, sep, msg);
    return ls_error("%s%s%s", k, sep, msg);
}

static int syntax_error(const ls_yaml_reader *r, const char *key) {
    const yaml_parser_t *p = &r->parser;
    size_t line = p->problem_mark.line;
    if (p->error == YAML_READER_ERROR) { /* no mark: count the lines up to the offset */
        line = 0;
        for (size_t i = 0; i < p->problem_offset && i < r->len; i++) line += r->text[i] == '\n';
    }
    const char *problem = p->problem ? p->problem : "cannot be parsed";
    /* libyaml's words for a tab where indentation goes ("found character that cannot start any
     * token") do not say what to change */
    size_t at = p->problem_mark.index;
    if ((p->error == YAML_SCANNER_ERROR && at < r->len && r->text[at] == '\t') || strstr(problem, "tab character"))
        return ls_yaml_fail(r, (int)line + 1, key, "a tab character: YAML does not allow tabs for indentation "
                                                   "(indent with spaces)");
    if (p->context) return ls_yaml_fail(r, (int)line + 1, key, "YAML syntax error: %s (%s)", problem, p->context);
    return ls_yaml_fail(r, (int)line + 1, key, "YAML syntax error: %s", problem);
}

int ls_yaml_next(ls_yaml_reader *r, const char *key) {
    if (r->has_ev) yaml_event_delete(&r->ev);
    r->has_ev = 0;
    if (!yaml_parser_parse(&r->parser, &r->ev)) return syntax_error(r, key);
    r->has_ev = 1;
    return LS_OK;
}

int ls_yaml_is_null(const yaml_event_t *e) {
    if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

void ls_yaml_show(char *dst, size_t cap, const char *s, size_t n) {
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

void ls_yaml_describe(char *dst, size_t cap, const yaml_event_t *e) {
    if (e->type == YAML_MAPPING_START_EVENT) snprintf(dst, cap, "a mapping");
    else if (e->type == YAML_SEQUENCE_START_EVENT) snprintf(dst, cap, "a list");
    else if (ls_yaml_is_null(e)) snprintf(dst, cap, "an empty value");
    else if (e->type == YAML_SCALAR_EVENT) {
        char s[64];
        ls_yaml_show(s, sizeof s, (const char *)e->data.scalar.value, e->data.scalar.length);
        if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) snprintf(dst, cap, "'%s'", s);
        else snprintf(dst, cap, "the string \"%s\"", s);
    } else snprintf(dst, cap, "something else");
}

int ls_yaml_wrong(const ls_yaml_reader *r, const char *key, const char *want) {
    char got[96];
    ls_yaml_describe(got, sizeof got, &r->ev);
    return ls_yaml_fail(r, ls_yaml_line(r), key, "expected %s, got %s", want, got);
}

int ls_yaml_check_plain(const ls_yaml_reader *r, const char *key) {
    const yaml_event_t *e = &r->ev;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    char s[64];
    if (e->type == YAML_ALIAS_EVENT) {
        const char *a = (const char *)e->data.alias.anchor;
        ls_yaml_show(s, sizeof s, a, strlen(a));
        return ls_yaml_fail(r, ls_yaml_line(r), key, "aliases (*%s) are not supported", s);
    }
    if (e->type == YAML_SCALAR_EVENT) anchor = e->data.scalar.anchor, tag = e->data.scalar.tag;
    else if (e->type == YAML_SEQUENCE_START_EVENT) anchor = e->data.sequence_start.anchor, tag = e->data.sequence_start.tag;
    else if (e->type == YAML_MAPPING_START_EVENT) anchor = e->data.mapping_start.anchor, tag = e->data.mapping_start.tag;
    if (anchor) {
        ls_yaml_show(s, sizeof s, (const char *)anchor, strlen((const char *)anchor));
        return ls_yaml_fail(r, ls_yaml_line(r), key, "anchors (&%s) are not supported", s);
    }
    if (tag) {
        ls_yaml_show(s, sizeof s, (const char *)tag, strlen((const char *)tag));
        return ls_yaml_fail(r, ls_yaml_line(r), key, "tags (%s) are not supported", s);
    }
    return LS_OK;
}

int ls_yaml_read_key(const ls_yaml_reader *r, const char *ctx, char *dst, size_t cap, int *exact) {
    const yaml_event_t *e = &r->ev;
    if (ls_yaml_check_plain(r, ctx) != LS_OK) return LS_ERR;
    if (e->type != YAML_SCALAR_EVENT || ls_yaml_is_null(e)) {
        char got[96];
        ls_yaml_describe(got, sizeof got, e);
        return ls_yaml_fail(r, ls_yaml_line(r), ctx, "keys must be names, got %s", got);
    }
    ls_yaml_show(dst, cap, (const char *)e->data.scalar.value, e->data.scalar.length);
    *exact = strlen(dst) == e->data.scalar.length && !memcmp(dst, e->data.scalar.value, e->data.scalar.length);
    return LS_OK;
}

int ls_yaml_number_syntax(const char *s) {
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

int ls_yaml_read_file(const char *path, int max, char **text, size_t *len) {
    *len = 0;
    *text = ls_read_file_max(path, (size_t)max, len); /* a regular file of at most max bytes */
    return *text ? LS_OK : LS_ERR;
}

char *ls_yaml_current_dir(void) {
    for (size_t cap = 256; cap <= (1u << 20); cap *= 2) {
        char *buf = ls_malloc(cap);
        if (getcwd(buf, cap)) return buf;
        free(buf);
        if (errno != ERANGE) break;
    }
    return ls_strdup(".");
}

char *ls_yaml_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash && path[0] == '/') { /* absolute: the part before the last '/' ("/" for "/x") */
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        char *d = ls_malloc(n + 1);
        memcpy(d, path, n);
        d[n] = '\0';
        return d;
    }
    char *cwd = ls_yaml_current_dir();
    if (!slash) return cwd;
    size_t nc = strlen(cwd), nd = (size_t)(slash - path), sep = nc && cwd[nc - 1] != '/';
    char *d = ls_malloc(nc + sep + nd + 1);
    memcpy(d, cwd, nc);
    if (sep) d[nc] = '/';
    memcpy(d + nc + sep, path, nd);
    d[nc + sep + nd] = '\0';
    free(cwd);
    return d;
}
