#!/usr/bin/env bash
# Prepare what tools/device/bench_h100.sh needs on the lent GPU machine (Python 3.12, torch, no ROS,
# no ultralytics, no network), in folders .git/info/exclude ignores and the run names in carry:
#   .whl/ros  ROS 2 Jazzy runtime wheels for cp312 (ros-env.md section 8), .whl/ml ultralytics & co.
#   .devdata  the weights, coco128, and the vision_msgs-compatible interfaces built with Python 3.12
# Then: run(command='OUT=$OUT bash tools/device/bench_h100.sh ...', carry=['.whl', '.devdata'])
set -eo pipefail
cd "$(dirname "$0")/../.."
SHARED=${YOLO_JETSON_ROS_SHARED:-../shared}
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
grep -qx '/.devdata/' .git/info/exclude || echo '/.devdata/' >> .git/info/exclude
DL=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 --platform any)
mkdir -p .whl/ros .whl/ml .devdata
"${DL[@]}" -d .whl/ros lark-parser==0.12.0 ros-action-msgs==2.0.3 ros-ament-index-cpp==1.8.1 ros-ament-index-python==1.8.1 ros-ament-package==0.16.4 ros-builtin-interfaces==2.0.3 ros-diagnostic-msgs==5.3.6 ros-fastcdr==2.2.5 ros-fastrtps==2.14.5 ros-foonathan-memory-vendor==1.3.1 ros-geometry-msgs==5.3.6 ros-libyaml-vendor==1.6.3 ros-lifecycle-msgs==2.0.3 ros-rcl==9.2.8 ros-rcl-action==9.2.8 ros-rcl-interfaces==2.0.3 ros-rcl-lifecycle==9.2.8 ros-rcl-logging-interface==3.1.1 ros-rcl-logging-spdlog==3.1.1 ros-rcl-yaml-param-parser==9.2.8 ros-rclpy==7.1.6 ros-rcpputils==2.11.2 ros-rcutils==6.7.4 ros-rmw==7.3.2 ros-rmw-dds-common==3.1.0 ros-rmw-fastrtps-cpp==8.4.3 ros-rmw-fastrtps-shared-cpp==8.4.3 ros-rmw-implementation==2.15.6 ros-rosgraph-msgs==2.0.3 ros-rosidl-adapter==4.6.6 ros-rosidl-core-runtime==0.2.0 ros-rosidl-default-runtime==1.6.0 ros-rosidl-dynamic-typesupport==0.1.2 ros-rosidl-dynamic-typesupport-fastrtps==0.1.0 ros-rosidl-generator-py==0.22.2 ros-rosidl-parser==4.6.6 ros-rosidl-pycommon==4.6.6 ros-rosidl-runtime-c==4.6.6 ros-rosidl-runtime-cpp==4.6.6 ros-rosidl-typesupport-c==3.2.2 ros-rosidl-typesupport-cpp==3.2.2 ros-rosidl-typesupport-fastrtps-c==3.6.2 ros-rosidl-typesupport-fastrtps-cpp==3.6.2 ros-rosidl-typesupport-interface==4.6.6 ros-rosidl-typesupport-introspection-c==4.6.6 ros-rosidl-typesupport-introspection-cpp==4.6.6 ros-rpyutils==0.4.2 ros-sensor-msgs==5.3.6 ros-service-msgs==2.0.3 ros-spdlog-vendor==1.6.1 ros-std-msgs==5.3.6 ros-tracetools==8.2.4 ros-type-description-interfaces==2.0.3 ros-unique-identifier-msgs==2.5.0 ros-wheels-bootstrapper==0.1.2 
"${DL[@]}" -d .whl/ml psutil==7.2.2 pyyaml==6.0.4 requests==2.34.2 tqdm==4.70.1 ultralytics==8.4.190 ultralytics-thop==2.2.3 
cp "$SHARED/models/yolo11n_coco128.pt" .devdata/
rm -rf .devdata/coco128 && cp -r "$SHARED/data/coco128" .devdata/coco128
# the interfaces, built with Python 3.12 against the same Jazzy wheels as tools/setup_env.sh
for candidate in "$PY312" "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 python3.12; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' \
      2>/dev/null; then PY312=$candidate; break; fi
done
"${PY312:-false}" -c '' 2>/dev/null || { echo 'no Python 3.12: set PY312=/path/to/python3.12' >&2; exit 1; }
V=/tmp/yjr-py312-venv
[ -x $V/bin/python ] || "$PY312" -m venv $V
$V/bin/pip install -q -c requirements/constraints.txt -r requirements/ros-jazzy.txt 'setuptools<80' numpy
PYINC=$($V/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$($V/bin/python -c 'import numpy; print(numpy.get_include())')
{ grep -rlI --include='*Export.cmake' '/opt/python/' $V/share || true; } | xargs -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g"
rm -rf /tmp/yjr-iface312 && mkdir -p /tmp/yjr-iface312
( . $V/bin/activate && export AMENT_PREFIX_PATH=$V CMAKE_PREFIX_PATH=$V && cd /tmp/yjr-iface312 &&
  colcon build --base-paths "$OLDPWD/dev/interfaces/vision_msgs" --cmake-args -DBUILD_TESTING=OFF )
rm -rf .devdata/interfaces && mkdir -p .devdata/interfaces
cp -r /tmp/yjr-iface312/install/vision_msgs .devdata/interfaces/vision_msgs
du -sh .whl .devdata
