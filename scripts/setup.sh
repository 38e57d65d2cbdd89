#!/usr/bin/env bash
# Install everything jetson-rt's controller, simulated fleet and tests need on a
# Debian 12 / Ubuntu 22.04+ machine, as root. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  podman runc netavark aardvark-dns conmon slirp4netns iptables uidmap  # the simulated fleet
  debootstrap libfuse2 fuse3                                             # its image and kernel files
  openssh-client git rsync                                              # Ansible's transport
  python3 python3-venv python3-dev build-essential                      # the controller venv
  chromium rt-tests                                                     # report screenshots, cyclictest samples
  python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0   # the runner's
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-tools        # video input
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (the simulated fleet uses rootful podman)" >&2
  exit 1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${JETSON_RT_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependency declaration changed.
stamp=".venv/.jetson-rt-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[controller,dev,ort,metrics,publish]'
  # tensorrt-stubs declares a dependency on the TensorRT wheel, which is hosted
  # outside the package index: take the stubs alone.
  .venv/bin/pip install -q --no-deps 'tensorrt-stubs>=10.0,<11'
  rm -f .venv/.jetson-rt-*
  touch "$stamp"
fi
# GStreamer's Python bindings (PyGObject) come from Debian, as JetPack ships them on
# the targets: the venv sees Debian's `gi` package alone (not the rest of
# /usr/lib/python3/dist-packages) through a .pth file naming a folder that links it.
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p .venv/system-gi
ln -sfn /usr/lib/python3/dist-packages/gi .venv/system-gi/gi
echo "$PWD/.venv/system-gi" >"$site/jetson-rt-system-gi.pth"
if ! .venv/bin/python -c 'import gi' 2>/dev/null; then
  echo "setup.sh: Debian's python3-gi does not load in the venv's Python; GStreamer input tests will fail" >&2
fi
echo "setup.sh: ready ($(.venv/bin/ansible --version | head -1), $(podman --version))"
