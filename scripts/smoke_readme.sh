#!/usr/bin/env bash
# Runs every command shown in README.md, in order, on this machine (~15 min on 2 cores):
#   bash scripts/smoke_readme.sh
# `make test` is what CI runs; commands marked `# cluster:` in the README need GPUs and model weights, so
# here their config is only composed and validated (Hydra's --cfg job). tests/test_readme.py checks that
# this script keeps up with the README.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf runs/demo/analysis-flops runs/demo/analysis-seeds runs/toy-toy-solver-s4-v2 runs/toy-toy-solver-s16-v4 runs/toy-toy-solver-s2-v0 runs/toy-toy-solver-s4-v0 runs/demo-reimported runs/toy-study runs/toy-steps runs/processbench runs/demo-adaptive runs/bench/adaptive_saving

make demo
.venv/bin/python -m pipeline.run dataset.limit=20
.venv/bin/python -m pipeline.run dataset.limit=20 budget.solutions=16 budget.verifications=4
.venv/bin/python -m pipeline.run --multirun dataset.limit=10 budget.solutions=2,4 budget.verifications=0
.venv/bin/python -m analysis.run run_dir=runs/toy-toy-solver-s16-v4
.venv/bin/python -m pipeline.run dataset=math500 model@solver=llama31_8b_instruct model@verifier=llama31_8b_genrm_ft prompt=math_genrm_ft verification=genrm_ft budget=paper cluster=ray_cluster --cfg job > /dev/null
.venv/bin/python -m analysis.run run_dir=runs/demo
.venv/bin/python -m analysis.run run_dir=runs/demo out_dir=runs/demo/analysis-flops axis=flops
.venv/bin/python -m analysis.run run_dir=runs/demo out_dir=runs/demo/analysis-seeds vote_key=string ties=first_seen
.venv/bin/python -m analysis.inspect runs/demo --filter confident_wrong --html runs/demo/confident_wrong.html
.venv/bin/python -m analysis.export runs/demo
.venv/bin/python -m analysis.training_data runs/demo
.venv/bin/python -m analysis.adapters lm-eval runs/demo/export/samples_toy.jsonl runs/demo-reimported --grader toy
.venv/bin/python -m pipeline.run +experiment=demo run_id=demo-adaptive budget.verifications=0 adaptive=stop_when_agree
.venv/bin/python -m bench.adaptive_saving
.venv/bin/python -m pipeline.run dataset.limit=20 run_id=toy-study dry_run.enabled=true
.venv/bin/python -m pipeline.run dataset.limit=20 run_id=toy-study
.venv/bin/python -m pipeline.run dataset.limit=20 run_id=toy-study budget.solutions=8 'subset.problem_ids=[toy/test/L1/0003,toy/test/L1/0007]'
.venv/bin/python -m pipeline.run dataset.limit=20 run_id=toy-study verification=self_genrm
.venv/bin/python -m pipeline.rescore run_dir=runs/toy-study grader=gsm8k
.venv/bin/python -m pipeline.rescore run_dir=runs/toy-study verifier=toy-genrm parser_prompt=toy_genrm_v1
.venv/bin/python -m analysis.run run_dir=runs/toy-study
.venv/bin/python -m pipeline.run dataset.file=data/toy/toy_demo.jsonl budget.solutions=16 run_id=toy-steps verification=toy_self_prm
.venv/bin/python -m pipeline.run dataset.file=data/toy/toy_demo.jsonl budget.solutions=16 run_id=toy-steps verification=toy_prm
.venv/bin/python -m analysis.run run_dir=runs/toy-steps
.venv/bin/python -m analysis.processbench_run --data data/toy/toy_processbench_test.jsonl --out runs/processbench/toy-critic verification=toy_critic budget.verifications=1 budget.verifier.temperature=0
.venv/bin/python -m analysis.processbench_run --data data/toy/toy_processbench_test.jsonl --tune data/toy/toy_processbench_tune.jsonl --out runs/processbench/toy-prm verification=toy_prm
.venv/bin/python -m pipeline.run dataset=aime24 model@solver=qwq_32b prompt=math_genrm_base verification=self_prm budget=paper cluster=ray_cluster --cfg job > /dev/null
echo "all README commands ran"
