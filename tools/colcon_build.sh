#!/usr/bin/env bash
# Build this package with colcon into build/ and install/ (a couple of seconds).
set -eo pipefail
cd "$(dirname "$0")/.."
. tools/activate.sh
mkdir -p log
colcon --log-base log build --base-paths . --event-handlers console_cohesion- status- \
  > log/colcon_build.txt 2>&1 || { cat log/colcon_build.txt; exit 1; }
