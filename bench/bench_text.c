/*
 * bench_text.c: how long the text pipeline takes on a whole data set: loading tokenizer.json,
 * LLMTIME-encoding every system, tokenizing every system's text. Prints one JSON object.
 *
 *   build/bench/bench_text --data FILE --tokenizer FILE [--repeat N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "lorasweep/text.h"
#include "lorasweep/tokenizer.h"

static int fail(void) {
    fprintf(stderr, "bench_text: %s\n", ls_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *data_path = NULL, *tok_path = NULL;
    int repeat = 5, c;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"repeat", required_argument, 0, 'r'},
                                         {0, 0, 0, 0}};
    while ((c = getopt_long(argc, argv, "d:t:r:", opts, NULL)) != -1) {
        if (c == 'd') data_path = optarg;
        else if (c == 't') tok_path = optarg;
        else if (c == 'r') repeat = atoi(optarg) > 0 ? atoi(optarg) : 1;
        else return 2;
    }
    if (!data_path || !tok_path) {
        fprintf(stderr, "usage: bench_text --data FILE --tokenizer FILE [--repeat N]\n");
        return 2;
    }
    double t0 = ls_now();
    ls_tokenizer *tok = ls_tokenizer_load(tok_path);
    if (!tok) return fail();
    double load_s = ls_now() - t0;

    ls_dataset ds;
    if (ls_dataset_read(data_path, &ds) != LS_OK) return fail();
    size_t n_values = (size_t)ds.systems * (size_t)ds.steps * LS_LV_VARS;
    ls_llmtime enc = {ls_llmtime_auto_alpha(ds.traj, n_values, 99.0, 10.0), 3};

    /* Best of `repeat` runs of each stage, the way timings are usually reported. */
    double encode_s = 1e30, tokenize_s = 1e30;
    size_t chars = 0, tokens = 0;
    char **texts = ls_calloc((size_t)ds.systems, sizeof(char *));
    size_t *lens = ls_calloc((size_t)ds.systems, sizeof(size_t));
    for (int r = 0; r < repeat; r++) {
        double t = ls_now();
        chars = 0;
        for (int s = 0; s < ds.systems; s++) {
            free(texts[s]);
            texts[s] = ls_llmtime_encode(&enc, ds.traj + (size_t)s * ds.steps * LS_LV_VARS, ds.steps,
                                         LS_LV_VARS, &lens[s]);
            chars += lens[s];
        }
        double e = ls_now() - t;
        if (e < encode_s) encode_s = e;

        t = ls_now();
        tokens = 0;
        ls_tokens ids = {0};
        for (int s = 0; s < ds.systems; s++) {
            ids.n = 0;
            if (ls_tokenizer_encode(tok, texts[s], lens[s], &ids) != LS_OK) return fail();
            tokens += ids.n;
        }
        ls_tokens_free(&ids);
        e = ls_now() - t;
        if (e < tokenize_s) tokenize_s = e;
    }
    printf("{\"systems\": %d, \"steps\": %d, \"alpha\": %.6g, \"chars\": %zu, \"tokens\": %zu,\n"
           " \"tokenizer_load_s\": %.4f, \"encode_s\": %.4f, \"tokenize_s\": %.4f,\n"
           " \"encode_plus_tokenize_s\": %.4f, \"tokens_per_s\": %.0f}\n",
           ds.systems, ds.steps, enc.alpha, chars, tokens, load_s, encode_s, tokenize_s,
           encode_s + tokenize_s, (double)tokens / tokenize_s);
    for (int s = 0; s < ds.systems; s++) free(texts[s]);
    free(texts);
    free(lens);
    ls_dataset_free(&ds);
    ls_tokenizer_free(tok);
    return 0;
}
