"""EnCodec converters: the official ``encodec`` package's key layout (checked against its real key
list, below) and transformers' layout load strictly and reproduce the model; mismatches name keys;
an official ``.th`` file goes through the zoo."""
import re

import pytest
import torch
import yaml

from audiotok.models.encodec import EnCodec, EnCodecConfig
from audiotok.models.encodec.convert import (
    convert_encodec_state_dict, detect_layout, load_encodec_state_dict, to_official_state_dict,
)
from tests.audio.test_encodec import tiny_config, tiny_model
from vistok.hub.catalogue import get_card
from vistok.hub.loading import convert_card, load_tokenizer
from vistok.models.state_dict import CheckpointMismatch, check_fit, read_state_dict

# The state-dict keys and shapes of the released architectures, as encodec 0.1.1 builds them
# (EncodecModel.encodec_model_24khz / _48khz(pretrained=False).state_dict()); every level repeats
# level 0's codebook keys.
OFFICIAL_24KHZ = {  # 252 keys; codebook keys of level 0 only (the package has 32 levels)
    'encoder.model.0.conv.conv.bias': (32,),
    'encoder.model.0.conv.conv.weight_g': (32, 1, 1),
    'encoder.model.0.conv.conv.weight_v': (32, 1, 7),
    'encoder.model.1.block.1.conv.conv.bias': (16,),
    'encoder.model.1.block.1.conv.conv.weight_g': (16, 1, 1),
    'encoder.model.1.block.1.conv.conv.weight_v': (16, 32, 3),
    'encoder.model.1.block.3.conv.conv.bias': (32,),
    'encoder.model.1.block.3.conv.conv.weight_g': (32, 1, 1),
    'encoder.model.1.block.3.conv.conv.weight_v': (32, 16, 1),
    'encoder.model.1.shortcut.conv.conv.bias': (32,),
    'encoder.model.1.shortcut.conv.conv.weight_g': (32, 1, 1),
    'encoder.model.1.shortcut.conv.conv.weight_v': (32, 32, 1),
    'encoder.model.3.conv.conv.bias': (64,),
    'encoder.model.3.conv.conv.weight_g': (64, 1, 1),
    'encoder.model.3.conv.conv.weight_v': (64, 32, 4),
    'encoder.model.4.block.1.conv.conv.bias': (32,),
    'encoder.model.4.block.1.conv.conv.weight_g': (32, 1, 1),
    'encoder.model.4.block.1.conv.conv.weight_v': (32, 64, 3),
    'encoder.model.4.block.3.conv.conv.bias': (64,),
    'encoder.model.4.block.3.conv.conv.weight_g': (64, 1, 1),
    'encoder.model.4.block.3.conv.conv.weight_v': (64, 32, 1),
    'encoder.model.4.shortcut.conv.conv.bias': (64,),
    'encoder.model.4.shortcut.conv.conv.weight_g': (64, 1, 1),
    'encoder.model.4.shortcut.conv.conv.weight_v': (64, 64, 1),
    'encoder.model.6.conv.conv.bias': (128,),
    'encoder.model.6.conv.conv.weight_g': (128, 1, 1),
    'encoder.model.6.conv.conv.weight_v': (128, 64, 8),
    'encoder.model.7.block.1.conv.conv.bias': (64,),
    'encoder.model.7.block.1.conv.conv.weight_g': (64, 1, 1),
    'encoder.model.7.block.1.conv.conv.weight_v': (64, 128, 3),
    'encoder.model.7.block.3.conv.conv.bias': (128,),
    'encoder.model.7.block.3.conv.conv.weight_g': (128, 1, 1),
    'encoder.model.7.block.3.conv.conv.weight_v': (128, 64, 1),
    'encoder.model.7.shortcut.conv.conv.bias': (128,),
    'encoder.model.7.shortcut.conv.conv.weight_g': (128, 1, 1),
    'encoder.model.7.shortcut.conv.conv.weight_v': (128, 128, 1),
    'encoder.model.9.conv.conv.bias': (256,),
    'encoder.model.9.conv.conv.weight_g': (256, 1, 1),
    'encoder.model.9.conv.conv.weight_v': (256, 128, 10),
    'encoder.model.10.block.1.conv.conv.bias': (128,),
    'encoder.model.10.block.1.conv.conv.weight_g': (128, 1, 1),
    'encoder.model.10.block.1.conv.conv.weight_v': (128, 256, 3),
    'encoder.model.10.block.3.conv.conv.bias': (256,),
    'encoder.model.10.block.3.conv.conv.weight_g': (256, 1, 1),
    'encoder.model.10.block.3.conv.conv.weight_v': (256, 128, 1),
    'encoder.model.10.shortcut.conv.conv.bias': (256,),
    'encoder.model.10.shortcut.conv.conv.weight_g': (256, 1, 1),
    'encoder.model.10.shortcut.conv.conv.weight_v': (256, 256, 1),
    'encoder.model.12.conv.conv.bias': (512,),
    'encoder.model.12.conv.conv.weight_g': (512, 1, 1),
    'encoder.model.12.conv.conv.weight_v': (512, 256, 16),
    'encoder.model.13.lstm.weight_ih_l0': (2048, 512),
    'encoder.model.13.lstm.weight_hh_l0': (2048, 512),
    'encoder.model.13.lstm.bias_ih_l0': (2048,),
    'encoder.model.13.lstm.bias_hh_l0': (2048,),
    'encoder.model.13.lstm.weight_ih_l1': (2048, 512),
    'encoder.model.13.lstm.weight_hh_l1': (2048, 512),
    'encoder.model.13.lstm.bias_ih_l1': (2048,),
    'encoder.model.13.lstm.bias_hh_l1': (2048,),
    'encoder.model.15.conv.conv.bias': (128,),
    'encoder.model.15.conv.conv.weight_g': (128, 1, 1),
    'encoder.model.15.conv.conv.weight_v': (128, 512, 7),
    'quantizer.vq.layers.0._codebook.inited': (1,),
    'quantizer.vq.layers.0._codebook.cluster_size': (1024,),
    'quantizer.vq.layers.0._codebook.embed': (1024, 128),
    'quantizer.vq.layers.0._codebook.embed_avg': (1024, 128),
    'decoder.model.0.conv.conv.bias': (512,),
    'decoder.model.0.conv.conv.weight_g': (512, 1, 1),
    'decoder.model.0.conv.conv.weight_v': (512, 128, 7),
    'decoder.model.1.lstm.weight_ih_l0': (2048, 512),
    'decoder.model.1.lstm.weight_hh_l0': (2048, 512),
    'decoder.model.1.lstm.bias_ih_l0': (2048,),
    'decoder.model.1.lstm.bias_hh_l0': (2048,),
    'decoder.model.1.lstm.weight_ih_l1': (2048, 512),
    'decoder.model.1.lstm.weight_hh_l1': (2048, 512),
    'decoder.model.1.lstm.bias_ih_l1': (2048,),
    'decoder.model.1.lstm.bias_hh_l1': (2048,),
    'decoder.model.3.convtr.convtr.bias': (256,),
    'decoder.model.3.convtr.convtr.weight_g': (512, 1, 1),
    'decoder.model.3.convtr.convtr.weight_v': (512, 256, 16),
    'decoder.model.4.block.1.conv.conv.bias': (128,),
    'decoder.model.4.block.1.conv.conv.weight_g': (128, 1, 1),
    'decoder.model.4.block.1.conv.conv.weight_v': (128, 256, 3),
    'decoder.model.4.block.3.conv.conv.bias': (256,),
    'decoder.model.4.block.3.conv.conv.weight_g': (256, 1, 1),
    'decoder.model.4.block.3.conv.conv.weight_v': (256, 128, 1),
    'decoder.model.4.shortcut.conv.conv.bias': (256,),
    'decoder.model.4.shortcut.conv.conv.weight_g': (256, 1, 1),
    'decoder.model.4.shortcut.conv.conv.weight_v': (256, 256, 1),
    'decoder.model.6.convtr.convtr.bias': (128,),
    'decoder.model.6.convtr.convtr.weight_g': (256, 1, 1),
    'decoder.model.6.convtr.convtr.weight_v': (256, 128, 10),
    'decoder.model.7.block.1.conv.conv.bias': (64,),
    'decoder.model.7.block.1.conv.conv.weight_g': (64, 1, 1),
    'decoder.model.7.block.1.conv.conv.weight_v': (64, 128, 3),
    'decoder.model.7.block.3.conv.conv.bias': (128,),
    'decoder.model.7.block.3.conv.conv.weight_g': (128, 1, 1),
    'decoder.model.7.block.3.conv.conv.weight_v': (128, 64, 1),
    'decoder.model.7.shortcut.conv.conv.bias': (128,),
    'decoder.model.7.shortcut.conv.conv.weight_g': (128, 1, 1),
    'decoder.model.7.shortcut.conv.conv.weight_v': (128, 128, 1),
    'decoder.model.9.convtr.convtr.bias': (64,),
    'decoder.model.9.convtr.convtr.weight_g': (128, 1, 1),
    'decoder.model.9.convtr.convtr.weight_v': (128, 64, 8),
    'decoder.model.10.block.1.conv.conv.bias': (32,),
    'decoder.model.10.block.1.conv.conv.weight_g': (32, 1, 1),
    'decoder.model.10.block.1.conv.conv.weight_v': (32, 64, 3),
    'decoder.model.10.block.3.conv.conv.bias': (64,),
    'decoder.model.10.block.3.conv.conv.weight_g': (64, 1, 1),
    'decoder.model.10.block.3.conv.conv.weight_v': (64, 32, 1),
    'decoder.model.10.shortcut.conv.conv.bias': (64,),
    'decoder.model.10.shortcut.conv.conv.weight_g': (64, 1, 1),
    'decoder.model.10.shortcut.conv.conv.weight_v': (64, 64, 1),
    'decoder.model.12.convtr.convtr.bias': (32,),
    'decoder.model.12.convtr.convtr.weight_g': (64, 1, 1),
    'decoder.model.12.convtr.convtr.weight_v': (64, 32, 4),
    'decoder.model.13.block.1.conv.conv.bias': (16,),
    'decoder.model.13.block.1.conv.conv.weight_g': (16, 1, 1),
    'decoder.model.13.block.1.conv.conv.weight_v': (16, 32, 3),
    'decoder.model.13.block.3.conv.conv.bias': (32,),
    'decoder.model.13.block.3.conv.conv.weight_g': (32, 1, 1),
    'decoder.model.13.block.3.conv.conv.weight_v': (32, 16, 1),
    'decoder.model.13.shortcut.conv.conv.bias': (32,),
    'decoder.model.13.shortcut.conv.conv.weight_g': (32, 1, 1),
    'decoder.model.13.shortcut.conv.conv.weight_v': (32, 32, 1),
    'decoder.model.15.conv.conv.bias': (1,),
    'decoder.model.15.conv.conv.weight_g': (1, 1, 1),
    'decoder.model.15.conv.conv.weight_v': (1, 32, 7),
}
OFFICIAL_48KHZ = {  # 224 keys; codebook keys of level 0 only (the package has 16 levels)
    'encoder.model.0.conv.conv.weight': (32, 2, 7),
    'encoder.model.0.conv.conv.bias': (32,),
    'encoder.model.0.conv.norm.weight': (32,),
    'encoder.model.0.conv.norm.bias': (32,),
    'encoder.model.1.block.1.conv.conv.weight': (16, 32, 3),
    'encoder.model.1.block.1.conv.conv.bias': (16,),
    'encoder.model.1.block.1.conv.norm.weight': (16,),
    'encoder.model.1.block.1.conv.norm.bias': (16,),
    'encoder.model.1.block.3.conv.conv.weight': (32, 16, 1),
    'encoder.model.1.block.3.conv.conv.bias': (32,),
    'encoder.model.1.block.3.conv.norm.weight': (32,),
    'encoder.model.1.block.3.conv.norm.bias': (32,),
    'encoder.model.1.shortcut.conv.conv.weight': (32, 32, 1),
    'encoder.model.1.shortcut.conv.conv.bias': (32,),
    'encoder.model.1.shortcut.conv.norm.weight': (32,),
    'encoder.model.1.shortcut.conv.norm.bias': (32,),
    'encoder.model.3.conv.conv.weight': (64, 32, 4),
    'encoder.model.3.conv.conv.bias': (64,),
    'encoder.model.3.conv.norm.weight': (64,),
    'encoder.model.3.conv.norm.bias': (64,),
    'encoder.model.4.block.1.conv.conv.weight': (32, 64, 3),
    'encoder.model.4.block.1.conv.conv.bias': (32,),
    'encoder.model.4.block.1.conv.norm.weight': (32,),
    'encoder.model.4.block.1.conv.norm.bias': (32,),
    'encoder.model.4.block.3.conv.conv.weight': (64, 32, 1),
    'encoder.model.4.block.3.conv.conv.bias': (64,),
    'encoder.model.4.block.3.conv.norm.weight': (64,),
    'encoder.model.4.block.3.conv.norm.bias': (64,),
    'encoder.model.4.shortcut.conv.conv.weight': (64, 64, 1),
    'encoder.model.4.shortcut.conv.conv.bias': (64,),
    'encoder.model.4.shortcut.conv.norm.weight': (64,),
    'encoder.model.4.shortcut.conv.norm.bias': (64,),
    'encoder.model.6.conv.conv.weight': (128, 64, 8),
    'encoder.model.6.conv.conv.bias': (128,),
    'encoder.model.6.conv.norm.weight': (128,),
    'encoder.model.6.conv.norm.bias': (128,),
    'encoder.model.7.block.1.conv.conv.weight': (64, 128, 3),
    'encoder.model.7.block.1.conv.conv.bias': (64,),
    'encoder.model.7.block.1.conv.norm.weight': (64,),
    'encoder.model.7.block.1.conv.norm.bias': (64,),
    'encoder.model.7.block.3.conv.conv.weight': (128, 64, 1),
    'encoder.model.7.block.3.conv.conv.bias': (128,),
    'encoder.model.7.block.3.conv.norm.weight': (128,),
    'encoder.model.7.block.3.conv.norm.bias': (128,),
    'encoder.model.7.shortcut.conv.conv.weight': (128, 128, 1),
    'encoder.model.7.shortcut.conv.conv.bias': (128,),
    'encoder.model.7.shortcut.conv.norm.weight': (128,),
    'encoder.model.7.shortcut.conv.norm.bias': (128,),
    'encoder.model.9.conv.conv.weight': (256, 128, 10),
    'encoder.model.9.conv.conv.bias': (256,),
    'encoder.model.9.conv.norm.weight': (256,),
    'encoder.model.9.conv.norm.bias': (256,),
    'encoder.model.10.block.1.conv.conv.weight': (128, 256, 3),
    'encoder.model.10.block.1.conv.conv.bias': (128,),
    'encoder.model.10.block.1.conv.norm.weight': (128,),
    'encoder.model.10.block.1.conv.norm.bias': (128,),
    'encoder.model.10.block.3.conv.conv.weight': (256, 128, 1),
    'encoder.model.10.block.3.conv.conv.bias': (256,),
    'encoder.model.10.block.3.conv.norm.weight': (256,),
    'encoder.model.10.block.3.conv.norm.bias': (256,),
    'encoder.model.10.shortcut.conv.conv.weight': (256, 256, 1),
    'encoder.model.10.shortcut.conv.conv.bias': (256,),
    'encoder.model.10.shortcut.conv.norm.weight': (256,),
    'encoder.model.10.shortcut.conv.norm.bias': (256,),
    'encoder.model.12.conv.conv.weight': (512, 256, 16),
    'encoder.model.12.conv.conv.bias': (512,),
    'encoder.model.12.conv.norm.weight': (512,),
    'encoder.model.12.conv.norm.bias': (512,),
    'encoder.model.13.lstm.weight_ih_l0': (2048, 512),
    'encoder.model.13.lstm.weight_hh_l0': (2048, 512),
    'encoder.model.13.lstm.bias_ih_l0': (2048,),
    'encoder.model.13.lstm.bias_hh_l0': (2048,),
    'encoder.model.13.lstm.weight_ih_l1': (2048, 512),
    'encoder.model.13.lstm.weight_hh_l1': (2048, 512),
    'encoder.model.13.lstm.bias_ih_l1': (2048,),
    'encoder.model.13.lstm.bias_hh_l1': (2048,),
    'encoder.model.15.conv.conv.weight': (128, 512, 7),
    'encoder.model.15.conv.conv.bias': (128,),
    'encoder.model.15.conv.norm.weight': (128,),
    'encoder.model.15.conv.norm.bias': (128,),
    'quantizer.vq.layers.0._codebook.inited': (1,),
    'quantizer.vq.layers.0._codebook.cluster_size': (1024,),
    'quantizer.vq.layers.0._codebook.embed': (1024, 128),
    'quantizer.vq.layers.0._codebook.embed_avg': (1024, 128),
    'decoder.model.0.conv.conv.weight': (512, 128, 7),
    'decoder.model.0.conv.conv.bias': (512,),
    'decoder.model.0.conv.norm.weight': (512,),
    'decoder.model.0.conv.norm.bias': (512,),
    'decoder.model.1.lstm.weight_ih_l0': (2048, 512),
    'decoder.model.1.lstm.weight_hh_l0': (2048, 512),
    'decoder.model.1.lstm.bias_ih_l0': (2048,),
    'decoder.model.1.lstm.bias_hh_l0': (2048,),
    'decoder.model.1.lstm.weight_ih_l1': (2048, 512),
    'decoder.model.1.lstm.weight_hh_l1': (2048, 512),
    'decoder.model.1.lstm.bias_ih_l1': (2048,),
    'decoder.model.1.lstm.bias_hh_l1': (2048,),
    'decoder.model.3.convtr.convtr.weight': (512, 256, 16),
    'decoder.model.3.convtr.convtr.bias': (256,),
    'decoder.model.3.convtr.norm.weight': (256,),
    'decoder.model.3.convtr.norm.bias': (256,),
    'decoder.model.4.block.1.conv.conv.weight': (128, 256, 3),
    'decoder.model.4.block.1.conv.conv.bias': (128,),
    'decoder.model.4.block.1.conv.norm.weight': (128,),
    'decoder.model.4.block.1.conv.norm.bias': (128,),
    'decoder.model.4.block.3.conv.conv.weight': (256, 128, 1),
    'decoder.model.4.block.3.conv.conv.bias': (256,),
    'decoder.model.4.block.3.conv.norm.weight': (256,),
    'decoder.model.4.block.3.conv.norm.bias': (256,),
    'decoder.model.4.shortcut.conv.conv.weight': (256, 256, 1),
    'decoder.model.4.shortcut.conv.conv.bias': (256,),
    'decoder.model.4.shortcut.conv.norm.weight': (256,),
    'decoder.model.4.shortcut.conv.norm.bias': (256,),
    'decoder.model.6.convtr.convtr.weight': (256, 128, 10),
    'decoder.model.6.convtr.convtr.bias': (128,),
    'decoder.model.6.convtr.norm.weight': (128,),
    'decoder.model.6.convtr.norm.bias': (128,),
    'decoder.model.7.block.1.conv.conv.weight': (64, 128, 3),
    'decoder.model.7.block.1.conv.conv.bias': (64,),
    'decoder.model.7.block.1.conv.norm.weight': (64,),
    'decoder.model.7.block.1.conv.norm.bias': (64,),
    'decoder.model.7.block.3.conv.conv.weight': (128, 64, 1),
    'decoder.model.7.block.3.conv.conv.bias': (128,),
    'decoder.model.7.block.3.conv.norm.weight': (128,),
    'decoder.model.7.block.3.conv.norm.bias': (128,),
    'decoder.model.7.shortcut.conv.conv.weight': (128, 128, 1),
    'decoder.model.7.shortcut.conv.conv.bias': (128,),
    'decoder.model.7.shortcut.conv.norm.weight': (128,),
    'decoder.model.7.shortcut.conv.norm.bias': (128,),
    'decoder.model.9.convtr.convtr.weight': (128, 64, 8),
    'decoder.model.9.convtr.convtr.bias': (64,),
    'decoder.model.9.convtr.norm.weight': (64,),
    'decoder.model.9.convtr.norm.bias': (64,),
    'decoder.model.10.block.1.conv.conv.weight': (32, 64, 3),
    'decoder.model.10.block.1.conv.conv.bias': (32,),
    'decoder.model.10.block.1.conv.norm.weight': (32,),
    'decoder.model.10.block.1.conv.norm.bias': (32,),
    'decoder.model.10.block.3.conv.conv.weight': (64, 32, 1),
    'decoder.model.10.block.3.conv.conv.bias': (64,),
    'decoder.model.10.block.3.conv.norm.weight': (64,),
    'decoder.model.10.block.3.conv.norm.bias': (64,),
    'decoder.model.10.shortcut.conv.conv.weight': (64, 64, 1),
    'decoder.model.10.shortcut.conv.conv.bias': (64,),
    'decoder.model.10.shortcut.conv.norm.weight': (64,),
    'decoder.model.10.shortcut.conv.norm.bias': (64,),
    'decoder.model.12.convtr.convtr.weight': (64, 32, 4),
    'decoder.model.12.convtr.convtr.bias': (32,),
    'decoder.model.12.convtr.norm.weight': (32,),
    'decoder.model.12.convtr.norm.bias': (32,),
    'decoder.model.13.block.1.conv.conv.weight': (16, 32, 3),
    'decoder.model.13.block.1.conv.conv.bias': (16,),
    'decoder.model.13.block.1.conv.norm.weight': (16,),
    'decoder.model.13.block.1.conv.norm.bias': (16,),
    'decoder.model.13.block.3.conv.conv.weight': (32, 16, 1),
    'decoder.model.13.block.3.conv.conv.bias': (32,),
    'decoder.model.13.block.3.conv.norm.weight': (32,),
    'decoder.model.13.block.3.conv.norm.bias': (32,),
    'decoder.model.13.shortcut.conv.conv.weight': (32, 32, 1),
    'decoder.model.13.shortcut.conv.conv.bias': (32,),
    'decoder.model.13.shortcut.conv.norm.weight': (32,),
    'decoder.model.13.shortcut.conv.norm.bias': (32,),
    'decoder.model.15.conv.conv.weight': (2, 32, 7),
    'decoder.model.15.conv.conv.bias': (2,),
    'decoder.model.15.conv.norm.weight': (2,),
    'decoder.model.15.conv.norm.bias': (2,),
}


def official_keys(table, levels):
    """The full official key list: the table with its level-0 codebook keys repeated for every level."""
    out = {}
    for key, shape in table.items():
        if key.startswith("quantizer.vq.layers.0."):
            for q in range(levels):
                out[key.replace(".layers.0.", f".layers.{q}.")] = shape
        else:
            out[key] = shape
    return out


def transformers_layout(official):
    """The official keys renamed as transformers' ``EncodecModel`` names them (its modules mirror the
    official Sequentials; see eval/parity_encodec.py, which loads such a dict into transformers)."""
    out = {}
    for key, value in official.items():
        key = re.sub(r"^(encoder|decoder)\.model\.", r"\1.layers.", key)
        key = re.sub(r"\.(?:conv\.conv|convtr\.convtr)\.", ".conv.", key)
        key = re.sub(r"\.(?:conv|convtr)\.norm\.", ".norm.", key)
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        key = key.replace(".weight_v", ".parametrizations.weight.original1")
        key = re.sub(r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook.", key)
        out[key] = value
    return out


@pytest.mark.parametrize("preset,table,levels", [("24khz", OFFICIAL_24KHZ, 32), ("48khz", OFFICIAL_48KHZ, 16)])
def test_the_released_official_layout_fits_the_full_size_model(preset, table, levels):
    keys = official_keys(table, levels)
    with torch.device("meta"):
        model = EnCodec(EnCodecConfig.preset(preset))
        official = {k: torch.empty(shape) for k, shape in keys.items()}
    check_fit(model, convert_encodec_state_dict(official, model.config), preset)  # names and shapes
    back = to_official_state_dict(model.state_dict(), model.config)
    assert {k: tuple(v.shape) for k, v in back.items()} == keys
    check_fit(model, convert_encodec_state_dict(transformers_layout(official), model.config), preset)


@pytest.mark.parametrize("kind", ["causal", "segmented"])
def test_official_layout_loads_strictly_and_reproduces_the_model(kind):
    model = tiny_model(kind)
    official = to_official_state_dict(model.state_dict(), model.config)
    assert detect_layout(official) == "encodec"
    assert official["quantizer.vq.layers.0._codebook.inited"].dtype == torch.float32
    if kind == "causal":
        assert {"encoder.model.0.conv.conv.weight_g", "encoder.model.1.block.1.conv.conv.weight_v",
                "encoder.model.1.shortcut.conv.conv.bias", "encoder.model.7.lstm.weight_ih_l0",
                "encoder.model.9.conv.conv.bias", "decoder.model.1.lstm.weight_hh_l0",
                "decoder.model.3.convtr.convtr.weight_g", "decoder.model.4.block.3.conv.conv.bias",
                "decoder.model.9.conv.conv.weight_v"} <= set(official)
    else:
        assert {"encoder.model.0.conv.conv.weight", "encoder.model.0.conv.norm.weight",
                "decoder.model.6.convtr.convtr.weight", "decoder.model.6.convtr.norm.bias"} <= set(official)
    fresh = load_encodec_state_dict(EnCodec(tiny_config(kind)).eval(), official, "tiny official")
    x = torch.randn(2, *((2,) if kind == "segmented" else ()), 130)
    with torch.no_grad():
        codes = model.encode_with_scales(x)
        again = fresh.encode_with_scales(x)
        assert torch.equal(codes.ids, again.ids)
        assert torch.equal(model.decode(*codes), fresh.decode(*again))


def test_transformers_layout_converts_to_the_same_tensors():
    for kind in ("causal", "segmented"):
        model = tiny_model(kind)
        official = to_official_state_dict(model.state_dict(), model.config)
        hf = transformers_layout(official)
        assert detect_layout(hf) == "transformers"
        legacy = {k.replace(".parametrizations.weight.original0", ".weight_g")
                  .replace(".parametrizations.weight.original1", ".weight_v"): v for k, v in hf.items()}
        expected = convert_encodec_state_dict(official, model.config)
        for layout in (hf, legacy):
            converted = convert_encodec_state_dict(layout, model.config)
            assert set(converted) == set(expected)
            assert all(torch.equal(converted[k], expected[k]) for k in expected)


def test_mismatches_name_the_keys():
    model = tiny_model()
    official = to_official_state_dict(model.state_dict(), model.config)
    official.pop("decoder.model.3.convtr.convtr.weight_g")
    official["decoder.model.99.conv.conv.bias"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch, match=r"(?s)tiny: .*missing \(1\): decoder\.stages\.0\.up\.conv\."
                                                 r"parametrizations\.weight\.original0.*unexpected \(1\): "
                                                 r"decoder\.model\.99\.conv\.conv\.bias"):
        load_encodec_state_dict(EnCodec(tiny_config()), official, "tiny")
    extra = to_official_state_dict(model.state_dict(), model.config)
    extra["quantizer.vq.layers.4._codebook.embed"] = torch.zeros(16, 8)  # more levels than the config
    with pytest.raises(CheckpointMismatch, match=r"quantizer\.vq\.layers\.4\._codebook\.embed"):
        load_encodec_state_dict(EnCodec(tiny_config()), extra, "tiny")


def test_an_official_th_file_goes_through_the_zoo(tmp_path, monkeypatch):
    """weights_only load of a ``.th`` state dict, a card with a URL source, conversion, cache."""
    model = tiny_model()
    cards = tmp_path / "cards"
    cards.mkdir()
    card = dict(name="encodec-tiny-test", family="encodec", license="cc-by-nc-4.0", description="tiny",
                source=dict(url="https://example.org/encodec_tiny-00000000.th"), config=tiny_config().to_dict())
    (cards / "tiny.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "encodec_tiny-00000000.th"
    torch.save(to_official_state_dict(model.state_dict(), model.config), path)
    assert detect_layout(read_state_dict(path)) == "encodec"
    convert_card(get_card("encodec-tiny-test"), checkpoint=path)
    loaded = load_tokenizer("encodec-tiny-test")
    x = torch.randn(1, 90)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))
