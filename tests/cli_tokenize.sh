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

finish
