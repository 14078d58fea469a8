/*
 * tokenizer.h: byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2's).
 *
 * Encoding follows the Hugging Face pipeline: added/special tokens are found in the raw text
 * first; the text between them is NFC-normalised (utf8proc), split by the pre-tokenizer's own
 * regex (PCRE2, the pattern taken from tokenizer.json), mapped byte -> printable character
 * (GPT-2's byte-level table) and merged by BPE rank. Decoding inverts the byte mapping.
 * No special tokens are added around the text.
 */
#ifndef LORASWEEP_TOKENIZER_H
#define LORASWEEP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ls_tokenizer ls_tokenizer;

/* Load tokenizer.json. NULL on failure, with an error naming the file and what is wrong. */
ls_tokenizer *ls_tokenizer_load(const char *path);
/* The same from the file's text in memory; `name` is used in error messages. */
ls_tokenizer *ls_tokenizer_parse(const char *json, size_t len, const char *name);
void ls_tokenizer_free(ls_tokenizer *tok);

/* Number of ids (the vocabulary and the added tokens): every id is < this. */
int ls_tokenizer_n_ids(const ls_tokenizer *tok);
/* The id of a token's exact string (e.g. "<|endoftext|>", ","), or -1. */
int32_t ls_tokenizer_token_id(const ls_tokenizer *tok, const char *token);

/* A growable list of token ids. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} ls_tokens;
void ls_tokens_free(ls_tokens *t);

/* Append the ids of text[0..len) to out. Text must be UTF-8; invalid UTF-8 is an error. */
int ls_tokenizer_encode(const ls_tokenizer *tok, const char *text, size_t len, ls_tokens *out);
/* Decode ids to a malloc'ed NUL-terminated UTF-8 string (length in *len). An id out of range
 * is an error (NULL). */
char *ls_tokenizer_decode(const ls_tokenizer *tok, const int32_t *ids, size_t n, size_t *len);

#endif
