import shutil
import subprocess
import sys

import vistok
from vistok.cli import main


def test_help_and_version(capsys):
    assert main([]) == 0
    assert "tokzoo" in capsys.readouterr().out
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert vistok.__version__ in capsys.readouterr().out


def test_console_script_installed():
    exe = shutil.which("tokzoo")
    cmd = [exe] if exe else [sys.executable, "-m", "vistok.cli"]
    res = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "usage: tokzoo" in res.stdout
