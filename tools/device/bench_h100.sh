#!/usr/bin/env bash
# Benchmark on the lent GPU machine (Python 3.12 with torch, no ROS, no ultralytics, no network).
# Carried (ignored) folders: .whl/ros (ROS 2 Jazzy runtime wheels, cp312), .whl/ml (ultralytics and
# the few of its requirements the machine may lack), .devdata (weights, coco128, and the
# vision_msgs-compatible interfaces built here with Python 3.12): tools/device/prepare_carry.sh.
# Usage there: OUT=<folder> tools/device/bench_h100.sh [extra benchmark args]
set -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/bench_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 YOLO_CONFIG_DIR=/tmp/yolo_cfg
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  | tee "$OUT/gpu.txt"
BASE=$(python3 -c 'import sys; print(sys.base_prefix)')
SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])')
V=/tmp/v
"$BASE/bin/python3" -m venv "$V" || exit 1
PYV=$("$V/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
echo "$SITE" > "$V/lib/python$PYV/site-packages/device_torch.pth"
"$V/bin/python" -m pip install -q --no-index --no-deps --no-compile .whl/ros/*.whl || exit 1
for pair in ultralytics:ultralytics thop:ultralytics_thop tqdm:tqdm psutil:psutil yaml:pyyaml \
    requests:requests; do
  mod=${pair%%:*}; whl=${pair#*:}
  "$V/bin/python" -c "import $mod" 2>/dev/null || \
    "$V/bin/python" -m pip install -q --no-index --no-deps --no-compile .whl/ml/${whl}-*.whl
done
IFACE=$PWD/.devdata/interfaces/vision_msgs
export PYTHONPATH=$PWD:$IFACE/lib/python$PYV/site-packages${PYTHONPATH:+:$PYTHONPATH}
export LD_LIBRARY_PATH=$IFACE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export AMENT_PREFIX_PATH=$IFACE${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
"$V/bin/python" -c 'import torch, torchvision, onnxruntime, cv2, ultralytics, rclpy, vision_msgs.msg
print("torch", torch.__version__, "tv", torchvision.__version__, "ort", onnxruntime.__version__,
      "cv2", cv2.__version__, "ultralytics", ultralytics.__version__, torch.cuda.get_device_name(0))' \
  2>&1 | tee "$OUT/versions.txt" || exit 1
if [ -z "$SKIP_PYTEST" ]; then
  # the tests' real weights and images, laid out as ../shared is (test/conftest.py)
  SH=/tmp/yjr_shared; mkdir -p "$SH/models" "$SH/data"
  ln -sfn "$PWD/.devdata/yolo11n_coco128.pt" "$SH/models/yolo11n_coco128.pt"
  ln -sfn "$PWD/.devdata/coco128" "$SH/data/coco128"
  YOLO_JETSON_ROS_SHARED=$SH "$V/bin/python" -m pytest -q -rs -p no:cacheprovider \
    test/test_gpu_pipeline.py test/test_cuda_kernels.py 2>&1 | tail -8 | tee "$OUT/pytest.txt"
fi
"$V/bin/python" -m yolo_jetson_ros.benchmark --model .devdata/yolo11n_coco128.pt \
  --data .devdata/coco128/coco128.yaml --out "$OUT/bench" "$@" 2>&1 \
  | grep -v -E 'it/s\]|s/it\]' | tee -a "$OUT/bench.log"
rm -rf "$OUT/bench/cache"
true
