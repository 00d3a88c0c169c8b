"""pFID (tokzoo implementation of the RobusTok definition): FID of reconstructions decoded from
perturbed tokens over an (alpha, delta) grid, per point and averaged. Same as `tokzoo eval pfid`.

    python eval/pfid.py --model titok-l32 --data /data/imagenet/val --alphas 0.1,0.3,0.5 \\
        --deltas 10,50,100 --seed 0 --out outputs/pfid_titok_l32

See eval/README.md for the published protocols and where the Inception weights come from.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vistok.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["eval", "pfid", *sys.argv[1:]]))
