/*
 * yaml_reader.h: the libyaml event reader shared by the trial-config loader (config.c) and the
 * grid-file loader (grid.c). Internal: not part of the public API.
 *
 * The YAML is untrusted. It is read as events, never as a document tree: each key keeps its
 * line, anchors/aliases/tags are refused as they come (nothing is expanded), and reading stops
 * at the first unexpected event. Every error is one line, "FILE:LINE: KEY: problem" (parts left
 * out when absent), through ls_error; user text echoed in it is cut to 48 bytes with control
 * characters shown as '?'.
 */
#ifndef LORASWEEP_YAML_READER_H
#define LORASWEEP_YAML_READER_H

#include <stddef.h>
#include <yaml.h>

#include "lorasweep/common.h"

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;  /* the current event (valid when has_ev) */
    int has_ev;
    const char *name; /* the file for messages; NULL: messages carry no file and line */
    const unsigned char *text;
    size_t len;
} ls_yaml_reader;

/* Start reading text[0..len) (NULL: empty) under `name` (kept, not copied). Fails only when the
 * parser cannot start; ls_yaml_close is needed only after success. */
int ls_yaml_open(ls_yaml_reader *r, const char *text, size_t len, const char *name);
void ls_yaml_close(ls_yaml_reader *r);

/* The next event into r->ev; a syntax error is reported at its line, under `key` (may be NULL). */
int ls_yaml_next(ls_yaml_reader *r, const char *key);

/* The 1-based line where the current event starts. */
int ls_yaml_line(const ls_yaml_reader *r);

/* Sets the error "NAME:LINE: KEY: message" and returns LS_ERR; line 0 leaves out the line, a
 * NULL key the key, and a reader without a name both name and line. */
int ls_yaml_fail(const ls_yaml_reader *r, int line, const char *key, const char *fmt, ...) LS_PRINTF(4, 5);

/* Refuses an alias, or an anchor or tag on the current node. */
int ls_yaml_check_plain(const ls_yaml_reader *r, const char *key);

/* "expected WANT, got <what the current node is>" at the current node. */
int ls_yaml_wrong(const ls_yaml_reader *r, const char *key, const char *want);

/* The key scalar at r->ev copied (shown form) into dst; *exact is 0 when the copy differs from
 * the key (cut, or control characters replaced), and such a key is unknown anyway. Fails for
 * an anchor/alias/tag or a key that is not a non-empty scalar ("keys must be names"). */
int ls_yaml_read_key(const ls_yaml_reader *r, const char *ctx, char *dst, size_t cap, int *exact);

/* 1 for a plain empty, ~, null, Null or NULL scalar. */
int ls_yaml_is_null(const yaml_event_t *e);

/* What a node is, for "expected X, got Y": "a mapping", "a list", "'plain'", "the string \"q\"". */
void ls_yaml_describe(char *dst, size_t cap, const yaml_event_t *e);

/* User text for a message: at most 48 bytes (cut at a character boundary, "..." added), control
 * characters as '?', so that a message stays one line. */
void ls_yaml_show(char *dst, size_t cap, const char *s, size_t n);

/* YAML 1.2 core schema's decimal numbers: [-+]? (digits (. digits*)? | . digits) ([eE] [-+]? digits)? */
int ls_yaml_number_syntax(const char *s);

/* The whole file at path (at most max bytes) into *text (malloc'ed, not terminated) and *len.
 * Fails with "PATH: cannot open: why", "PATH: cannot read: why" or "PATH: too large (more than
 * MAX bytes)". */
int ls_yaml_read_file(const char *path, int max, char **text, size_t *len);

/* The current directory, malloc'ed ("." if it cannot be found). */
char *ls_yaml_current_dir(void);

/* The absolute directory of a file path (relative paths resolve against the current directory),
 * malloc'ed: where a YAML file's relative paths point. */
char *ls_yaml_dir_of(const char *path);

#endif
