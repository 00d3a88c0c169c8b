"""gFID of samples (a folder, or an ADM-style .npz with arr_0) against reference statistics (an ADM
.npz with mu/sigma such as VIRTUAL_imagenet256_labeled.npz, or a folder). Same as `tokzoo eval gfid`.

    python eval/gfid.py --samples samples_50k.npz --ref VIRTUAL_imagenet256_labeled.npz --out outputs/gfid

See eval/README.md for the published protocols and where the Inception weights come from.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vistok.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["eval", "gfid", *sys.argv[1:]]))
