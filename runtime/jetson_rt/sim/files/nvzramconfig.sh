#!/bin/sh
# zram swap as JetPack sets it up: one device per CPU.
for i in 0 1 2 3 4 5; do
  swapon /dev/zram$i
done
