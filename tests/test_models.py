"""Model folders: spec validation, checksums, safe loading, devices."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from napari_medseg.errors import InputError
from napari_medseg.models import choose_device, load_model, parse_spec, read_spec
from napari_medseg.models.unet import UNet3D
from tests.conftest import make_model_folder


def test_load_verifies_and_builds_every_fold(tiny_model_folder):
    model = load_model(tiny_model_folder)
    assert model.n_folds == 2 and model.spec.input_names == ("T1", "T1ce", "T2", "FLAIR")
    assert model.spec.n_classes == 4
    out = model.networks[0](torch.zeros(1, 4, 16, 16, 16))
    assert out.shape == (1, 4, 16, 16, 16)
    # folds are different networks
    a, b = (dict(n.named_parameters())["head.weight"] for n in model.networks)
    assert not torch.equal(a, b)


def test_save_model_writes_what_load_model_reads_in_half_precision(tmp_path):
    from dataclasses import replace

    from napari_medseg.models import save_model

    source = load_model("brats_unet", folds=[0])
    written = save_model(tmp_path / "copy", replace(source.spec, folds=()), source.networks)
    copy = load_model(tmp_path / "copy")
    assert copy.spec == written and len(written.folds) == 1
    assert (tmp_path / "copy" / "fold0.safetensors").stat().st_size < 2_000_000  # float16
    x = torch.randn(1, 4, 32, 32, 32)
    with torch.no_grad():  # the built-in weights are float16 already: nothing is lost
        torch.testing.assert_close(copy.networks[0](x), source.networks[0](x))


def test_spec_round_trips_through_json(tiny_model_folder):
    spec = read_spec(tiny_model_folder)
    assert parse_spec(json.loads(spec.to_json())) == spec


def test_corrupted_weight_file_is_refused(tiny_model_folder):
    path = tiny_model_folder / "fold1.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum mismatch"):
        load_model(tiny_model_folder)


def test_missing_weight_file_is_named(tiny_model_folder):
    (tiny_model_folder / "fold0.safetensors").unlink()
    with pytest.raises(InputError, match="fold0.safetensors.*missing"):
        load_model(tiny_model_folder)


def _edit_spec(folder, **changes):
    data = json.loads((folder / "model.json").read_bytes())
    data.update(changes)
    (folder / "model.json").write_text(json.dumps(data), encoding="utf-8")


def test_unknown_field_and_architecture_are_refused(tiny_model_folder):
    _edit_spec(tiny_model_folder, colour_scheme="pink")
    with pytest.raises(InputError, match="colour_scheme: unknown key"):
        load_model(tiny_model_folder)
    _edit_spec_clean = json.loads((tiny_model_folder / "model.json").read_bytes())
    del _edit_spec_clean["colour_scheme"]
    _edit_spec_clean["architecture"]["name"] = "transformer9000"
    (tiny_model_folder / "model.json").write_text(json.dumps(_edit_spec_clean), encoding="utf-8")
    with pytest.raises(InputError, match="architecture.name: Input should be 'unet3d'"):
        load_model(tiny_model_folder)


def test_weights_that_do_not_fit_the_architecture(tiny_model_folder):
    data = json.loads((tiny_model_folder / "model.json").read_bytes())
    data["architecture"]["args"]["widths"] = [6, 12]
    (tiny_model_folder / "model.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match="do not fit the architecture"):
        load_model(tiny_model_folder)


class _Exploit:
    def __reduce__(self):
        return (print, ("this pickle ran code",))


def test_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m", suffix=".pt", n_folds=1)
    path = folder / "fold0.pt"
    with open(path, "wb") as handle:
        pickle.dump({"weights": _Exploit()}, handle)
    from napari_medseg.models import sha256_of

    _edit_spec(folder, folds=[{"file": "fold0.pt", "sha256": sha256_of(path)}])
    with pytest.raises(InputError, match="refused"):
        load_model(folder)
    assert "this pickle ran code" not in capsys.readouterr().out


def test_plain_state_dict_and_torchscript_load(tmp_path):
    folder = make_model_folder(tmp_path / "pt", suffix=".pt", n_folds=1)
    assert load_model(folder).n_folds == 1
    network = UNet3D(4, 4, widths=(4, 8)).eval()
    scripted = torch.jit.script(network)
    ts_path = folder / "mine.ts"
    scripted.save(str(ts_path))
    from napari_medseg.models import sha256_of

    _edit_spec(folder, folds=[{"file": "mine.ts", "sha256": sha256_of(ts_path)}])
    with pytest.raises(InputError, match="TorchScript runs the code"):
        load_model(folder)  # not a safe format: only when the user trusts the folder
    loaded = load_model(folder, trust_code=True).networks[0]
    x = torch.randn(1, 4, 8, 8, 8)
    torch.testing.assert_close(loaded(x), network(x))


def test_unknown_model_name_lists_builtins():
    with pytest.raises(InputError, match="no built-in model of that name"):
        load_model("no_such_model")


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    best = "cuda" if torch.cuda.is_available() else \
        "mps" if torch.backends.mps.is_available() else "cpu"
    assert choose_device("auto").type == best  # CUDA, then MPS, then the CPU
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="'cuda' is not available.*cpu"):
            choose_device("cuda")
    with pytest.raises(InputError, match="unknown device"):
        choose_device("tpu")


def test_weight_paths_must_stay_inside_the_folder_and_carry_a_checksum(tmp_path):
    from napari_medseg.models import sha256_of

    folder = make_model_folder(tmp_path / "m", n_folds=1)
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((folder / "fold0.safetensors").read_bytes())
    for name in ("../elsewhere.safetensors", str(outside)):
        _edit_spec(folder, folds=[{"file": name, "sha256": sha256_of(outside)}])
        with pytest.raises(InputError, match="outside the model folder"):
            load_model(folder)
    (folder / "link.safetensors").symlink_to(outside)
    _edit_spec(folder, folds=[{"file": "link.safetensors", "sha256": sha256_of(outside)}])
    with pytest.raises(InputError, match="outside the model folder"):
        load_model(folder)
    for checksum in ("", None):
        fold = {"file": "fold0.safetensors"} if checksum is None else \
            {"file": "fold0.safetensors", "sha256": checksum}
        _edit_spec(folder, folds=[fold])
        with pytest.raises(InputError, match="has no sha256"):
            load_model(folder)


def test_cli_refuses_torchscript_unless_trusted(tmp_path, capsys):
    from napari_medseg.cli import main
    from napari_medseg.models import sha256_of
    from napari_medseg.sample import SAMPLE_CASE_ID, case_files
    from napari_medseg.sample._sample import SAMPLE_DIR

    folder = make_model_folder(tmp_path / "ts", n_folds=1, spacing=(6.0, 6.0, 6.0),
                               patch=(16, 16, 16))
    scripted = torch.jit.script(UNet3D(4, 4, widths=(4, 8)).eval())
    scripted.save(str(folder / "mine.ts"))
    _edit_spec(folder, folds=[{"file": "mine.ts", "sha256": sha256_of(folder / "mine.ts")}])
    images, _ = case_files(SAMPLE_DIR, SAMPLE_CASE_ID)
    command = ["predict", *map(str, images), "--model", str(folder), "--device", "cpu",
               "-o", str(tmp_path / "seg.nii.gz")]
    assert main(command) == 2
    assert "--trust-code" in capsys.readouterr().err and not (tmp_path / "seg.nii.gz").exists()
    assert main([*command, "--trust-code"]) == 0 and (tmp_path / "seg.nii.gz").exists()


def _nested(data: dict, path: str, value) -> dict:
    *parents, last = path.split("/")
    target = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


@pytest.mark.parametrize("path, value, place", [
    ("folds/0/loader", "evil.module", r"folds\[0\]\.loader: unknown key"),
    ("inputs/0/x", 1, r"inputs\[0\]\.x: unknown key"),
    ("architecture/module", "os.system", "architecture.module: unknown key"),
    ("architecture/args/widths", [1000000, 8], r"widths\[0\]: Input should be less"),
    ("architecture/args/widths", [5000, 8], r"widths\[0\]"),
    ("patch_size", [0, 16, 16], r"patch_size\[0\]: Input should be greater"),
    ("patch_size", [15, 16, 16], "multiple of 2"),
    ("patch_size", [4096, 16, 16], r"patch_size\[0\]: Input should be less"),
    ("patch_size", ["16", 16, 16], r"patch_size\[0\]: Input should be a valid integer"),
    ("spacing", [0, 6, 6], r"spacing\[0\]: Input should be greater"),
    ("spacing", [-6, 6, 6], r"spacing\[0\]: Input should be greater"),
    ("folds", "abc", "folds: Input should be a valid list"),
    ("inputs", 5, "inputs: Input should be a valid list"),
    ("architecture/args/in_channels", 3, "in_channels is 3 but there are 4 inputs"),
])
def test_spec_schema_refuses_bad_values_in_one_line_before_allocating(
        tiny_model_folder, path, value, place):
    data = _nested(json.loads((tiny_model_folder / "model.json").read_bytes()), path, value)
    (tiny_model_folder / "model.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match=place) as caught:
        load_model(tiny_model_folder)
    assert "\n" not in str(caught.value) and "model.json" in str(caught.value)


def test_spec_that_is_a_folder_or_not_an_object_is_refused(tmp_path, capsys):
    from napari_medseg.cli import main
    from napari_medseg.sample import SAMPLE_CASE_ID, case_files
    from napari_medseg.sample._sample import SAMPLE_DIR

    (tmp_path / "dir_model" / "model.json").mkdir(parents=True)
    with pytest.raises(InputError, match="not a model folder"):
        read_spec(tmp_path / "dir_model")
    (tmp_path / "list_model").mkdir()
    (tmp_path / "list_model" / "model.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="must hold a JSON object, not list"):
        read_spec(tmp_path / "list_model")
    images, _ = case_files(SAMPLE_DIR, SAMPLE_CASE_ID)
    assert main(["predict", *map(str, images), "--model", str(tmp_path / "list_model"),
                 "-o", str(tmp_path / "seg.nii.gz")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "JSON object" in error


def test_unet_convolutions_take_onednn_at_batch_one_with_the_same_output():
    """PyTorch's heuristic sends small batch-1 CPU convolutions to im2col
    (``slow_conv3d_forward``); ours runs oneDNN there, equal to ``F.conv3d``."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    network = UNet3D(13, 4, widths=(12, 24, 48)).eval()
    x = torch.randn(1, 13, 32, 32, 32)
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as run:
        ours = network(x)
    ops = {event.key for event in run.key_averages()}
    assert "aten::slow_conv3d_forward" not in ops and "aten::mkldnn_convolution" in ops
    conv = network.encoders[1][0]
    features = torch.randn(1, 12, 16, 16, 16)
    with torch.inference_mode():
        expected = torch.nn.functional.conv3d(features, conv.weight, None, conv.stride,
                                              conv.padding)
        assert torch.allclose(conv(features), expected, atol=1e-5)
        reference = torch.nn.Conv3d(13, 12, 3, padding=1, bias=False)
        reference.load_state_dict(network.encoders[0][0].state_dict())
        assert torch.allclose(network.encoders[0][0](x), reference(x), atol=1e-5)
    assert ours.shape == (1, 4, 32, 32, 32)


def _forward_with_plain_concatenation(network: UNet3D, x: torch.Tensor) -> torch.Tensor:
    """The U-Net's forward as it was written before `unet.joined`: ``torch.cat``."""
    skips = []
    for encoder, down in zip(network.encoders, network.downs):
        x = encoder(x)
        skips.append(x)
        x = down(x)
    skips.pop()
    for up, decoder in zip(network.ups, network.decoders):
        x = decoder(torch.cat([up(x), skips.pop()], dim=1))
    return network.head(x)


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_decoder_reads_its_joined_input_channels_last_under_bf16_only(precision):
    from contextlib import nullcontext

    from napari_medseg.models.device import cpu_has_native_bf16, place_network

    def is_channels_last(tensor):
        return tensor.is_contiguous(memory_format=torch.channels_last_3d) \
            and not tensor.is_contiguous()

    torch.manual_seed(0)
    network = UNet3D(4, 4, widths=(12, 24, 48)).eval()
    arithmetic = torch.bfloat16 if precision == "bfloat16" else None
    place_network(network, torch.device("cpu"), arithmetic)
    upsampled, joined = [], []
    for up, decoder in zip(network.ups, network.decoders):
        up.register_forward_hook(lambda _, __, out: upsampled.append(is_channels_last(out)))
        decoder[0].register_forward_pre_hook(
            lambda _, args: joined.append(is_channels_last(args[0])))
    x = torch.randn(2, 4, 16, 16, 16)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if arithmetic else nullcontext()
    with torch.inference_mode(), context:
        out = network(x)
        # under bf16 the concatenation keeps the upsampled half's layout: no reorder of
        # the full resolution. oneDNN's native bf16 kernels give channels-last there; a
        # CPU that emulates bf16 (AVX2 only) gives the standard layout. float32 as it was.
        assert joined == (upsampled if arithmetic else [False] * len(network.decoders))
        if arithmetic and cpu_has_native_bf16():
            assert all(joined)
        reference = _forward_with_plain_concatenation(network, x)
    assert torch.equal(out, reference)  # the same values, bit for bit
