/* cmd_tokenize.c: `lorasweep tokenize`: text -> ids as JSON, or ids -> text. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/tokenizer.h"

static const char usage[] =
    "usage: lorasweep tokenize --tokenizer FILE [--jsonl] [--decode]\n"
    "\n"
    "Reads standard input and writes standard output.\n"
    "  (default)   all of stdin is one text; prints its ids as a JSON array\n"
    "  --jsonl     each input line is a JSON string; each output line is its ids\n"
    "  --decode    the reverse: a JSON array of ids in (or, with --jsonl, one per line),\n"
    "              the text out (with --jsonl as JSON strings)\n"
    "No special tokens are added; special tokens written in the text are recognised.\n"
    "  --tokenizer FILE   a Hugging Face tokenizer.json (Qwen2.5's)\n";

/* All of stdin, at most LS_READ_FILE_MAX bytes (NULL and an error beyond, or out of memory:
 * `cat /dev/zero | lorasweep tokenize` ends in one line, not an abort). */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (n > LS_READ_FILE_MAX) {
            free(buf);
            ls_error("stdin: more than %zu bytes", LS_READ_FILE_MAX);
            return NULL;
        }
        if (n + 1 >= cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) free(buf);
            buf = more;
        }
    }
    if (!buf) {
        ls_error("stdin: out of memory after %zu bytes", n);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void print_ids(const ls_tokens *t) {
    putchar('[');
    for (size_t i = 0; i < t->n; i++) printf(i ? ",%d" : "%d", t->ids[i]);
    puts("]");
}

/* Parse a JSON array of ids into out; LS_ERR with a message otherwise. */
static int parse_ids(const char *json, ls_tokens *out) {
    cJSON *arr = cJSON_Parse(json);
    int rc = LS_OK;
    if (!cJSON_IsArray(arr)) rc = ls_error("expected a JSON array of token ids");
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (rc != LS_OK) break;
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble) {
            rc = ls_error("expected a JSON array of integer token ids");
            break;
        }
        if (out->n == out->cap) out->ids = ls_realloc(out->ids, (out->cap = out->cap * 2 + 64) * sizeof(int32_t));
        out->ids[out->n++] = (int32_t)it->valuedouble;
    }
    cJSON_Delete(arr);
    return rc;
}

static void print_json_string(const char *s) {
    cJSON *str = cJSON_CreateString(s);
    char *json = cJSON_PrintUnformatted(str);
    puts(json);
    free(json);
    cJSON_Delete(str);
}

/* One unit of work: `in` is raw text (encode) or a JSON array (decode). */
static int tokenize_one(const ls_tokenizer *tok, const char *in, size_t len, int decode, int jsonl) {
    ls_tokens t = {0};
    int rc;
    if (!decode) {
        rc = ls_tokenizer_encode(tok, in, len, &t);
        if (rc == LS_OK) print_ids(&t);
    } else {
        rc = parse_ids(in, &t);
        char *text = rc == LS_OK ? ls_tokenizer_decode(tok, t.ids, t.n, NULL) : NULL;
        if (text && jsonl) print_json_string(text);
        else if (text) fputs(text, stdout);
        if (!text) rc = LS_ERR;
        free(text);
    }
    ls_tokens_free(&t);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"jsonl", no_argument, 0, 'j'},
        {"decode", no_argument, 0, 'd'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL;
    int jsonl = 0, decode = 0, c;
    while ((c = getopt_long(argc, argv, ":t:jdh", opts, NULL)) != -1) {
        switch (c) {
        case 't': path = optarg; break;
        case 'j': jsonl = 1; break;
        case 'd': decode = 1; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("tokenize", argv);
        }
    }
    if (optind < argc) return cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!path) return cli_usage_error("tokenize", "--tokenizer FILE is required");
    ls_tokenizer *tok = ls_tokenizer_load(path);
    if (!tok) return cli_fail();

    size_t len;
    char *input = read_stdin(&len);
    if (!input) {
        ls_tokenizer_free(tok);
        return cli_fail();
    }
    int rc = LS_OK;
    if (!jsonl) {
        rc = tokenize_one(tok, input, len, decode, 0);
        if (rc != LS_OK) ls_error_prefix("stdin");
    } else {
        long line_no = 0;
        for (char *line = input, *end; rc == LS_OK && line < input + len; line = end + 1) {
            end = memchr(line, '\n', (size_t)(input + len - line));
            if (!end) end = input + len;
            *end = '\0';
            line_no++;
            if (line == end) continue; /* blank lines carry nothing */
            if (decode) {
                rc = tokenize_one(tok, line, (size_t)(end - line), 1, 1);
            } else {
                cJSON *str = cJSON_Parse(line);
                if (!cJSON_IsString(str)) rc = ls_error("expected a JSON string");
                else rc = tokenize_one(tok, str->valuestring, strlen(str->valuestring), 0, 1);
                cJSON_Delete(str);
            }
            if (rc != LS_OK) ls_error_prefix("stdin line %ld", line_no);
        }
    }
    free(input);
    ls_tokenizer_free(tok);
    return rc == LS_OK ? CLI_EXIT_OK : cli_fail();
}
