# Source me (bash): . tools/activate.sh
# Activates the venv (ROS 2 Jazzy wheels), the vision_msgs-compatible interfaces and, once built,
# this package's colcon install tree, plus the settings that the demo and the tests use.
_yjr_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
. "$_yjr_root/.venv/local_setup.bash"
. "$_yjr_root/.ros/interfaces/install/local_setup.bash"
if [ -f "$_yjr_root/install/local_setup.bash" ]; then
  . "$_yjr_root/install/local_setup.bash"
fi
# Large best-effort images between processes: a Fast DDS profile with a big shared-memory segment.
# (FASTRTPS_* is the Fast DDS 2.x / Jazzy name, FASTDDS_* the 3.x / Kilted one.)
if [ "$(cat "$_yjr_root/.ros/distro" 2>/dev/null)" = kilted ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$_yjr_root/config/fastdds_large_images.xml"
else
  export FASTRTPS_DEFAULT_PROFILES_FILE="$_yjr_root/config/fastdds_large_images.xml"
fi
# Ultralytics: never reach for the network, keep its settings inside the checkout.
export YOLO_OFFLINE=1
export YOLO_CONFIG_DIR="$_yjr_root/.ros/ultralytics"
# Models: ../shared/models in this workplace when present (a user sets their own folder).
if [ -z "${YOLO_JETSON_ROS_MODEL_DIR:-}" ] && [ -d "$_yjr_root/../shared/models" ]; then
  export YOLO_JETSON_ROS_MODEL_DIR=$(cd "$_yjr_root/../shared/models" && pwd)
fi
unset _yjr_root
