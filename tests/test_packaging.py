"""
The release artifacts, as a packager and a user get them.

The sdist is built from this tree (``python -m build --sdist``); a wheel is
built from that sdist by pip (``pip wheel``: an isolated build with
build-system.requires, as ``pip install`` does).  Each is installed into a
fresh venv with the core dependencies only (resolved by pip, nothing reused
from this venv), where the engine must be accelerated (``tlsfast info
--strict``), ``tlsfast --version`` must give this tree's version, the package
must be typed (py.typed), and the proxy and bench must name their extras.

Slow (about a minute: an sdist, two engine compiles, two venvs), so each
artifact and venv is made once per module.  The venvs are made without pip
(no ensurepip run) and filled by this venv's pip (``pip --python``), whose
cache serves the dependencies.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import tlsfast

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600

#: the runtime dependencies of the core (pyproject.toml); everything else is an extra
CORE_DEPENDENCIES = {"cryptography", "pyopenssl", "cffi", "service-identity", "twisted"}


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command outside this tree's influence; fail with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TLSFAST_DISABLE")}
    result = subprocess.run([str(a) for a in argv], check=False, capture_output=True, text=True, timeout=TIMEOUT,
                            cwd=cwd, env=env)
    assert result.returncode == 0, f"{argv}: exit {result.returncode}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


#: build products and local state a fresh clone does not have (a stale
#: *.egg-info/SOURCES.txt, for one, would add its files to the sdist)
NOT_IN_A_CLONE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.so",
                                        "*.c", "_build", ".pytest_cache", ".hypothesis", ".benchmarks")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist of this tree, built from a copy of it as a fresh clone would be."""
    tree = tmp_path_factory.mktemp("tree") / "tlsfast"
    shutil.copytree(ROOT, tree, ignore=NOT_IN_A_CLONE)
    out = tmp_path_factory.mktemp("sdist")
    run(sys.executable, "-m", "build", "--sdist", "--outdir", out, tree)
    (path,) = out.glob("tlsfast-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def wheel(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", out, sdist)
    (path,) = out.glob("tlsfast-*.whl")
    return path


@pytest.fixture(scope="module", params=["sdist", "wheel"])
def venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the artifact and the core dependencies installed: its bin/ directory."""
    artifact: Path = request.getfixturevalue(request.param)
    where = tmp_path_factory.mktemp(f"venv-{request.param}")
    run(sys.executable, "-m", "venv", "--without-pip", where)
    run(sys.executable, "-m", "pip", "--python", where / "bin" / "python", "install", "-q", "--no-compile", artifact)
    return where / "bin"


def test_sdist_carries_sources_tests_docs_license(sdist: Path) -> None:
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.removeprefix(top + "/") for name in tar.getnames()}
        member = tar.extractfile(f"{top}/PKG-INFO")
        assert member is not None
        pkg_info = member.read().decode()
    for name in ("_ext/_engine.pyx", "_ext/openssl.pxd", "LICENSE", "CHANGELOG.md", "README.md",
                 "tlsfast/py.typed", "tlsfast/_version.py", "tests/test_engine.py", "tests/twisted/test_install.py",
                 "docs/index.md", "docs/examples/echoserv_ssl.py", "tools/trial_with_tlsfast.py"):
        assert name in names, name
    # the C is generated at build time, from the .pyx, by the Cython the build requires
    assert not [name for name in names if name.endswith((".c", ".so"))]
    metadata = email.parser.Parser().parsestr(pkg_info)
    assert metadata["Version"] == tlsfast.__version__
    assert metadata["License-Expression"] == "MIT"
    core = {requirement.split(">")[0].split("[")[0].split("<")[0].strip().lower().replace("_", "-")
            for requirement in metadata.get_all("Requires-Dist") or [] if "extra ==" not in requirement}
    assert core == CORE_DEPENDENCIES


def test_wheel_carries_engine_and_types(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    assert [name for name in names if name.startswith("tlsfast/_engine.") and name.endswith(".so")]
    assert "tlsfast/py.typed" in names
    stubs = {path.relative_to(ROOT).as_posix() for path in (ROOT / "tlsfast").rglob("*.pyi")}
    assert stubs <= set(names), stubs - set(names)
    assert [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]


def test_accelerated(venv: Path, tmp_path: Path) -> None:
    out = run(venv / "tlsfast", "info", "--strict", cwd=tmp_path).stdout
    assert "acceleration   active" in out


def test_version(venv: Path, tmp_path: Path) -> None:
    assert run(venv / "tlsfast", "--version", cwd=tmp_path).stdout == f"tlsfast {tlsfast.__version__}\n"


def test_typed_and_installed_from_the_artifact(venv: Path, tmp_path: Path) -> None:
    package = Path(run(venv / "python", "-c", "import tlsfast; print(tlsfast.__file__)", cwd=tmp_path)
                   .stdout.strip()).parent
    assert package.is_relative_to(venv.parent), package  # not this tree
    assert (package / "py.typed").is_file()


def test_twisted_needs_only_the_core(venv: Path, tmp_path: Path) -> None:
    code = "import tlsfast.twisted; assert tlsfast.twisted.install()"
    run(venv / "python", "-c", code, cwd=tmp_path)


@pytest.mark.parametrize("command", ["proxy", "bench"])
def test_extra_named_when_missing(venv: Path, tmp_path: Path, command: str) -> None:
    result = subprocess.run([str(venv / "tlsfast"), command], check=False, capture_output=True, text=True,
                            timeout=TIMEOUT, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"tlsfast {command} needs the {command} extra: pip install 'tlsfast[{command}]'\n")
