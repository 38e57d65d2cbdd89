#!/usr/bin/env bash
# ansible-test sanity on the jetson_rt.fleet collection as it ships: built with
# ansible-galaxy, installed into a temporary ansible_collections/ tree (the layout
# ansible-test requires), checked with the local Python (3.11 unless
# JETSON_RT_SANITY_PYTHON says otherwise), without containers. Deliberate findings are
# listed, each with its reason, in the collection's tests/sanity/ignore-<core>.txt.
# Usage: scripts/sanity.sh [ansible-test sanity options, e.g. --test validate-modules]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
python=${JETSON_RT_SANITY_PYTHON:-3.11}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ansible-galaxy collection build collections/ansible_collections/jetson_rt/fleet \
  --output-path "$work/build" >/dev/null
# (from $work: the repository's ansible.cfg would find the collection already installed)
(cd "$work" && ansible-galaxy collection install --force build/jetson_rt-fleet-*.tar.gz -p . >/dev/null)

# ansible-test bootstraps pip in each test's virtual environment with a script it
# downloads from outside the package index; give it one that uses the bundled pip.
pip_version=$(python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g
from ansible_test._internal.host_configs import NativePythonConfig as C
print(g(C(version="'"$python"'"))["pip"])')
bootstrap="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -e "$bootstrap" ]; then
  mkdir -p "$(dirname "$bootstrap")"
  cp scripts/ansible_test_get_pip.py "$bootstrap"
fi

cd "$work/ansible_collections/jetson_rt/fleet"
ansible-test sanity --python "$python" --color no "$@"
