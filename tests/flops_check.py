"""flops_check.py LORASWEEP GRID_DIR SOURCE...: the FLOPS finished trials recorded against the
estimate the budget uses (`lorasweep sweep plan --json` of a one-trial grid made of each trial's
resolved config, written into GRID_DIR so that its relative paths resolve as the trial's did).

SOURCE is a results file (its done trials; each one's metrics.json is read from RESULTS.trials/ID/)
or a trial's output directory (metrics.json, config.yaml). Per trial:
  - training and validation FLOPS agree to 1e-9 (1e-5 from metrics.json's 6 digits; both exact: the steps, the passes, and the
    validation windows of the data set the trial names, split and encoded as it was);
  - the forecast's prompt tokens are the trial's own; its sampled tokens are estimated at the most
    a sample can write, never fewer than it wrote; `lorasweep flops` at the length the samples
    wrote gives the record, and at the estimate's length the estimate;
  - so the total estimate is the record plus the FLOPS of the tokens the samples did not write
    (to 1e-9): never below it, and above it by that allowance alone, printed for every trial.
Exits 1 at the first disagreement.
"""
import json
import os
import subprocess
import sys


def recorded_trials(source):
    if source.endswith(".h5"):
        import h5py
        with h5py.File(source, "r") as f:
            t = f["trials"]
            for i in range(len(t["id"])):
                if t["status"][i] != 2:  # done
                    continue
                tid = t["id"][i].decode()
                metrics = json.load(open(os.path.join(source[:-3] + ".trials", tid, "metrics.json")))
                flops = {k: float(t["flops_" + k][i]) for k in ("train", "validation", "forecast", "total")}
                for k, v in flops.items():  # the file and the trial's own record (6 digits) agree
                    if abs(v - metrics["flops"][k]) > 1e-5 * abs(v):
                        sys.exit("FAIL %s: results file %s, metrics.json %s" % (tid, flops, metrics["flops"]))
                metrics["flops"] = flops  # all the digits
                yield tid, t["config"][i].decode(), metrics
    else:
        m = json.load(open(os.path.join(source, "metrics.json")))  # 6 significant digits
        yield m["trial_id"], open(os.path.join(source, "config.yaml")).read(), m


def estimate(ls, grid_dir, config):
    grid = os.path.join(grid_dir, "flops-check.yaml")
    with open(grid, "w") as f:
        f.write("name: flops-check\nbase:\n" + "".join("  " + l + "\n" for l in config.splitlines()) + "grid: {}\n")
    out = subprocess.run([ls, "sweep", "plan", grid, "--json"], check=True, capture_output=True, text=True).stdout
    os.remove(grid)
    plan = json.loads(out)
    if "data_not_read" in plan:
        sys.exit("FAIL the plan did not read the data: " + plan["data_not_read"])
    trial = plan["stages"][0]["trials"][0]
    return dict(trial["flops_parts"], total=trial["flops"])


def keys(config):
    """section.key -> value text of the canonical YAML the program writes (two levels)."""
    out, section = {}, ""
    for line in config.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(":")
        if not line.startswith(" "):
            section = key
        else:
            out[section + "." + key] = value.strip().strip('"')
    return out


def generate_flops(ls, grid_dir, k, samples, systems, prompt, new):
    """`lorasweep flops` of the forecast: systems x samples, prompt and new tokens per sample."""
    model = os.path.join(grid_dir, k["model.path"])
    args = [ls, "flops", "--model", model, "--ctx", k["train.ctx"], "--rank", k["lora.rank"], "--batch", "1",
            "--steps", "0", "--targets", k["lora.targets"].strip("[]").replace(" ", ""),
            "--eval-systems", str(systems), "--eval-samples", str(samples),
            "--eval-prompt-tokens", str(prompt), "--eval-new-tokens", str(new)]
    if k["lora.head_bias"] != "true":
        args.append("--no-head-bias")
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)["generate"]


def main():
    ls, grid_dir, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
    n, worst = 0, 0.0
    for source in sources:
        for tid, config, m in recorded_trials(source):
            rec, est = m["flops"], estimate(ls, grid_dir, config)
            tol = 1e-9 if source.endswith(".h5") else 1e-5  # metrics.json prints 6 digits
            rel = (est["total"] - rec["total"]) / rec["total"]
            allowance = est["forecast"] - rec["forecast"]
            print("%s: recorded %.6g, estimated %.6g (%+.3f %%, of which the forecast's unsampled allowance %.3f %%)" %
                  (tid, rec["total"], est["total"], 100 * rel, 100 * allowance / rec["total"]))
            for part in ("train", "validation"):
                if abs(est[part] - rec[part]) > tol * max(rec[part], 1.0):
                    sys.exit("FAIL %s: %s estimated %.9g, recorded %.9g" % (tid, part, est[part], rec[part]))
            fc = m.get("forecast")
            if fc:
                S, K = fc["systems"], fc["samples"]
                if est["prompt_tokens"] != fc["prompt_tokens"] // S:
                    sys.exit("FAIL %s: prompt estimated at %d tokens, the trial's were %d" %
                             (tid, est["prompt_tokens"], fc["prompt_tokens"] // S))
                wrote = fc["generated_tokens"] // (S * K)
                if wrote > est["new_tokens_max"]:
                    sys.exit("FAIL %s: samples wrote %d tokens each, more than the estimate's %d" %
                             (tid, wrote, est["new_tokens_max"]))
                # the same count at the length the samples wrote is the record; at the estimate's
                # length it is the estimate: the only difference is the tokens not written
                k = keys(config)
                at_wrote = generate_flops(ls, grid_dir, k, K, S, est["prompt_tokens"], wrote)
                at_max = generate_flops(ls, grid_dir, k, K, S, est["prompt_tokens"], est["new_tokens_max"])
                if abs(at_wrote - rec["forecast"]) > tol * rec["forecast"] or abs(at_max - est["forecast"]) > 1e-9 * at_max:
                    sys.exit("FAIL %s: forecast recorded %.9g (%.9g at %d tokens), estimated %.9g (%.9g at %d)" %
                             (tid, rec["forecast"], at_wrote, wrote, est["forecast"], at_max, est["new_tokens_max"]))
            elif est["forecast"] != rec["forecast"]:
                sys.exit("FAIL %s: no forecast recorded, %.9g estimated" % (tid, est["forecast"]))
            if abs(est["total"] - allowance - rec["total"]) > tol * rec["total"]:
                sys.exit("FAIL %s: total estimated %.9g, recorded %.9g" % (tid, est["total"], rec["total"]))
            worst = max(worst, abs(rel))
            n += 1
    if n == 0:
        sys.exit("FAIL no finished trial in " + " ".join(sources))
    print("%d trials: the estimate is the record plus the tokens the samples did not write; "
          "the total at most %.2f %% above the record" % (n, 100 * worst))


main()
