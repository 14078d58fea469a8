#!/usr/bin/env bash
# cli_golden.sh LORASWEEP SHARED_DIR: score, gradients and greedy generation of the tiny Qwen2
# checkpoint against ../shared/golden/qwen2-tiny (float64 references from an independent
# implementation), to the tolerances of golden/README.md; and the commands' errors.
source "$(dirname "$0")/cli_lib.sh"
G=$SHARED/golden/qwen2-tiny
need_shared "$G/model.safetensors"
# close NAME GOT_JSON EXPECTED_JSON KEY RELTOL
close() {
  if $PY -c "import json,sys; g=json.loads(sys.argv[1]); e=json.load(open(sys.argv[2]))
assert g['tokens']==e['tokens'], (g, e)
r=abs(g['loss']-e['loss'])/abs(e['loss']); print('relative error %.2e' % r); sys.exit(0 if r < float(sys.argv[3]) else 1)" \
      "$2" "$3" "$4"; then ok "$1"; else bad "$1"; fi
}

close "score base" "$("$LS" score --model "$G" --text "$G/text.txt")" "$G/expected_score_base.json" 1e-5
close "score adapter" "$("$LS" score --model "$G" --adapter "$G/adapter" --text "$G/text.txt" --grad-out "$T/g.safetensors")" \
  "$G/expected_score_adapter.json" 1e-5
if $PY - "$T/g.safetensors" "$G/expected_grads.safetensors" <<'PY'
import json, struct, sys
import numpy as np
def load(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
got, exp = load(sys.argv[1]), load(sys.argv[2])
assert got.keys() == exp.keys(), (sorted(got), sorted(exp))
worst = 0
for k in exp:
    norm = abs(np.linalg.norm(got[k]) / np.linalg.norm(exp[k]) - 1)
    diff = np.abs(got[k] - exp[k]).max() / np.abs(exp[k]).max()
    worst = max(worst, norm, diff)
print("worst relative gradient error %.2e over %d tensors" % (worst, len(exp)))
sys.exit(0 if worst < 1e-4 else 1)
PY
then ok "gradients"; else bad "gradients"; fi
got=$("$LS" generate --model "$G" --adapter "$G/adapter" --prompt "1.900,2.081;1.481,1.559;" --max-new-tokens 12 --greedy --ids)
if $PY -c "import json,sys; g=json.loads(sys.argv[1])['ids']; e=json.load(open(sys.argv[2]))
# where the reference's top-2 margin is tiny, float32 may pick the other: compare up to there
for i,(a,b,m) in enumerate(zip(g,e['ids'],e['margins'])):
    if m < 1e-3: break
    assert a==b, (i,a,b)
assert len(g)==len(e['ids'])" "$got" "$G/expected_greedy_adapter.json"; then ok "greedy ids"; else bad "greedy ids: $got"; fi
# Sampling under the LLMTIME grammar always parses: 3 steps of 2 numbers with 3 decimals.
out=$("$LS" generate --model "$G" --prompt "1.900,2.081;" --max-new-tokens 36 --llmtime-grammar 2,3 --seed 5)
if [[ "$out" =~ ^([0-9]{1,4}\.[0-9]{3},[0-9]{1,4}\.[0-9]{3}\;)+[0-9.,]*$ ]]; then ok "grammar: $out"; else bad "grammar: $out"; fi
# Same seed, same text; another seed, (almost surely) another.
a=$("$LS" generate --model "$G" --prompt "1.9" --max-new-tokens 8 --seed 1 --ids)
b=$("$LS" generate --model "$G" --prompt "1.9" --max-new-tokens 8 --seed 1 --ids)
c=$("$LS" generate --model "$G" --prompt "1.9" --max-new-tokens 8 --seed 2 --ids)
if [ "$a" = "$b" ] && [ "$a" != "$c" ]; then ok "seeded sampling repeats"; else bad "seeded sampling: $a / $b / $c"; fi

echo "1.0,2.0;" >"$T/t.txt"
expect_error "score without --text" score --model "$G"
expect_error "score missing model" score --model "$T/none" --text "$T/t.txt" --tokenizer "$G/tokenizer.json"
expect_error "score missing text" score --model "$G" --text "$T/none.txt"
expect_error "score grad without adapter" score --model "$G" --text "$T/t.txt" --grad-out "$T/x"
expect_error "score bad adapter dir" score --model "$G" --adapter "$T" --text "$T/t.txt"
printf '1\n' >"$T/one.txt"
expect_error "score nothing to score" score --model "$G" --text "$T/one.txt"
expect_error "generate no prompt" generate --model "$G" --max-new-tokens 3
expect_error "generate bad top-p" generate --model "$G" --prompt x --max-new-tokens 3 --top-p 2
expect_error "generate bad grammar" generate --model "$G" --prompt x --max-new-tokens 3 --llmtime-grammar 2
expect_error "generate too long" generate --model "$G" --prompt x --max-new-tokens 40000
expect_error "generate unknown option" generate --model "$G" --prompt x --max-new-tokens 3 --beam 4
# greedy decoding ignores the sampling options: refused, whichever order they come in
for opt in "--temperature 0.5" "--top-p 0.9" "--top-k 5"; do
  EXPECT_RC=2 EXPECT_PATTERN="--greedy takes the most likely token, so ${opt% *} \(a sampling option\) would do nothing" \
    expect_error "generate --greedy $opt" generate --model "$G" --prompt x --max-new-tokens 3 --greedy $opt
done
EXPECT_RC=2 expect_error "generate --top-k before --greedy" generate --model "$G" --prompt x --max-new-tokens 3 --top-k 5 --greedy

finish
