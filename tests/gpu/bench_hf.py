#!/usr/bin/env python3
"""Training throughput of Hugging Face transformers + PEFT LoRA: the number lorasweep's CUDA
backend is to be compared with.

The setting of issue 5: Qwen2.5-0.5B shape (config from ../shared/qwen, random weights: speed
does not depend on their values), bfloat16 base weights, bf16 activations under autocast,
LoRA rank 8 on q_proj and v_proj with fp32 LoRA master weights (--lora-dtype bf16 to compare),
AdamW over the LoRA parameters, batch 4 x 512 tokens, random token ids.
For each attention implementation (eager, sdpa) it runs --warmup steps, then times --steps steps
(forward, loss, backward, optimiser step, zero_grad) with CUDA synchronised at both ends, and
reports tokens per second (B*T per step: every position is fed, B*(T-1) are targets) and the
peak GPU memory that torch allocated (torch.cuda.max_memory_allocated, reset per run).

Prints one JSON object per run and writes them all to --out (default bench_hf.json). Needs a GPU;
nothing here has been run yet (written on a machine without one).
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    default_cfg = os.path.join(here, "..", "..", "..", "shared", "qwen", "Qwen2.5-0.5B-Instruct.config.json")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=default_cfg)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--targets", default="q_proj,v_proj")
    p.add_argument("--attn", default="eager,sdpa", help="comma-separated attention implementations")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lora-dtype", choices=["fp32", "bf16"], default="fp32",
                   help="LoRA weights' dtype (fp32: master weights, as lorasweep keeps them)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_hf.json")
    return p.parse_args()


def run_one(args, attn, cfg_dict):
    import torch
    import peft
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(args.seed)
    config = Qwen2Config(**cfg_dict)
    config._attn_implementation = attn
    model = Qwen2ForCausalLM(config).to(device="cuda", dtype=torch.bfloat16)
    model.config.use_cache = False
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    lcfg = peft.LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=targets, lora_dropout=0.0,
                           bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lcfg)
    if args.lora_dtype == "fp32":
        for n, p in model.named_parameters():
            if p.requires_grad:
                p.data = p.data.float()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, fused=True)
    gen = torch.Generator(device="cuda").manual_seed(args.seed)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.ctx), device="cuda", generator=gen)

    def step():
        # bf16 activations with fp32 LoRA weights: autocast does the mixing, as a PEFT user would
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    result = {
        "attn": attn,
        "batch": args.batch,
        "ctx": args.ctx,
        "rank": args.rank,
        "targets": targets,
        "dtype": "bf16 base, bf16 autocast, LoRA " + args.lora_dtype,
        "steps": args.steps,
        "seconds": seconds,
        "tokens_per_s": args.batch * args.ctx * args.steps / seconds,
        "step_ms": 1000 * seconds / args.steps,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "final_loss": float(loss.item()),
        "trainable_params": sum(p.numel() for p in params),
    }
    del model, opt
    torch.cuda.empty_cache()
    return result


def main():
    args = parse_args()
    import torch
    import transformers
    import peft

    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device (torch.cuda.is_available() is False)")
        sys.exit(77)
    with open(args.config) as f:
        cfg_dict = json.load(f)
    env = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "transformers": transformers.__version__,
           "peft": peft.__version__, "cuda": torch.version.cuda}
    results = []
    for attn in [a.strip() for a in args.attn.split(",") if a.strip()]:
        try:
            r = run_one(args, attn, cfg_dict)
        except Exception as e:  # one implementation missing must not lose the other's number
            r = {"attn": attn, "error": f"{type(e).__name__}: {e}"}
        r.update(env)
        print(json.dumps(r))
        results.append(r)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
