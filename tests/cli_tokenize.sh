#!/usr/bin/env bash
# cli_tokenize.sh LORASWEEP SHARED_DIR: `lorasweep tokenize` end to end, and its errors.
source "$(dirname "$0")/cli_lib.sh"
TOK=$SHARED/qwen/tokenizer.json
need_shared "$TOK"

check "encode LLMTIME" "[16,13,24,15,15,11,17,13,15,23,16,26]" \
  "$(printf '1.900,2.081;' | "$LS" tokenize --tokenizer "$TOK")"
check "decode" "1.900,2.081;" "$(echo '[16,13,24,15,15,11,17,13,15,23,16,26]' | "$LS" tokenize --tokenizer "$TOK" --decode)"
check "jsonl encode" $'[9707,1879,0]\n[151644,872]' \
  "$(printf '"Hello world!"\n"<|im_start|>user"\n' | "$LS" tokenize --tokenizer "$TOK" --jsonl)"
check "jsonl decode" $'"Hello world!"\n"a\\nb"' \
  "$(printf '[9707,1879,0]\n[64,198,65]\n' | "$LS" tokenize --tokenizer "$TOK" --jsonl --decode)"
# Every golden case through the command line, as JSON lines.
/usr/bin/python3 - "$SHARED/golden/tokenizer_cases.json" "$T/cases.jsonl" "$T/ids.jsonl" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f, open(sys.argv[3], "w") as g:
    for c in cases:
        if c["text"] == "": continue  # a blank line is skipped by --jsonl
        f.write(json.dumps(c["text"]) + "\n"); g.write(json.dumps(c["ids"]).replace(" ", "") + "\n")
PY
"$LS" tokenize --tokenizer "$TOK" --jsonl <"$T/cases.jsonl" >"$T/got.jsonl"
check "golden cases via --jsonl" "same" "$(cmp -s "$T/got.jsonl" "$T/ids.jsonl" && echo same || echo differ)"
check "--help" "0" "$("$LS" tokenize --help >/dev/null; echo $?)"

INPUT="x" expect_error "missing --tokenizer" tokenize
INPUT="x" expect_error "missing tokenizer file" tokenize --tokenizer "$T/none.json"
echo '{"model": {"type": "BPE"' >"$T/broken.json"
INPUT="x" expect_error "broken tokenizer.json" tokenize --tokenizer "$T/broken.json"
echo '{"model": {"type": "Unigram"}}' >"$T/unigram.json"
INPUT="x" expect_error "unsupported model" tokenize --tokenizer "$T/unigram.json"
INPUT="x" expect_error "unknown option" tokenize --tokenizer "$TOK" --frobnicate
INPUT=$'\xff\xfe' expect_error "invalid UTF-8" tokenize --tokenizer "$TOK"
INPUT="hello" expect_error "decode non-array" tokenize --tokenizer "$TOK" --decode
INPUT="[1,99999999]" expect_error "decode bad id" tokenize --tokenizer "$TOK" --decode
INPUT=$'42\n' expect_error "jsonl not a string" tokenize --tokenizer "$TOK" --jsonl
INPUT="x" expect_error "stray argument" tokenize --tokenizer "$TOK" extra
# Files that are not files: a device (once read until memory ran out) and a FIFO nobody writes
# (once a hang): refused at once; and more input than any text (256 MiB of zeros on stdin).
INPUT="x" EXPECT_RC=1 EXPECT_TIMEOUT=60 EXPECT_PATTERN="/dev/zero: not a regular file \(a character device\)" \
  expect_error "tokenizer /dev/zero" tokenize --tokenizer /dev/zero
mkfifo "$T/fifo.json"
INPUT="x" EXPECT_RC=1 EXPECT_TIMEOUT=60 EXPECT_PATTERN="fifo.json: not a regular file \(a FIFO\)" \
  expect_error "tokenizer is a FIFO" tokenize --tokenizer "$T/fifo.json"
head -c $((256 * 1024 * 1024 + 1)) /dev/zero | timeout 60 "$LS" tokenize --tokenizer "$TOK" >"$T/out" 2>"$T/err"
check "stdin beyond 256 MiB: exit 1, one line" "1 1 lorasweep: stdin: more than 268435456 bytes" \
  "$? $(wc -l <"$T/err") $(cat "$T/err")"

finish
