"""A private zoo for hub tests: tiny official-layout TiTok checkpoints, cards pointing at them,
a loopback HTTP server, a Hugging Face cache in a temp dir, and tokzoo's cache in a temp dir."""
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from tests.helpers import titok_reference as ref
from tests.models.test_titok import TINY, tiny_config


class Server:
    """Serves ``files[path] = bytes``; ``truncate`` paths announce the full length but send half."""

    def __init__(self):
        self.files, self.truncate, self.hits = {}, set(), {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in server.truncate else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def official_tiny():
    """(official state dict, its safetensors bytes, sha256) of a tiny two-stage TiTok."""
    state = ref.official_state_dict(dict(TINY, legacy=True), seed=3)
    return state


def safetensors_bytes(state, tmp_path):
    path = tmp_path / "blob.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """Point the catalogue at an extra card dir and tokzoo's cache at a temp dir; returns a
    function writing a card ``name`` with a given ``source`` mapping."""
    cards = tmp_path / "cards"
    cards.mkdir()
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TOKZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def write_card(name, source):
        card = dict(name=name, family="titok", description="tiny test tokenizer", source=source,
                    license="apache-2.0", converter="official", config=tiny_config(True).to_dict())
        (cards / f"{name}.yaml").write_text(yaml.safe_dump(card))
        return name

    write_card.cache = tmp_path / "cache"
    return write_card


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A Hugging Face hub cache in ``tmp_path/hf`` (blobs + refs/main + snapshots/<commit>), made
    the default cache; ``add(repo, filename, data)`` publishes a file."""
    import huggingface_hub.constants as constants

    root = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    commit = "0123456789abcdef0123456789abcdef01234567"

    def add(repo, filename, data: bytes):
        base = root / f"models--{repo.replace('/', '--')}"
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        (base / "refs").mkdir(exist_ok=True)
        (base / "refs" / "main").write_text(commit)
        link = base / "snapshots" / commit / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../..") / "blobs" / blob.name)
        return link

    add.root = root
    return add


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_model(state):
    from vistok.models.titok.convert import load_titok_state_dict
    from vistok.models.titok import TiTok

    return load_titok_state_dict(TiTok(tiny_config(True)), state, "reference").eval()


def images():
    from tests.models.test_titok import sample_images

    return sample_images()


@torch.inference_mode()
def same_outputs(a, b):
    x = images()
    ids_a, ids_b = a.encode(x), b.encode(x)
    return torch.equal(ids_a, ids_b) and torch.allclose(a.decode(ids_a), b.decode(ids_b), atol=1e-6)


@pytest.fixture
def fake_hub(hf_cache, monkeypatch):
    """A running ``FakeHub`` that huggingface_hub talks to (online), with the temp HF cache of ``hf_cache``."""
    import huggingface_hub.constants as constants

    from tests.hub.fake_hub import FakeHub

    hub = FakeHub()
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # tests/conftest.py sets it before the import
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TOKZOO_OFFLINE", raising=False)
    hub.cache = hf_cache.root
    yield hub
    hub.close()
