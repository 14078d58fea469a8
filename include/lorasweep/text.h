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

enum {
    LS_LLMTIME_MAX_DECIMALS = 8, /* decimals is 0..8 */
    LS_LLMTIME_MAX_DIGITS = 18,  /* a decoded number has at most 18 digits (fits a uint64) */
};

typedef struct {
    double alpha;  /* values are divided by alpha before rounding (> 0) */
    int decimals;  /* digits after the decimal point (0..8) */
} ls_llmtime;

/* Scale rule of `alpha: auto`: alpha = percentile(|values|, pct) / target, so that pct percent of
 * the values land in [0, target]. The percentile interpolates linearly between order statistics
 * (numpy.percentile's default); non-finite values are ignored; pct is clamped to [0, 100]; a
 * target <= 0 is taken as 1. Returns alpha >= 1e-12 (never 0); 1.0 when there is no finite value. */
double ls_llmtime_auto_alpha(const float *values, size_t n, double pct, double target);

/* Encode `steps` steps of `vars` variables (row-major values[step*vars + var]). Returns a
 * malloc'ed NUL-terminated string and its length in *len (if len is non-NULL). Each number is
 * exactly snprintf("%.*f", decimals, value / alpha) except that a value rounding to zero never
 * has a '-' (no "-0.000"); NaN and infinities print as snprintf prints them ("nan", "inf") and
 * so decode as dropped steps. NULL with an error when alpha is not a positive finite number,
 * decimals is outside 0..8, steps < 0 or vars < 1. */
char *ls_llmtime_encode(const ls_llmtime *enc, const float *values, int steps, int vars, size_t *len);

typedef struct {
    float *values;    /* (steps, vars) decoded values, multiplied back by alpha; malloc'ed */
    int steps;        /* steps kept */
    int dropped;      /* steps dropped: wrong field count, a field that is not a number, empty */
} ls_llmtime_decoded;

/* Decode text of `vars` variables per step. Reads at most len bytes (text need not be
 * NUL-terminated). Keeps at most max_steps steps (<= 0: no limit) and stops reading there.
 * A final step without its ';' is kept when it has all its fields. Never fails; free with
 * ls_llmtime_decoded_free. The rules (docs/encoding.md):
 *  - the text is cut at every ';'; each piece is one step, an empty one included (";;" drops one);
 *    a final piece without ';' that is empty or only white space is not a step;
 *  - a step is kept when it has exactly `vars` fields separated by ',' and each is a number
 *    -?[0-9]+(\.[0-9]+)? ("1.9" and "2" are fine, "1.", ".5", "+1", "1e3" are not) of at most
 *    LS_LLMTIME_MAX_DIGITS digits, with optional ASCII white space (space, tab, CR, LF) around it;
 *  - anything else (letters, stray bytes, NUL, a value that overflows float once multiplied by
 *    alpha) drops the whole step, counted in `dropped`. values is NULL when no step is kept.
 * An enc with a bad alpha decodes with alpha 1. */
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
 * Windows start at 0, stride, 2*stride, ... and stop with the first one that reaches the end of
 * the sequence (start + ctx >= n); n <= ctx gives one window, n == 0 none. Returns LS_ERR for
 * ctx < 2, n < 0 or stride > ctx (tokens would be skipped); out is then empty. */
int ls_windows_make(int n, int ctx, int stride, ls_windows *out);
void ls_windows_free(ls_windows *w);
/* Next-token targets of window `index` that count in a loss: position i predicts token i+1 only
 * when both are real, so valid - 1 (0 for a window of at most one real token). */
int ls_windows_targets(const ls_windows *w, int index);
/* Fill one window: ids (ctx) from tokens, padding with pad_id; mask (ctx) 1 for real, 0 for pad
 * (mask may be NULL). An index out of range fills the whole window with padding. */
void ls_windows_fill(const ls_windows *w, int index, const int32_t *tokens, int ctx, int32_t pad_id,
                     int32_t *ids, uint8_t *mask);

#endif
