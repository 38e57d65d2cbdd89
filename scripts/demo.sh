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
echo "demo: fleet up and site.yml done in $(( $(date +%s) - start )) s"
