"""Stand-ins for the slow parts of evaluation, for tests of the plumbing (caching, gathering,
reports) where the Inception network's numbers do not matter."""
import torch
import torch.nn.functional as F

DIM = 64


class FakeInception:
    """Deterministic 64-d "features" of uint8 images (a fixed random projection of an 8x8 thumbnail),
    with the ``InceptionFeatures`` call/describe interface; counts the images it sees."""

    def __init__(self, with_logits: bool = False):
        gen = torch.Generator().manual_seed(1234)
        self.projection = torch.randn(3 * 8 * 8, DIM, generator=gen, dtype=torch.float64) / 8
        self.with_logits = with_logits
        self.seen = 0

    def __call__(self, images: torch.Tensor):
        assert images.dtype == torch.uint8 and images.dim() == 4
        self.seen += images.shape[0]
        thumb = F.adaptive_avg_pool2d(images.double() / 255, 8).flatten(1)
        feats = torch.tanh(thumb @ self.projection).float()
        out = {"2048": feats}
        if self.with_logits:
            out["logits_unbiased"] = feats[:, :10] * 5
        return out

    def describe(self):
        return {"name": "fake", "layer": "2048", "weights_sha256": "fake"}
