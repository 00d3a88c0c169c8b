"""`python tests/helpers/train_fake_inception.py RECIPE [overrides]` (or under torchrun): trains
with the engine, its periodic rFID scored by the fake Inception of tests/metrics/fakes.py."""
import sys

from tests.metrics.fakes import FakeInception
from vistok.engine import periodic_rfid
from vistok.engine.train import main

if __name__ == "__main__":
    periodic_rfid.load_inception = lambda device: FakeInception()
    sys.exit(main(sys.argv[1:]))
