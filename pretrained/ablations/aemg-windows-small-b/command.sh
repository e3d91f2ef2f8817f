#!/usr/bin/env bash
# The exact commands that made pretrained/ablations/aemg-windows-small-b, run from the repository root with the real data
# beside it in ../shared/data. Only the files that travel were copied into pretrained/ (not ckpt.pt,
# not the RNG files). Wall time on the 2-core development machine: 741 s (see pretrained/README.md).
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
DATA=../shared/data
C=${CORPORA:-/tmp/s5/corpora}  # where the corpora were prepared
RUN=${RUN_DIR:-/tmp/s7/runs/aemg-windows-small-b}
aemg prepare 3dc --root $DATA/3dc --out $C/3dc --no-progress
aemg tokenize $C/3dc --no-progress
aemg prepare cote-allard --root $DATA/cote-allard --out $C/cote-allard --no-progress
aemg tokenize $C/cote-allard --no-progress
aemg pretrain --config pretrained/small-b/config.json --window-ms 200 --corpus $C/3dc --corpus $C/cote-allard --out $RUN --no-progress
# bench_key.txt: the key benchmarks/bench_loso.py computes for this run (the base run's config, the
# ablation's option, the corpora's hashes); bench_loso.ablation_run writes it when it pre-trains
mkdir -p pretrained/ablations/aemg-windows-small-b
cp $RUN/{config.json,encoder.pt,tokenizer.pt,summary.json,run.json,metrics.jsonl,code_usage.json,bench_key.txt} pretrained/ablations/aemg-windows-small-b/
