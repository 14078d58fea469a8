#!/usr/bin/env python3
"""bench_torch.py: the PyTorch side of the CPU comparison (docs/performance.md).

The same training step as `lorasweep bench`, in PyTorch eager, fp32, on the CPU: a Qwen2 model of
the given shape with random weights (frozen), LoRA adapters of rank R (alpha 2R, no dropout) on
q_proj and v_proj as PEFT places them, a trainable bias on the tied output head, the causal LM
loss over random tokens, backward, AdamW. The model is written here the way Hugging Face's
transformers writes Qwen2 with attn_implementation="eager" (RMSNorm in float32, RoPE cos/sin per
forward, repeat_kv, the full T x T scores with an additive causal mask, softmax in float32, the
logits cast to float32 before the loss) and the LoRA branch the way PEFT's lora.Linear computes it
(base(x) + B(A(x)) * scale): Debian's python3-torch has no transformers or peft, and this keeps
the comparison to one file that needs nothing else.

Prints one JSON object: tokens_per_s, step_seconds, forward_seconds (with the loss),
backward_seconds, optimizer_seconds, threads, torch version.

Run with Debian's interpreter (/usr/bin/python3): python3-torch installs there.
"""
import argparse
import json
import math
import os
import sys
import time


def build(torch, cfg, rank, targets, head_bias):
    nn = torch.nn
    F = torch.nn.functional
    C, FF, NH, KVH = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = C // NH
    eps, theta, V = cfg["rms_norm_eps"], cfg["rope_theta"], cfg["vocab_size"]

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(C))

        def forward(self, x):
            dtype = x.dtype
            x = x.to(torch.float32)
            var = x.pow(2).mean(-1, keepdim=True)
            x = x * torch.rsqrt(var + eps)
            return self.weight * x.to(dtype)

    class LoraLinear(nn.Module):
        """PEFT's lora.Linear: base(x) + lora_B(lora_A(dropout(x))) * scaling, dropout 0."""

        def __init__(self, base, r):
            super().__init__()
            self.base_layer = base
            self.lora_A = nn.Linear(base.in_features, r, bias=False)
            self.lora_B = nn.Linear(r, base.out_features, bias=False)
            self.scaling = (2.0 * r) / r
            nn.init.normal_(self.lora_B.weight, std=0.01)  # B = 0 would be a different computation's zeros

        def forward(self, x):
            return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = nn.Linear(C, NH * hd, bias=True)
            self.k_proj = nn.Linear(C, KVH * hd, bias=True)
            self.v_proj = nn.Linear(C, KVH * hd, bias=True)
            self.o_proj = nn.Linear(NH * hd, C, bias=False)

        def forward(self, x, cos, sin, mask):
            B, T, _ = x.shape
            q = self.q_proj(x).view(B, T, NH, hd).transpose(1, 2)
            k = self.k_proj(x).view(B, T, KVH, hd).transpose(1, 2)
            v = self.v_proj(x).view(B, T, KVH, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = NH // KVH  # repeat_kv
            k = k[:, :, None].expand(B, KVH, rep, T, hd).reshape(B, NH, T, hd)
            v = v[:, :, None].expand(B, KVH, rep, T, hd).reshape(B, NH, T, hd)
            w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd)
            w = w + mask
            w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
            o = torch.matmul(w, v).transpose(1, 2).reshape(B, T, NH * hd)
            return self.o_proj(o)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj = nn.Linear(C, FF, bias=False)
            self.up_proj = nn.Linear(C, FF, bias=False)
            self.down_proj = nn.Linear(FF, C, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm()
            self.self_attn = Attention()
            self.post_attention_layernorm = RMSNorm()
            self.mlp = MLP()

        def forward(self, x, cos, sin, mask):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(V, C)
            self.layers = nn.ModuleList([Layer() for _ in range(cfg["num_hidden_layers"])])
            self.norm = RMSNorm()
            self.head_bias = nn.Parameter(torch.zeros(V)) if head_bias else None
            inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
            self.register_buffer("inv_freq", inv_freq, persistent=False)

        def forward(self, ids, labels):
            B, T = ids.shape
            x = self.embed_tokens(ids)
            pos = torch.arange(T)[None].expand(B, T).float()
            freqs = (self.inv_freq[None, :, None].expand(B, -1, 1) @ pos[:, None, :]).transpose(1, 2)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos()[:, None], emb.sin()[:, None]
            mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)[None, None]
            for layer in self.layers:
                x = layer(x, cos, sin, mask)
            x = self.norm(x)
            logits = F.linear(x, self.embed_tokens.weight, self.head_bias).float()  # tied head
            return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))

    torch.manual_seed(1)
    model = Model()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.uniform_(-0.02, 0.02)
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for name in targets:
            setattr(layer.self_attn, name, LoraLinear(getattr(layer.self_attn, name), rank))
    if model.head_bias is not None:
        model.head_bias.requires_grad_(True)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--config", default=os.path.join(here, "..", "..", "shared", "qwen", "Qwen2.5-0.5B-Instruct.config.json"))
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--no-head-bias", action="store_true")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        cfg = json.load(f)
    model = build(torch, cfg, args.rank, args.targets.split(","), not args.no_head_bias)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(11, 27, (args.batch, args.ctx), generator=gen)  # digits and separators, as lorasweep bench
    t_fwd = t_bwd = t_opt = 0.0
    for s in range(args.steps + 1):  # step 0 warms up
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(ids, ids)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if not math.isfinite(loss.item()):
            sys.exit("bench_torch: the loss is not finite")
        if s > 0:
            t_fwd, t_bwd, t_opt = t_fwd + t1 - t0, t_bwd + t2 - t1, t_opt + t3 - t2
    step = (t_fwd + t_bwd + t_opt) / args.steps
    print(json.dumps({
        "impl": "pytorch-eager-fp32", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "batch": args.batch, "ctx": args.ctx, "rank": args.rank, "steps": args.steps,
        "tokens_per_s": round(args.batch * args.ctx / step, 1), "step_seconds": round(step, 4),
        "forward_seconds": round(t_fwd / args.steps, 4), "backward_seconds": round(t_bwd / args.steps, 4),
        "optimizer_seconds": round(t_opt / args.steps, 5),
    }))


if __name__ == "__main__":
    main()
