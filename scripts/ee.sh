#!/usr/bin/env bash
# The controller as an execution environment (execution-environment.yml), built and run
# here with podman and no container registry.
#
#   ./scripts/ee.sh build                      # base image, collection, wheel, ansible-builder
#   ./scripts/ee.sh run -i INVENTORY PLAYBOOK [ansible-playbook args]   # ansible-runner in the EE
#
# `build` makes localhost/jetson-rt-ee-base:bookworm with debootstrap from Debian's
# packages (cached; rebuilt when this script changes), then localhost/jetson-rt-ee:latest.
# ansible-builder lives in its own venv (.cache/ee/venv), not in the project's. Needs root
# (rootful podman, debootstrap). ansible-navigator would do what `run` does, but it
# refuses to start without /dev/mqueue, which the project's CI machines lack.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly BASE_TAG=localhost/jetson-rt-ee-base:bookworm
readonly EE_TAG=localhost/jetson-rt-ee:latest
readonly WORK=.cache/ee
readonly VENV="$WORK/venv"
readonly MIRROR=http://deb.debian.org/debian
readonly BASE_PACKAGES=python3,python3-pip,python3-venv,ca-certificates
readonly RECIPE="$(printf '%s %s' "$MIRROR" "$BASE_PACKAGES" | sha256sum | cut -c1-12)"

say() { printf 'ee: %s\n' "$*" >&2; }

# What `podman run` needs on machines with low hard limits or hybrid cgroups (the same
# work-arounds `jetson-rt sim up` detects; a cgroup-v2 workstation needs none).
run_quirks=()
for spec in "nofile $(ulimit -Hn)" "nproc $(ulimit -Hu)"; do
  read -r name hard <<<"$spec"
  if [ "$hard" != unlimited ] && [ "$hard" -lt 1048576 ]; then
    value=$(( hard < 32768 ? hard : 32768 ))
    run_quirks+=("--ulimit=$name=$value:$value")
  fi
done
if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && command -v runc >/dev/null; then
  run_quirks+=(--runtime=runc)
fi

tools() {
  if [ ! -x "$VENV/bin/ansible-builder" ]; then
    say "ansible-builder into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'ansible-builder>=3.1,<4' 'ansible-core>=2.17,<2.20'
  fi
}

base() {
  if podman image exists "$BASE_TAG" \
    && [ "$(podman image inspect "$BASE_TAG" --format '{{ index .Labels "io.jetson-rt.ee.recipe" }}' 2>/dev/null)" = "$RECIPE" ]; then
    return
  fi
  command -v debootstrap >/dev/null || { say "install debootstrap (apt-get install debootstrap)"; exit 2; }
  local root="$WORK/rootfs"
  rm -rf "$root"
  mkdir -p "$root"
  say "debootstrap bookworm for $BASE_TAG (about a minute)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | podman import \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL io.jetson-rt.ee.recipe=$RECIPE" \
    - "$BASE_TAG" >/dev/null
  rm -rf "$root"
}

build() {
  tools
  base
  rm -rf "$WORK/dist"
  mkdir -p "$WORK/dist"
  say "collection tarball and jetson-rt wheel into $WORK/dist"
  "$VENV/bin/ansible-galaxy" collection build --force --output-path "$WORK/dist" \
    collections/ansible_collections/jetson_rt/fleet >/dev/null
  "$VENV/bin/pip" wheel -q --no-deps --wheel-dir "$WORK/dist" . >/dev/null
  local pyver
  pyver="$(podman run --rm "${run_quirks[@]}" "$BASE_TAG" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  grep -v '^jetson-rt @' ee/requirements.txt | grep -v '^#' > "$WORK/requirements-index.txt"
  # dumb-init: the EE's entrypoint (ansible-builder pins this version)
  "$VENV/bin/pip" download -q --only-binary=:all: --python-version "$pyver" \
    --platform "manylinux2014_$(uname -m)" --platform "manylinux_2_28_$(uname -m)" \
    --platform "manylinux_2_34_$(uname -m)" --implementation cp --dest "$WORK/dist/wheels" \
    'ansible-core>=2.17,<2.20' 'ansible-runner>=2.4,<3' bindep pyyaml requirements-parser \
    'dumb-init==1.2.5' \
    -r "$WORK/requirements-index.txt" "$WORK"/dist/jetson_rt-*.whl
  say "ansible-builder build $EE_TAG"
  "$VENV/bin/ansible-builder" build --container-runtime podman --file execution-environment.yml \
    --context "$WORK/context" --tag "$EE_TAG" "$@"
}

run() {
  # AWX runs a job as `ansible-runner` inside the EE with the project checked out and the
  # inventory and credentials handed in; this does the same with podman. The repository is
  # the project (read-only, at its own path, so the inventory's absolute paths hold), the
  # inventory's folder is mounted at its own path (its SSH key and known_hosts), and so is
  # the folder of every other absolute path given. Root in the EE reads the key (0600).
  # Host networking reaches the simulated hosts' SSH on the machine's loopback addresses.
  if [ "${1:-}" != -i ] || [ $# -lt 3 ]; then
    echo "usage: $0 run -i INVENTORY PLAYBOOK [ansible-playbook args]" >&2
    exit 2
  fi
  local inventory playbook arg repo
  inventory="$(realpath "$2")"
  playbook="$3"
  shift 3
  repo="$(pwd)"
  local mounts=(-v "$repo:$repo:ro" -v "$(dirname "$inventory"):$(dirname "$inventory")")
  for arg in "$@"; do
    if [ "${arg#/}" != "$arg" ] && [ -d "$arg" ]; then
      mounts+=(-v "$arg:$arg")
    fi
  done
  private="$(mktemp -d "${TMPDIR:-/tmp}/jetson-rt-ee-XXXXXX")"
  trap 'rm -rf "$private"' EXIT
  local cmdline=""
  for arg in "$@"; do cmdline+=" $(printf '%q' "$arg")"; done
  podman run --rm --network host --user root "${run_quirks[@]}" "${mounts[@]}" \
    -v "$private:/runner" -w "$repo" \
    -e ANSIBLE_CONFIG="$repo/ansible.cfg" -e ANSIBLE_NOCOLOR=1 \
    -e ANSIBLE_CACHE_PLUGIN_CONNECTION=/runner/facts \
    "$EE_TAG" ansible-runner run /runner --project-dir "$repo" --inventory "$inventory" \
    -p "$playbook" ${cmdline:+--cmdline "$cmdline"}
}

case "${1:-}" in
  build) shift; build "$@" ;;
  base) base ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 build|base|run ..." >&2; exit 2 ;;
esac
