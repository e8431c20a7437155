"""The `platform` package must also be the standard library's `platform` module."""

from __future__ import annotations

import json
import pickle
import pkgutil
import subprocess
import sys

import platform
from tests.conftest import REPO_ROOT


def _stdlib_names() -> set[str]:
    # -I: isolated, so the repository is not on sys.path and `platform` is the real stdlib module.
    out = subprocess.run([sys.executable, "-I", "-c", "import json, platform; print(json.dumps(dir(platform)))"],
                         capture_output=True, text=True, check=True, cwd="/")
    return set(json.loads(out.stdout))


def test_platform_is_our_package() -> None:
    assert hasattr(platform, "__path__")
    assert platform.__path__[0] == str(REPO_ROOT / "platform")


def test_stdlib_names_match() -> None:
    ours = {name for name in dir(platform) if not name.startswith("__")}
    stdlib = {name for name in _stdlib_names() if not name.startswith("__")}
    assert stdlib <= ours, f"missing stdlib names: {sorted(stdlib - ours)}"


def test_functions_work_and_uname_pickles() -> None:
    assert platform.system() == _run_stdlib("platform.system()")
    assert platform.python_version() == _run_stdlib("platform.python_version()")
    uname = platform.uname()
    assert pickle.loads(pickle.dumps(uname)) == uname


def _run_stdlib(expression: str) -> str:
    out = subprocess.run([sys.executable, "-I", "-c", f"import platform; print({expression})"],
                         capture_output=True, text=True, check=True, cwd="/")
    return out.stdout.strip()


def test_no_submodule_collides_with_stdlib_names() -> None:
    stdlib = _stdlib_names()
    ours = {module.name for module in pkgutil.iter_modules(platform.__path__)}
    assert ours, "platform has submodules"
    assert not ours & stdlib, f"submodules shadow stdlib attributes: {sorted(ours & stdlib)}"


def test_torch_and_ray_work_after_the_shim() -> None:
    code = (
        "import platform, torch, ray\n"
        "assert hasattr(platform, '__path__')\n"
        "assert torch.ones(2).sum().item() == 2\n"
        "ray.init(num_cpus=1, include_dashboard=False, logging_level='ERROR',"
        f" runtime_env={{'env_vars': {{'PYTHONPATH': {str(REPO_ROOT)!r}}}}})\n"
        "@ray.remote\n"
        "def f():\n"
        "    import platform\n"
        "    return platform.system(), hasattr(platform, '__path__')\n"
        "print(ray.get(f.remote()))\n"
        "ray.shutdown()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "('Linux', True)" in out.stdout
