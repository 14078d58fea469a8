#!/usr/bin/env python3
"""Reference numbers from Hugging Face transformers + PEFT on the real Qwen2.5-0.5B shape.

Writes, under --out (default hf_ref/):
  model/            config.json + model.safetensors (bfloat16): random weights with a fixed seed,
                    in the layout `lorasweep` reads (ls_model_load); tied embeddings as in 0.5B.
  adapter/          adapter_config.json + adapter_model.safetensors (float32, PEFT tensor names):
                    LoRA rank 8, alpha 16, on q_proj and v_proj, A and B both random and non-zero
                    so that gradients reach both.
  tokens.bin        B*T int32 little-endian token ids (row-major (B, T)), random, fixed seed.
  grads.safetensors d loss / d every LoRA tensor, float32, under the adapter's tensor names.
  reference.json    loss, shapes, seeds, dtype, library versions, gradient norms.

The loss is the causal-LM loss: mean cross-entropy of predicting token t+1 from tokens
0..t over all B*(T-1) positions, no padding. The reference computes in float64 by default (the
bfloat16-rounded weights cast up), so it is the exact target an fp32 implementation is held to;
--dtype float32 gives PyTorch's fp32 numbers instead (TF32 is switched off either way).

Runs on the GPU machine (torch, transformers, peft; no network needed: the config comes from
the file given). tests/gpu/README.md says how, and how compare_hf checks lorasweep against it.
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
    p.add_argument("--config", default=default_cfg, help="a Qwen2 config.json (default: ../shared/qwen's 0.5B)")
    p.add_argument("--out", default="hf_ref", help="output directory")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--targets", default="q_proj,v_proj")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--layers", type=int, default=0, help="override num_hidden_layers (0: as the config) for a quick run")
    return p.parse_args()


def _cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def main():
    args = parse_args()
    import torch
    import transformers
    import peft
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    os.makedirs(os.path.join(args.out, "model"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "adapter"), exist_ok=True)

    with open(args.config) as f:
        cfg_dict = json.load(f)
    if args.layers > 0:
        cfg_dict["num_hidden_layers"] = args.layers
        cfg_dict["max_window_layers"] = min(cfg_dict.get("max_window_layers", args.layers), args.layers)
    config = Qwen2Config(**cfg_dict)
    # eager: the plain softmax(QK^T)V, no fused kernel's own rounding in the reference
    config._attn_implementation = "eager"

    # Random weights, as `lorasweep model init` draws them: N(0, 0.02^2) for matrices and the
    # q/k/v biases (random so they are exercised), RMSNorm weights 1. Rounded to bfloat16 once,
    # so that the file and the reference see exactly the same numbers.
    torch.manual_seed(args.seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, config.initializer_range)
        model.to(torch.bfloat16)
    model.save_pretrained(os.path.join(args.out, "model"), safe_serialization=True)
    # config.json as the real checkpoint writes it, not as this transformers version re-serialises
    # it (newer ones move rope_theta into rope_parameters, where lorasweep would not find it
    # and would fall back to 10000).
    with open(os.path.join(args.out, "model", "config.json"), "w") as f:
        json.dump(dict(cfg_dict, torch_dtype="bfloat16"), f, indent=2)
    model.to(dtype).to(args.device)
    model.eval()  # no dropout (Qwen2 has none at 0.0, but be explicit)

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    lcfg = peft.LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules=targets, lora_dropout=0.0,
                           bias="none", task_type="CAUSAL_LM")
    pm = peft.get_peft_model(model, lcfg)
    gen = torch.Generator().manual_seed(args.seed + 1)
    lora_params = {}
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" not in name:
                continue
            fan_in = p.shape[1]
            # A: PEFT's Kaiming-uniform bound 1/sqrt(in); B: small random instead of PEFT's zeros
            bound = 1.0 / fan_in ** 0.5 if "lora_A" in name else 0.01
            p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound)
            lora_params[name.replace(".default", "")] = p

    # The adapter, written by hand in PEFT's layout (names as PEFT saves them), so that the file
    # does not depend on this PEFT version's extra config keys.
    save_file({k: v.detach().to(torch.float32).cpu().contiguous() for k, v in lora_params.items()},
              os.path.join(args.out, "adapter", "adapter_model.safetensors"))
    with open(os.path.join(args.out, "adapter", "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": args.rank, "lora_alpha": args.alpha,
                   "lora_dropout": 0.0, "target_modules": targets, "bias": "none", "fan_in_fan_out": False,
                   "base_model_name_or_path": os.path.abspath(os.path.join(args.out, "model"))}, f, indent=2)

    tok_gen = torch.Generator().manual_seed(args.seed + 2)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.ctx), generator=tok_gen, dtype=torch.int64)
    ids.to(torch.int32).numpy().astype("<i4").tofile(os.path.join(args.out, "tokens.bin"))

    t0 = time.time()
    # The loss by hand rather than labels=: transformers' own causal-LM loss casts the logits to
    # float32, which would cut a float64 reference short. (Its eager attention still takes the
    # softmax in float32: that part of the reference is fp32-accurate, ~1e-7.)
    dev_ids = ids.to(args.device)
    logits = pm(input_ids=dev_ids, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), dev_ids[:, 1:].reshape(-1))
    loss.backward()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.time() - t0

    grads = {k: p.grad.detach().to(torch.float32).cpu().contiguous() for k, p in lora_params.items()}
    missing = [k for k, g in grads.items() if g is None or not torch.isfinite(g).all()]
    if missing:
        sys.exit(f"hf_reference: no finite gradient for {missing[:3]}")
    save_file(grads, os.path.join(args.out, "grads.safetensors"))
    ref = {
        "loss": float(loss.item()),
        "n_targets": args.batch * (args.ctx - 1),
        "batch": args.batch,
        "ctx": args.ctx,
        "rank": args.rank,
        "alpha": args.alpha,
        "targets": targets,
        "seed": args.seed,
        "dtype": args.dtype,
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(),
        "layers": config.num_hidden_layers,
        "seconds_forward_backward": seconds,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "grad_norm_total": float(sum(float(g.double().pow(2).sum()) for g in grads.values()) ** 0.5),
        "grad_norms": {k: float(g.double().norm()) for k, g in grads.items()},
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print(json.dumps({k: ref[k] for k in ("loss", "n_targets", "dtype", "device", "layers", "grad_norm_total")}))


if __name__ == "__main__":
    main()
