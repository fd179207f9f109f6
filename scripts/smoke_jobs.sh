#!/usr/bin/env bash
# Smoke test of jobs/README.md: runs every command there that works on one machine, verbatim, against a
# local Ray head on 127.0.0.1 (tests/test_jobs_readme.py checks that each README command is in here).
# Needs the set-up repository with the shipped toy checkpoints (`make setup`); takes ~5-10 minutes.
#   bash scripts/smoke_jobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
. .venv/bin/activate

# --- Trying it on one machine ---
export RAY_AUTH_TOKEN="$(python -c 'import secrets; print(secrets.token_hex(16))')"
ray start --head --block --node-ip-address=127.0.0.1 --port=6390 --dashboard-host=127.0.0.1 --dashboard-port=8275 --dashboard-agent-listen-port=52375 --ray-client-server-port=23001 --num-cpus=4 --disable-usage-stats > /tmp/ray-head.log 2>&1 &
RAY_HEAD_PID=$!
trap 'kill "$RAY_HEAD_PID" 2>/dev/null || true' EXIT
export RAY_ADDRESS=http://127.0.0.1:8275
until python -m jobs.submit list > /dev/null 2>&1; do kill -0 "$RAY_HEAD_PID"; sleep 2; done

# --- Submit, follow, stop ---
python -m jobs.submit submit --run-id smoke-run --analyze -- cluster=ray_cluster cluster.replica_num_gpus=0 dataset.limit=4 budget.solutions=4 budget.verifications=2
python -m jobs.submit status sv-smoke-run
python -m jobs.submit where sv-smoke-run
python -m jobs.submit logs sv-smoke-run
python -m jobs.submit submit --no-wait --run-id smoke-stop -- cluster=ray_cluster cluster.replica_num_gpus=0 dataset.limit=4
python -m jobs.submit stop sv-smoke-stop
python -m jobs.submit list

# --- Nightly benchmarks ---
python -m jobs.nightly --local --config-name nightly/tiny
python -m jobs.nightly --local --config-name nightly/tiny --date 2026-01-05 regression.k=4
python -m jobs.nightly --config-name nightly/tiny --date 2026-01-06 'pipeline_overrides=["cluster=ray_cluster","cluster.replica_num_gpus=0"]'

# --- Scheduling: the cron line's command and the CI steps ---
.venv/bin/python -m jobs.nightly --local --config-name nightly/tiny >> runs/nightly/cron.log 2>&1
make setup
.venv/bin/python -m jobs.nightly --local --config-name nightly/tiny

# --- Stopping the local head ---
kill "$RAY_HEAD_PID"
wait "$RAY_HEAD_PID" || true
trap - EXIT
echo "smoke_jobs: all README commands ran"
