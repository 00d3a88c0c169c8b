"""The built wheel carries the zoo catalogue: installed into a fresh venv (reusing this
interpreter's site-packages for the dependencies), `tokzoo zoo list` finds every card."""
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_zoo_catalogue(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(dist.glob("tokzoo-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)
    where = subprocess.run([str(python), "-c", "import vistok.hub.catalogue as c; print(c.card_dirs()[-1])"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(env_dir)), where  # the wheel's copy, not this checkout's zoo/
    listing = subprocess.run([str(env_dir / "bin" / "tokzoo"), "zoo", "list"], check=True, capture_output=True,
                             text=True, cwd=tmp_path).stdout
    names = {line.split()[0] for line in listing.splitlines()}
    shipped = {p.stem for p in (REPO / "zoo").glob("*.yaml")}
    assert names == shipped and "titok-l32" in names
