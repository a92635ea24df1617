# yolo_jetson_ros developer commands. Everything installs itself on first use (idempotent).
#   make demo   - run the real node on sample images and print/save its detections (CPU default)
#   make test   - lint + unit + parity + ROS integration tests through colcon test
#   make soak   - long lifecycle-cycling and frame soak runs (not in CI)
#   make bench  - the latency/accuracy benchmark (python -m yolo_jetson_ros.benchmark)
SHELL := /bin/bash
PYTHON ?= python3

.PHONY: setup build demo test soak bench clean

setup:
	@PYTHON=$(PYTHON) tools/setup_env.sh

build: setup
	@tools/colcon_build.sh

demo: build
	@tools/run_demo.sh

test: build
	@tools/run_tests.sh

soak: build
	@tools/run_tests.sh --soak

bench: build
	@. tools/activate.sh && python -m yolo_jetson_ros.benchmark $(BENCH_ARGS)

clean:
	rm -rf build install log demo_output bench_output .ros/interfaces .ros/*.stamp
