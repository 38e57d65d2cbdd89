#!/usr/bin/env bash
# The main job on the embedded default: a simulated fleet of Orin Nanos, then
# playbooks/site.yml against it over SSH. Idempotent: hosts already up are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
start=$(date +%s)
jetson-rt sim up --hosts "${JETSON_RT_SIM_HOSTS:-4}"
ansible-playbook playbooks/site.yml "$@"
# Results of every sim host, received on this machine over Zenoh (each runner connects
# to host.containers.internal:7447 and publishes on jetson-rt/<fleet>/<host>/det/result;
# the fleet is jrt): a few lines per host, then a summary per key.
expect=()
for host in $(jetson-rt sim status --json | python3 -c 'import json,sys; print(" ".join(h["host"] for h in json.load(sys.stdin)))'); do
  expect+=("--expect=jetson-rt/jrt/${host}/det/result")
done
jetson-rt listen --listen tcp/0.0.0.0:7447 --key 'jetson-rt/jrt/**' --per-key 3 --duration 60 "${expect[@]}"
echo "demo: fleet up and site.yml done in $(( $(date +%s) - start )) s"
