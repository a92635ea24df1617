#!/usr/bin/env bash
# make demo: the real node in its own process on sample images (CPU unless DEMO_ARGS says otherwise).
set -eo pipefail
cd "$(dirname "$0")/.."
. tools/activate.sh
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 200) + 10 ))}
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
exec python -m yolo_jetson_ros.demo ${DEMO_ARGS}
