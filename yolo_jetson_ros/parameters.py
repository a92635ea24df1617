# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The node's parameters as data: defaults, ranges, descriptions, and their validation.

Pure Python (no rclpy), so the README table, ``config/detector.yaml`` and the node are checked
against one source, and validation is unit-tested without ROS.

``structural`` parameters decide what gets built at configure (model, backend, engine...): they
can be changed only while the node is unconfigured. ``live`` ones take effect on the next frame.
"""

from dataclasses import dataclass
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .pipeline.detector import BACKENDS, PRECISIONS

Validator = Callable[[Any], Optional[str]]  # returns a reason when the value is invalid


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter."""

    name: str
    default: Any
    description: str
    structural: bool = True
    int_range: Optional[Tuple[int, int, int]] = None  # from, to, step
    float_range: Optional[Tuple[float, float]] = None
    validate: Optional[Validator] = None
    read_only: bool = False
    dynamic_typing: bool = False

    @property
    def when_changeable(self) -> str:
        """Return when the value may change, as written in the README."""
        if self.read_only:
            return 'start-up only'
        return 'unconfigured' if self.structural else 'any time (next frame)'


def _one_of(choices: Sequence[str]) -> Validator:
    def check(value: Any) -> Optional[str]:
        return None if value in choices else f"must be one of {', '.join(choices)}, got '{value}'"

    return check


_DEVICE_RE = re.compile(r'^(|cpu|cuda|cuda:\d+)$')


def _device(value: Any) -> Optional[str]:
    if _DEVICE_RE.match(str(value)):
        return None
    return f"must be '' (auto), 'cpu', 'cuda' or 'cuda:N', got '{value}'"


def _sha256(value: Any) -> Optional[str]:
    if value == '' or re.fullmatch(r'[0-9a-fA-F]{64}', str(value)):
        return None
    return 'must be empty or 64 hexadecimal characters (sha256sum of the model file)'


def _classes(value: Any) -> Optional[str]:
    try:
        parse_classes(value)
    except ValueError as exc:
        return str(exc)
    return None


def _imgsz(value: Any) -> Optional[str]:
    return (
        None
        if int(value) % 32 == 0
        else f'must be a multiple of 32 (the model stride), got {value}'
    )


def _topics(value: Any) -> Optional[str]:
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        return 'must be a non-empty list of topic names'
    if len(set(value)) != len(value):
        return 'lists a topic twice'
    return None


def parse_classes(value: Any) -> List['int | str']:
    """Normalise ``classes``: '' / [] = all, [0, 2], ['person', 'car'], or '0,person'."""
    if value is None:
        return []
    if isinstance(value, str):
        items: List[Any] = [v.strip() for v in value.split(',') if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif (
        isinstance(value, (bytes, bytearray)) and len(value) == 0
    ):  # rclpy types [] as a byte array
        return []
    else:
        raise ValueError(f'must be a list of class indices or names, got {type(value).__name__}')
    out: List['int | str'] = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError('class entries must be indices or names, not booleans')
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            index = int(item)
            if index < 0:
                raise ValueError(f'class index {index} is negative')
            out.append(index)
        elif isinstance(item, str) and item:
            out.append(item)
        else:
            raise ValueError(f'cannot read class entry {item!r}')
    return out


def resolve_classes(entries: Sequence['int | str'], names: Mapping[int, str]) -> List[int]:
    """Map class indices/names to indices of this model; raise ValueError naming unknown ones."""
    by_name = {n.lower(): i for i, n in names.items()}
    out: List[int] = []
    for entry in entries:
        if isinstance(entry, int):
            if entry not in names:
                raise ValueError(f'class index {entry} is not in this model (0..{len(names) - 1})')
            out.append(entry)
        else:
            if entry.lower() not in by_name:
                raise ValueError(f"class name '{entry}' is not in this model's names")
            out.append(by_name[entry.lower()])
    return out


PARAMETERS: Tuple[ParamSpec, ...] = (
    # --- what runs (structural: set while unconfigured) ---
    ParamSpec(
        'model',
        'yolo11n',
        'Model name (yolo11n..yolo11x, yolov8n.., yolo26n..) looked up in '
        'model_dir, then $YOLO_JETSON_ROS_MODEL_DIR, then downloaded by Ultralytics when '
        'online; or a path to .pt/.onnx/.engine.',
    ),
    ParamSpec('model_dir', '', 'Folder searched first for model names.'),
    ParamSpec(
        'model_sha256',
        '',
        'If set, the sha256 the model file must have (model files are '
        'code: a .pt is unpickled); a mismatch fails configure.',
        validate=_sha256,
    ),
    ParamSpec(
        'backend',
        'auto',
        'auto (tensorrt > torch on CUDA > onnxruntime on CPU), tensorrt, ' 'torch or onnxruntime.',
        validate=_one_of(BACKENDS),
    ),
    ParamSpec(
        'device',
        '',
        "'' (auto: cuda:0 for GPU backends when present, else cpu), cpu, " 'cuda:N.',
        validate=_device,
    ),
    ParamSpec(
        'precision',
        'auto',
        'auto (fp16 on a GPU, fp32 on the CPU), fp32, fp16 or int8 '
        '(TensorRT; needs int8_calibration_data).',
        validate=_one_of(PRECISIONS),
    ),
    ParamSpec(
        'imgsz',
        640,
        'Square network input size in pixels (multiple of 32).',
        int_range=(32, 4096, 32),
        validate=_imgsz,
    ),
    ParamSpec(
        'batch',
        1,
        'Images per inference (several cameras are batched together).',
        int_range=(1, 16, 1),
    ),
    ParamSpec(
        'nms_free',
        False,
        "YOLO26/YOLOv10: run the NMS-free one-to-one head (Ultralytics' nms=False) instead of "
        'the default head + NMS (what predict() runs); no effect on other models.',
    ),
    ParamSpec(
        'compile_postprocess',
        False,
        'CUDA (torch, TensorRT): decode + NMS compiled by torch.compile (needs Triton) '
        'instead of the default runtime-compiled CUDA kernels, which were faster on an H100 '
        '(pipeline 1.33 against 1.21 ms) and lighter (RSS 1518 against 1233 MB); 8-17 s more '
        "at the first configure. For a GPU where NVRTC is missing; falls back to torch's "
        'kernels, with the reason in the configure log.',
    ),
    ParamSpec(
        'dla_core',
        -1,
        'TensorRT: -1 = GPU, 0 or 1 = DLA core (Jetson AGX Orin / Orin NX; '
        'fp16 or int8 only; unsupported layers fall back to the GPU).',
        int_range=(-1, 1, 1),
    ),
    ParamSpec(
        'workspace_gb',
        0.0,
        'TensorRT builder workspace in GiB (0 = TensorRT decides).',
        float_range=(0.0, 64.0),
    ),
    ParamSpec(
        'int8_calibration_data',
        '',
        'TensorRT int8: dataset yaml or image folder used for '
        'calibration (>= 300 representative images recommended).',
    ),
    ParamSpec(
        'engine_cache_dir',
        '',
        'Where ONNX exports and TensorRT engines are cached '
        "('' = ~/.ros/yolo_jetson_ros/engines).",
    ),
    ParamSpec(
        'force_engine_rebuild',
        False,
        'Rebuild the engine/export at the next configure even ' 'if a matching one is cached.',
    ),
    ParamSpec(
        'threads',
        0,
        'CPU inference threads for onnxruntime (0 = one per core).',
        int_range=(0, 256, 1),
    ),
    ParamSpec(
        'qos_reliability',
        'best_effort',
        'Image subscription reliability: best_effort '
        '(sensor data; matches every publisher) or reliable.',
        validate=_one_of(('best_effort', 'reliable')),
    ),
    ParamSpec(
        'image_topics',
        ['image'],
        'Image topics to detect on. One topic: detections go to '
        "'detections_output'; several (cameras batched into one inference): each to "
        "'<topic>/detections'. Relative names honour the namespace and remapping.",
        validate=_topics,
    ),
    ParamSpec(
        'input_transport',
        'raw',
        'raw (sensor_msgs/Image on each image topic) or compressed (sensor_msgs/CompressedImage, '
        "jpeg/png, on '<image topic>/compressed', as image_transport publishes it).",
        validate=_one_of(('raw', 'compressed')),
    ),
    ParamSpec(
        'tracker',
        'none',
        "Multi-object tracking per camera with Ultralytics' trackers and their default "
        'configuration: none, bytetrack or botsort (motion + IoU, no ReID). The track id goes '
        'into Detection2D.id.',
        validate=_one_of(('none', 'bytetrack', 'botsort')),
    ),
    ParamSpec(
        'batch_window_ms',
        5.0,
        'With several cameras: how long to wait for the other '
        "cameras' frames to fill a batch before inferring on what has arrived.",
        float_range=(0.0, 100.0),
    ),
    # --- thresholds (live) ---
    ParamSpec('conf', 0.25, 'Confidence threshold.', structural=False, float_range=(0.0, 1.0)),
    ParamSpec('iou', 0.7, 'NMS IoU threshold.', structural=False, float_range=(0.0, 1.0)),
    ParamSpec(
        'max_det', 300, 'Maximum detections per image.', structural=False, int_range=(1, 3000, 1)
    ),
    ParamSpec(
        'classes',
        '',
        "Classes to keep: indices or names ([0, 2], ['person', 'car'] or "
        "'person,car'); empty = all.",
        structural=False,
        validate=_classes,
        dynamic_typing=True,
    ),
    ParamSpec(
        'agnostic_nms',
        False,
        'Class-agnostic NMS (one box per object whatever its class).',
        structural=False,
    ),
    # --- outputs (live) ---
    ParamSpec(
        'publish_debug_image',
        False,
        'Publish an annotated copy of each frame (boxes, class names, scores; sensor_msgs/Image '
        "bgr8) on 'detections_image' (several cameras: '<topic>/detections_image'); drawn only "
        'while someone subscribes.',
        structural=False,
    ),
    # --- start-up ---
    ParamSpec('autostart', False, 'Configure and activate at start-up.', read_only=True),
)

BY_NAME: Dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}


_TYPE_WORDS = {bool: 'true or false', int: 'an integer', float: 'a number (float)',
               str: 'a string', list: 'a list'}


def check_value(spec: ParamSpec, value: Any) -> Optional[str]:
    """Return the reason ``value`` is invalid for ``spec`` (ranges included), or None."""
    default = spec.default
    if not spec.dynamic_typing and type(value) is not type(default):
        if not (
            isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
        ):
            return f'must be {_TYPE_WORDS[type(default)]}, got {value!r} ({type(value).__name__})'
    if spec.int_range is not None:
        lo, hi, step = spec.int_range
        if not lo <= value <= hi:
            return f'must be between {lo} and {hi}, got {value}'
        if step > 1 and (value - lo) % step:
            return f'must be {lo} + a multiple of {step}, got {value}'
    if spec.float_range is not None:
        lo_f, hi_f = spec.float_range
        if not lo_f <= float(value) <= hi_f:
            return f'must be between {lo_f} and {hi_f}, got {value}'
    if spec.validate is not None:
        return spec.validate(value)
    return None


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_yaml_value(v) for v in value) + ']'
    return repr(value)


def _wrap(text: str, width: int, prefix: str) -> List[str]:
    import textwrap

    return [prefix + line for line in textwrap.wrap(text, width - len(prefix))]


def render_yaml(node_name: str = '/**') -> str:
    """Return config/detector.yaml: every parameter with its default and description."""
    lines = [
        '# Parameters of the yolo_jetson_ros detector node, with their defaults.',
        '# Generated by `python -m yolo_jetson_ros.parameters yaml`; test_node_ros_features.py '
        'checks it.',
        f"'{node_name}':  # any node name (this file is the default of every detector)",
        '  ros__parameters:',
    ]
    for spec in PARAMETERS:
        lines += _wrap(f'{spec.description} [changeable: {spec.when_changeable}]', 99, '    # ')
        lines.append(f'    {spec.name}: {_yaml_value(spec.default)}')
    return '\n'.join(lines) + '\n'


def render_markdown() -> str:
    """Return the README's parameter table."""
    rows = [
        '| parameter | default | range | changeable | description |',
        '| --- | --- | --- | --- | --- |',
    ]
    for spec in PARAMETERS:
        rng = ''
        if spec.int_range:
            rng = f'{spec.int_range[0]}..{spec.int_range[1]}'
            rng += f' step {spec.int_range[2]}' if spec.int_range[2] > 1 else ''
        elif spec.float_range:
            rng = f'{spec.float_range[0]}..{spec.float_range[1]}'
        rows.append(
            f'| `{spec.name}` | `{_yaml_value(spec.default)}` | {rng} | '
            f'{spec.when_changeable} | {spec.description} |'
        )
    return '\n'.join(rows) + '\n'


README_BEGIN = '<!-- parameters:begin (generated: python -m yolo_jetson_ros.parameters readme) -->'
README_END = '<!-- parameters:end -->'


def update_readme(text: str) -> str:
    """Return the README text with the table between its markers regenerated."""
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f'{head}{README_BEGIN}\n{render_markdown()}{README_END}{tail}'


if __name__ == '__main__':
    import sys
    from pathlib import Path
    what = sys.argv[1] if len(sys.argv) > 1 else 'markdown'
    if what == 'readme':  # rewrite README.md (run from the repository root)
        readme = Path('README.md')
        readme.write_text(update_readme(readme.read_text()))
    else:
        print(render_yaml() if what == 'yaml' else render_markdown(), end='')
