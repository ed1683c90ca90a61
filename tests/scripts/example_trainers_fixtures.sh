#!/usr/bin/env bash
# Trains the small full-parameter trainer (downsampled mixture: equal shares, though the files differ in size) on
# the real multilingual Alpaca samples in ../shared/fixtures and checks
# that validation loss falls in each language. Exits 77 (skipped) when the fixtures are absent.
# usage: example_trainers_fixtures.sh FULL_TRAINER TOKENIZER_JSON WORK_DIR
set -euo pipefail
full=$1 tokenizer=$2 work=$3
fixtures=${POLYALPACA_FIXTURES:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/fixtures}/alpaca-multilingual
if [ ! -d "$fixtures" ]; then
    echo "SKIPPED: $fixtures is absent (set POLYALPACA_FIXTURES to the shared fixtures folder)"
    exit 77
fi
rm -rf "$work"
"$full" --tokenizer "$tokenizer" --data "en=$fixtures/en.json" "fr=$fixtures/fr.json" "ru=$fixtures/ru.json" \
    --languages en fr ru --strategy downsampled --val-size 24 --global-batch 16 --micro-batch 8 --cutoff 96 --lr 3e-3 --warmup-steps 4 \
    --budget-records 960 --eval-every 10 --quiet --output-dir "$work" | tail -8
for lang in en fr ru; do
    first=$(grep -m1 '"type":"eval"' "$work/metrics.jsonl" | jq ".languages.$lang.loss")
    best=$(jq ".best_validation_loss_per_language.$lang" "$work/run_summary.json")
    awk -v f="$first" -v b="$best" 'BEGIN { exit !(b < 0.95 * f) }' || { echo "FAILED: $lang $first -> $best"; exit 1; }
    echo "$lang validation loss: $first -> $best"
done
echo "1 passed, 0 failed"
