#!/usr/bin/env bash
# Packs what `npm run bench:gpu` needs into .device/ (git-ignored), for a GPU machine that has
# neither Node.js nor a network (the device tool's machines): this machine's node binary, the
# built dist/ and bench/torch_cuda.py, onnxruntime-node's Linux x64 binaries,
# ../shared/bench/torch_gptneox.py and Debian's Vulkan loader, compressed to fit the tool's
# 64 MiB. On that machine, with `.device` carried:
#   bash .device/run.sh [sizes...]   (default 160m; figures in $OUT/bench-gpu.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build >/dev/null
rm -rf .device
mkdir -p .device
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/app/node_modules" "$tmp/app/shared/bench" "$tmp/app/bench"
cp -r dist package.json "$tmp/app/"
cp -r node_modules/onnxruntime-common node_modules/onnxruntime-node "$tmp/app/node_modules/"
find "$tmp/app/node_modules/onnxruntime-node/bin" -mindepth 3 -maxdepth 3 -type d ! -path '*/linux/x64' -exec rm -rf {} +
cp ../shared/bench/torch_gptneox.py "$tmp/app/shared/bench/"
cp bench/torch_cuda.py "$tmp/app/bench/"
tar -C "$tmp" -cJf .device/app.tar.xz app
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
(cd .device && apt-get download libvulkan1 >/dev/null)
cp scripts/device-run.sh .device/run.sh
du -sh .device
