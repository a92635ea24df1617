# SPDX-License-Identifier: AGPL-3.0-or-later
# Copyright (C) 2026 yolo_jetson_ros contributors
"""
The TensorRT seam and the fake TensorRT, checked against NVIDIA's API as the stubs describe it.

The ``tensorrt-stubs`` wheel (generated from TensorRT 10.13's bindings) installs
``tensorrt/__init__.pyi`` and ``tensorrt_bindings/*.pyi`` without a ``py.typed`` marker, so mypy
does not use them from site-packages, and its generated ``tensorrt.pyi`` has a few lines that
are not valid Python (a parameter named ``in``, a parameter without default after defaulted
ones), all in plugin classes this project does not use. The fixture copies the stubs into a
temporary folder, repairs exactly those lines (renaming ``in``, dropping the defaults of the
offending signature) and points mypy there; a probe file proves the stubs are really in force.
"""

import ast
import importlib.util
import inspect
from pathlib import Path
from re import sub
from shutil import copytree, ignore_patterns
from sys import path as sys_path
from types import FunctionType, ModuleType
from typing import Dict, List, Optional, Set, Tuple

import fake_tensorrt

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / 'yolo_jetson_ros' / 'pipeline' / 'tensorrt_runtime.py'
FAKE = Path(fake_tensorrt.__file__).resolve()
STUB_PACKAGES = ('tensorrt', 'tensorrt_bindings')


def _stubs_site() -> Optional[Path]:
    """Return the folder that holds the tensorrt-stubs .pyi packages, or None."""
    spec = importlib.util.find_spec('tensorrt_stubs')
    candidates = [Path(spec.origin).parent.parent] if spec and spec.origin else []
    candidates += [Path(p) for p in sys_path if p]
    for folder in candidates:
        if (folder / 'tensorrt' / '__init__.pyi').is_file() and \
                (folder / 'tensorrt_bindings' / 'tensorrt.pyi').is_file():
            return folder
    return None


def repair_stub_source(source: str) -> Tuple[str, List[int]]:
    """Return the stub source made parseable, and the line numbers that needed repair."""
    lines = source.split('\n')
    repaired: List[int] = []
    for _ in range(200):
        try:
            ast.parse('\n'.join(lines))
            return '\n'.join(lines), repaired
        except SyntaxError as exc:
            if exc.lineno is None:
                raise
            index = exc.lineno - 1
            line = lines[index]
            fixed = sub(r'\bin:', 'in_:', line)  # 'in' is a keyword, not a parameter name
            if fixed == line:  # non-default parameter after defaulted ones: drop the defaults
                fixed = sub(r'\s*=\s*[^,()]+(?=[,)])', '', line)
            if fixed == line:
                raise
            lines[index] = fixed
            repaired.append(exc.lineno)
    raise AssertionError('the stubs need more than 200 repairs')


@pytest.fixture(scope='module')
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copy the tensorrt-stubs, repaired, into a folder usable as a mypy_path."""
    site = _stubs_site()
    if site is None:
        pytest.skip('tensorrt-stubs not installed (pip install --no-deps tensorrt-stubs)')
    target = tmp_path_factory.mktemp('tensorrt_stubs')
    for package in STUB_PACKAGES:
        copytree(site / package, target / package, ignore=ignore_patterns('__pycache__'))
        for pyi in (target / package).glob('*.pyi'):
            source, repaired = repair_stub_source(pyi.read_text())
            if repaired:
                pyi.write_text(source)
    return target


def _stub_tree(stubs: Path, relative: str) -> ast.Module:
    return ast.parse((stubs / relative).read_text())


# ---------------------------------------------------------------------------------------------
# mypy
# ---------------------------------------------------------------------------------------------

PROBE = """\
import tensorrt


def probe(engine: tensorrt.ICudaEngine, runtime: tensorrt.Runtime) -> None:
    engine.get_tensor_nam(0)
    runtime.DLA_core = 'zero'
    engine.get_tensor_shape(0)
"""
PROBE_ERRORS = {5: 'attr-defined', 6: 'assignment', 7: 'arg-type'}


def test_mypy_runtime_and_fake_against_the_stubs(stubs: Path, tmp_path: Path) -> None:
    """tensorrt_runtime.py and fake_tensorrt.py type-check; the probe shows the stubs are used."""
    mypy_api = pytest.importorskip('mypy.api', reason='mypy not installed')
    probe = tmp_path / 'probe_stubs_in_force.py'
    probe.write_text(PROBE)
    config = tmp_path / 'mypy.ini'
    config.write_text(
        '[mypy]\n'
        f'mypy_path = {stubs}\n'
        f'cache_dir = {tmp_path / "mypy_cache"}\n'
        'follow_imports = silent\n'
        'disallow_untyped_defs = True\n'
        'disallow_incomplete_defs = True\n'
        'check_untyped_defs = True\n'
        'no_implicit_optional = True\n'
        'warn_redundant_casts = True\n'
        'warn_unused_ignores = True\n'
        'strict_equality = True\n'
        'show_error_codes = True\n'
        # torch's own annotations take minutes to analyse and are not what is checked here
        '[mypy-torch.*]\nfollow_imports = skip\nfollow_imports_for_stubs = True\n'
        '[mypy-onnxruntime.*]\nignore_missing_imports = True\n'
        '[mypy-tensorrt_libs.*]\nignore_missing_imports = True\n'
        # the generated stubs themselves do not type-check (a module variable named 'bool'
        # shadows the builtin in annotations); their errors are not ours
        '[mypy-tensorrt.*,tensorrt_bindings.*]\nignore_errors = True\n')
    stdout, stderr, status = mypy_api.run(
        ['--config-file', str(config), '--no-error-summary', str(RUNTIME), str(FAKE), str(probe)])
    errors = [line for line in stdout.splitlines() if ': error:' in line]
    unexpected = [line for line in errors if not line.startswith(str(probe))]
    assert not unexpected and not stderr, '\n'.join(unexpected) + stderr
    found = {int(line.split(':')[1]): line for line in errors}
    assert sorted(found) == sorted(PROBE_ERRORS), stdout
    for line_number, code in PROBE_ERRORS.items():
        assert f'[{code}]' in found[line_number], found[line_number]
    assert status == 1


# ---------------------------------------------------------------------------------------------
# The fake against the stubs (ast)
# ---------------------------------------------------------------------------------------------

class StubIndex:
    """Classes and module-level names of the TensorRT stubs."""

    def __init__(self, stubs: Path):
        """Parse the repaired stubs."""
        self.classes: Dict[str, ast.ClassDef] = {}
        self.functions: Dict[str, ast.FunctionDef] = {}
        for relative in ('tensorrt_bindings/tensorrt.pyi', 'tensorrt_bindings/__init__.pyi'):
            for node in _stub_tree(stubs, relative).body:
                if isinstance(node, ast.ClassDef):
                    self.classes.setdefault(node.name, node)
                elif isinstance(node, ast.FunctionDef):
                    self.functions.setdefault(node.name, node)
        self.exports: Set[str] = set()
        for node in _stub_tree(stubs, 'tensorrt/__init__.pyi').body:
            if isinstance(node, ast.ImportFrom):
                self.exports.update(alias.asname or alias.name for alias in node.names)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.exports.add(node.target.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.exports.add(node.name)

    def members(self, node: ast.ClassDef) -> Dict[str, List[ast.AST]]:
        """Return a class's members by name (overloads kept), inherited ones included."""
        found: Dict[str, List[ast.AST]] = {}
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in self.classes:
                found.update(self.members(self.classes[base.id]))
        for child in node.body:
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = child.name
            elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
                name = child.target.id
            else:
                continue
            found.setdefault(name, [])
            if name in {n.name for n in node.body if isinstance(n, ast.FunctionDef)} and \
                    found[name] and not isinstance(found[name][0], ast.FunctionDef):
                found[name] = []
            found[name].append(child)
        return found


def _is_property(node: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Name) and d.id == 'property' for d in node.decorator_list)


def _stub_parameters(node: ast.FunctionDef, method: bool) -> List[Tuple[str, bool]]:
    """Return ``(name, has_default)`` of a stub signature, ``self`` dropped for methods."""
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    params = list(zip([a.arg for a in positional], defaults))
    params += [(a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return params[1:] if method and params else params


def _fake_parameters(function: FunctionType, method: bool) -> List[str]:
    names = list(inspect.signature(function).parameters)
    return names[1:] if method else names


def _signature_matches(fake: List[str], stub: List[Tuple[str, bool]]) -> bool:
    """Return True if the fake takes a prefix of the stub's parameters (rest defaulted)."""
    return [n for n, _ in stub[:len(fake)]] == fake and all(d for _, d in stub[len(fake):])


def _check_function(where: str, function: FunctionType, overloads: List[ast.AST],
                    method: bool, problems: List[str]) -> None:
    candidates = [_stub_parameters(o, method) for o in overloads if isinstance(o, ast.FunctionDef)]
    fake = _fake_parameters(function, method)
    if not any(_signature_matches(fake, stub) for stub in candidates):
        problems.append(f'{where}{tuple(fake)} matches no stub signature '
                        f'{[tuple(n for n, _ in c) for c in candidates]}')


def _check_class(index: StubIndex, qualname: str, fake_class: type, stub_class: ast.ClassDef,
                 problems: List[str]) -> int:
    """Compare one fake class with its stub; return how many members were checked."""
    members = index.members(stub_class)
    own = {name: value for name, value in vars(fake_class).items()
           if not name.startswith('_') or name == '__init__'}
    for name in vars(fake_class).get('__annotations__', {}):
        own.setdefault(name, None)
    checked = 0
    for name, value in own.items():
        where = f'{qualname}.{name}'
        if name == '__init__' and '__init__' not in members:
            continue  # TensorRT objects without a Python constructor: the fake's is internal
        if name not in members:
            problems.append(f'{where} is not in the TensorRT stubs')
            continue
        checked += 1
        stub = members[name]
        if isinstance(value, type):
            nested = [n for n in stub if isinstance(n, ast.ClassDef)]
            if not nested:
                problems.append(f'{where} is a class, the stub has no class of that name')
            else:
                checked += _check_class(index, where, value, nested[0], problems)
        elif isinstance(value, property):
            if not any(_is_property(n) or isinstance(n, ast.AnnAssign) for n in stub):
                problems.append(f'{where} is a property, the stub has none')
        elif isinstance(value, FunctionType):
            _check_function(where, value, stub, True, problems)
        elif not any(isinstance(n, ast.AnnAssign) or _is_property(n) for n in stub):
            problems.append(f'{where} is an attribute, the stub has no attribute of that name')
    return checked


def test_fake_offers_only_what_the_stubs_declare(stubs: Path) -> None:
    """
    Every public class, method, property and attribute of the fake exists in TensorRT 10.13.

    Methods must take the same parameter names as (a prefix of) one of the stub's overloads.
    """
    index = StubIndex(stubs)
    problems: List[str] = []
    checked = 0
    for name, value in vars(fake_tensorrt).items():
        if name.startswith('_') and name != '__version__':
            continue  # test controls, documented as not TensorRT API
        if isinstance(value, ModuleType) or (
                name != '__version__' and getattr(value, '__module__', '') != 'fake_tensorrt'):
            continue  # imports (json, numpy, typing names)
        if name not in index.exports:
            problems.append(f'{name} is not exported by the tensorrt stub package')
            continue
        checked += 1
        if isinstance(value, type):
            if name not in index.classes:
                problems.append(f'{name} is a class in the fake only')
            else:
                checked += _check_class(index, name, value, index.classes[name], problems)
        elif isinstance(value, FunctionType):
            stub = index.functions.get(name)
            if stub is None:
                problems.append(f'{name} is a function in the fake only')
            else:
                _check_function(name, value, [stub], False, problems)
    assert not problems, '\n'.join(problems)
    assert checked >= 40, f'only {checked} names checked: is the fake still there?'


def test_runtime_uses_only_module_names_the_stubs_declare(stubs: Path) -> None:
    """Every ``trt.<name>`` the seam touches exists; the binding API is really gone in 10.x."""
    index = StubIndex(stubs)
    used = {node.attr for node in ast.walk(ast.parse(RUNTIME.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == 'trt'}
    assert used, 'the seam should reach TensorRT through its trt argument'
    assert not used - index.exports - {'__version__'}, used - index.exports
    engine = index.members(index.classes['ICudaEngine'])
    context = index.members(index.classes['IExecutionContext'])
    assert {'num_io_tensors', 'get_tensor_name', 'get_tensor_mode', 'get_tensor_shape',
            'get_tensor_dtype', 'get_tensor_profile_shape'} <= set(engine)
    assert {'set_tensor_address', 'execute_async_v3', 'set_input_shape'} <= set(context)
    assert not {'num_bindings', 'get_binding_shape', 'binding_is_input'} & set(engine)
    assert 'execute_async_v2' not in context


def test_stub_repair_touches_only_broken_lines() -> None:
    """The repair renames 'in' and drops defaults on the offending line, nothing else."""
    source = ('class A:\n'
              '    def f(self, in: int, out: int) -> None: ...\n'
              '    def g(self, a: int = None, b: int) -> None: ...\n'
              '    def h(self, a: int = None) -> None: ...\n')
    fixed, lines = repair_stub_source(source)
    assert lines == [2, 3]
    assert 'def f(self, in_: int, out: int)' in fixed
    assert 'def g(self, a: int, b: int)' in fixed
    assert 'def h(self, a: int = None)' in fixed
