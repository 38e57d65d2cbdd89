#!/bin/sh
# Reproduces JetPack's /etc/systemd/nvzramconfig.sh (nvidia-l4t-init, L4T R36):
# one zram swap device per CPU at boot, which rt_tuning turns off.
# zram swap as JetPack sets it up: one device per CPU.
for i in 0 1 2 3 4 5; do
  swapon /dev/zram$i
done
