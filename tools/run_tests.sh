#!/usr/bin/env bash
# Run every test through colcon test; fail on any failure or when no test ran.
#   tools/run_tests.sh            the CI suite
#   tools/run_tests.sh --soak     only the long soak/leak tests (YOLO_JETSON_ROS_SOAK=1)
set -eo pipefail
cd "$(dirname "$0")/.."
. tools/activate.sh
# One DDS domain per run: a node left over from another run must never answer our service calls.
export ROS_DOMAIN_ID=$(( (RANDOM % 200) + 10 ))
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export YOLO_JETSON_ROS_CACHE_DIR="$PWD/.ros/test_cache"
PYTEST_ARGS=(-p no:cacheprovider -ra)
if [ "$1" = "--soak" ]; then
  export YOLO_JETSON_ROS_SOAK=1
  PYTEST_ARGS+=(-m soak)
fi
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID"
rm -rf build/yolo_jetson_ros/test_results
# colcon test exits 0 even when tests fail: colcon test-result is the gate
colcon --log-base log test --base-paths . --event-handlers console_direct+ \
  --pytest-args "${PYTEST_ARGS[@]}"
colcon test-result --test-result-base build/yolo_jetson_ros --verbose
python - <<'PY'
import glob, sys, xml.etree.ElementTree as ET
total = sum(int(ET.parse(f).getroot().get('tests', 0)) or
            sum(int(s.get('tests', 0)) for s in ET.parse(f).getroot().iter('testsuite'))
            for f in glob.glob('build/yolo_jetson_ros/**/*.xml', recursive=True))
print(f'[test] {total} tests recorded')
sys.exit(0 if total > 0 else 1)
PY
