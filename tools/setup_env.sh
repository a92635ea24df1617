#!/usr/bin/env bash
# Create the development environment from the package registries only:
#   .venv/            ROS 2 Jazzy PyPI wheels + colcon + linters + the ML stack (torch, ultralytics, onnxruntime)
#   .ros/interfaces/  a vision_msgs-compatible interface package built from dev/interfaces (own install prefix)
# Idempotent: each step leaves a stamp holding the hash of its inputs and is skipped while it matches.
# Usage: tools/setup_env.sh            (PYTHON=python3.12 tools/setup_env.sh to pick the interpreter)
set -eo pipefail  # not -u: colcon's setup scripts read unset variables

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv"
STATE="$ROOT/.ros"
DISTRO=${YOLO_JETSON_ROS_DISTRO:-jazzy}  # jazzy (LTS, default) or kilted
case "$DISTRO" in jazzy|kilted) ;; *) echo "YOLO_JETSON_ROS_DISTRO: jazzy or kilted, not '$DISTRO'" >&2; exit 2;; esac
mkdir -p "$STATE"
# One venv holds one distro (both use the same ros-* distribution names): switching rebuilds it.
if [ -f "$STATE/distro" ] && [ "$(cat "$STATE/distro")" != "$DISTRO" ]; then
  echo "[setup] switching the environment from $(cat "$STATE/distro") to $DISTRO"
  rm -rf "$VENV" "$STATE"/*.stamp "$STATE/interfaces" "$ROOT/build" "$ROOT/install"
fi
echo "$DISTRO" > "$STATE/distro"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$STATE/$1.stamp" ] && [ "$(cat "$STATE/$1.stamp")" = "$2" ]; }
log() { printf '[setup] %s\n' "$*"; }

# 1. virtual environment (Python >= 3.10: rclpy wheels exist for cp310..cp313)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed"'
  log "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# 2. wheels, all pinned by requirements/constraints.txt
REQS=("requirements/ros-$DISTRO.txt" requirements/ml.txt requirements/dev.txt)
CONSTRAINTS=requirements/constraints.txt  # exact versions of a Jazzy venv
if [ "$DISTRO" != jazzy ]; then  # keep the pins of everything but ROS
  grep -v '^ros-' requirements/constraints.txt > "$STATE/constraints-$DISTRO.txt"
  CONSTRAINTS="$STATE/constraints-$DISTRO.txt"
fi
WHEELS_HASH=$(hash_of "${REQS[@]}" requirements/nodeps.txt "$CONSTRAINTS")
if ! stamp_ok wheels "$WHEELS_HASH"; then
  log "installing wheels (first run: several minutes, torch is large)"
  "$PY" -m pip install -q --upgrade 'pip>=24' 2> >(grep -v 'is ignored: it is neither' >&2)
  # (the local mirror's "Location ... is ignored" notes are noise)
  "$PY" -m pip install -q -c "$CONSTRAINTS" $(printf -- '-r %s ' "${REQS[@]}") \
    2> >(grep -v 'is ignored: it is neither' >&2)
  "$PY" -m pip install -q --no-deps -r requirements/nodeps.txt 2> >(grep -v 'is ignored: it is neither' >&2)
  echo "$WHEELS_HASH" > "$STATE/wheels.stamp"
  rm -f "$STATE/cmake-paths.stamp"
fi

# 3. the wheels were built in a manylinux container: their CMake exports name /opt/python/... paths
if [ ! -f "$STATE/cmake-paths.stamp" ]; then
  PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  NPINC=$("$PY" -c 'import numpy; print(numpy.get_include())')
  { grep -rlI --include='*Export.cmake' '/opt/python/' "$VENV/share" 2>/dev/null || true; } | xargs -r sed -i -E \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g" \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g"
  # make the venv a colcon underlay: sourcing any install/setup.bash then activates it too
  for ext in bash sh; do
    cat > "$VENV/local_setup.$ext" <<EOS
. "$VENV/bin/activate"
export AMENT_PREFIX_PATH="$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
EOS
  done
  touch "$STATE/cmake-paths.stamp"
fi

# 4. vision_msgs-compatible interfaces (dev/interfaces carries COLCON_IGNORE, so a user's workspace
#    never picks it up; it is built here, into its own prefix, only for development and CI)
IFACE_HASH=$(hash_of $(find dev/interfaces -type f | sort) "$STATE/wheels.stamp")
if ! stamp_ok interfaces "$IFACE_HASH" || [ ! -f "$STATE/interfaces/install/setup.bash" ]; then
  log "building the vision_msgs-compatible interface package (about a minute)"
  rm -rf "$STATE/interfaces"
  mkdir -p "$STATE/interfaces"
  (
    . "$VENV/local_setup.bash"
    cd "$STATE/interfaces"
    colcon --log-base log build --base-paths "$ROOT/dev/interfaces/vision_msgs" \
      --build-base build --install-base install --cmake-args -DBUILD_TESTING=OFF \
      --event-handlers console_cohesion- status- > build.log 2>&1 || { tail -50 build.log; exit 1; }
  )
  echo "$IFACE_HASH" > "$STATE/interfaces.stamp"
fi
log "environment ready: . tools/activate.sh"
