#!/usr/bin/env bash
# The exact commands that made pretrained/ablations/aemg-nospatial-small-a, run from the repository root with the real data
# beside it in ../shared/data. Only the files that travel were copied into pretrained/ (not ckpt.pt,
# not the RNG files). Wall time on the 2-core development machine: 723 s (see pretrained/README.md).
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
DATA=../shared/data
C=${CORPORA:-/tmp/s5/corpora}  # where the corpora were prepared
RUN=${RUN_DIR:-/tmp/s7/runs/aemg-nospatial-small-a}
aemg prepare uci-gestures --root $DATA/uci-gestures --out $C/uci-gestures --no-progress
aemg tokenize $C/uci-gestures --no-progress
aemg prepare ciil --root $DATA/ciil --out $C/ciil --no-progress
aemg tokenize $C/ciil --no-progress
aemg prepare long-term-semg --root $DATA/long-term-semg --out $C/long-term-semg --no-progress
aemg tokenize $C/long-term-semg --no-progress
aemg pretrain --config pretrained/small-a/config.json --set encoder.position=index --set tokenizer.encoder.position=index --corpus $C/uci-gestures --corpus $C/ciil --corpus $C/long-term-semg --out $RUN --no-progress
# bench_key.txt: the key benchmarks/bench_loso.py computes for this run (the base run's config, the
# ablation's option, the corpora's hashes); bench_loso.ablation_run writes it when it pre-trains
mkdir -p pretrained/ablations/aemg-nospatial-small-a
cp $RUN/{config.json,encoder.pt,tokenizer.pt,summary.json,run.json,metrics.jsonl,code_usage.json,bench_key.txt} pretrained/ablations/aemg-nospatial-small-a/
