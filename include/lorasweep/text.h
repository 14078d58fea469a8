/*
 * text.h: the LLMTIME text scheme and token windows.
 *
 * A series of N steps of V variables becomes text by dividing each value by alpha, rounding to
 * `decimals` places, writing the V values of one step separated by ',' and steps by ';' (a ';'
 * after every step, the last one too):  "1.900,2.081;1.481,1.559;"
 * Decoding reads back whatever a model really emits and never fails: steps that do not parse
 * are dropped and counted.
 */
#ifndef LORASWEEP_TEXT_H
#define LORASWEEP_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double alpha;  /* values are divided by alpha before rounding (> 0) */
    int decimals;  /* digits after the decimal point (0..8) */
} ls_llmtime;

/* Scale rule of `alpha: auto`: alpha = percentile(values, pct) / target, so that pct percent of
 * the values land in [0, target]. Returns alpha (>= a tiny floor so that it is never 0). */
double ls_llmtime_auto_alpha(const float *values, size_t n, double pct, double target);

/* Encode `steps` steps of `vars` variables (row-major values[step*vars + var]). Returns a
 * malloc'ed NUL-terminated string and its length in *len (if len is non-NULL). */
char *ls_llmtime_encode(const ls_llmtime *enc, const float *values, int steps, int vars, size_t *len);

typedef struct {
    float *values;    /* (steps, vars) decoded values, multiplied back by alpha; malloc'ed */
    int steps;        /* steps kept */
    int dropped;      /* steps dropped: wrong field count, a field that is not a number, empty */
} ls_llmtime_decoded;

/* Decode text of `vars` variables per step. Reads at most len bytes (text need not be
 * NUL-terminated). Keeps at most max_steps steps (<= 0: no limit). A final step without its
 * ';' is kept when it has all its fields. Never fails; free with ls_llmtime_decoded_free. */
ls_llmtime_decoded ls_llmtime_decode(const ls_llmtime *enc, const char *text, size_t len, int vars,
                                     int max_steps);
void ls_llmtime_decoded_free(ls_llmtime_decoded *d);

/* Training windows over one token sequence: window w covers tokens [start[w], start[w] + ctx);
 * the last window is padded past the end of the sequence (its `valid` count is < ctx). */
typedef struct {
    int count;
    int *start;  /* (count) first token of each window */
    int *valid;  /* (count) how many of the ctx positions are real tokens; the rest is padding */
} ls_windows;

/* Cut a sequence of n tokens into windows of ctx tokens moving by stride (stride <= 0: ctx/2).
 * Windows stop once one reaches the end of the sequence. Returns LS_ERR for ctx < 2. */
int ls_windows_make(int n, int ctx, int stride, ls_windows *out);
void ls_windows_free(ls_windows *w);
/* Fill one window: ids (ctx) from tokens, padding with pad_id; mask (ctx) 1 for real, 0 for pad. */
void ls_windows_fill(const ls_windows *w, int index, const int32_t *tokens, int ctx, int32_t pad_id,
                     int32_t *ids, uint8_t *mask);

#endif
