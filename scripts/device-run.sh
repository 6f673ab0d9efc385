#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root with .device/ carried (scripts/device-bundle.sh):
# unpacks node and the app with Python (always there), brings Debian's Vulkan loader when the
# machine has none, points it at NVIDIA's driver, and runs bench:gpu; the output goes to
# $OUT/bench-gpu.txt when OUT is set.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=/tmp/pythia-device
mkdir -p "$dest"
python3 - "$here" "$dest" <<'PY'
import lzma, shutil, sys, tarfile
here, dest = sys.argv[1], sys.argv[2]
with lzma.open(f"{here}/node.xz") as src, open(f"{dest}/node", "wb") as out:
    shutil.copyfileobj(src, out)
with tarfile.open(f"{here}/app.tar.xz") as tar:
    tar.extractall(dest)
PY
chmod +x "$dest/node"
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$here"/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -e "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
cd "$dest/app"
PYTHIA_SHARED="$dest/app/shared" PYTHIA_BENCH_PYTHON="${PYTHIA_BENCH_PYTHON:-python3}" "$dest/node" dist/bench/gpu.js "${@:-160m}" 2>&1 | tee "${OUT:-/tmp}/bench-gpu.txt"
