"""The inference engine: equal to MONAI, cancellable, resampling, ensembles, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference

from napari_medseg.errors import InputError
from napari_medseg.inference import inputs_per_pass, predict, sliding_window, window_starts
from napari_medseg.io import Volume
from napari_medseg.models import load_model
from napari_medseg.models.loading import LoadedModel
from napari_medseg.models.normalise import normalise_image
from napari_medseg.progress import run_to_end


@pytest.mark.parametrize("shape, patch, overlap", [
    ((2, 40, 37, 29), (16, 16, 16), 0.5), ((2, 20, 50, 16), (24, 24, 24), 0.25),
    ((2, 33, 33, 33), (16, 24, 16), 0.6), ((2, 10, 12, 9), (16, 16, 16), 0.5)])
def test_sliding_window_equals_monai(shape, patch, overlap):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 3, padding=1), torch.nn.Softmax(1))
    image = torch.randn(*shape)
    ours = run_to_end(sliding_window(network, image, patch, 3, overlap=overlap, batch_size=3))
    with torch.inference_mode():
        reference = sliding_window_inference(image[None], patch, 3, network, overlap=overlap,
                                             mode="gaussian")[0]
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)


def test_blank_windows_run_once_and_still_equal_monai():
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 3, padding=1), torch.nn.Softmax(1))
    calls = []

    def counted(batch):
        calls.append(len(batch))
        return network(batch)

    image = torch.zeros(2, 64, 64, 64)
    image[:, 24:40, 20:44, 26:38] = torch.randn(2, 16, 24, 12)  # skull-stripped: zero outside
    ours = run_to_end(sliding_window(counted, image, (16, 16, 16), 3, batch_size=4))
    with torch.inference_mode():
        reference = sliding_window_inference(image[None], (16, 16, 16), 4, network,
                                             overlap=0.5, mode="gaussian")[0]
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)
    n_windows = len(window_starts((64, 64, 64), (16, 16, 16), 0.5))
    assert sum(calls) < n_windows / 2


def test_windows_cover_every_voxel():
    size, patch = (50, 23, 37), (16, 16, 16)
    covered = np.zeros(size, bool)
    for start in window_starts(size, patch, 0.5):
        covered[tuple(slice(s, s + p) for s, p in zip(start, patch))] = True
    assert covered.all()


def test_closing_the_generator_cancels_between_batches():
    calls = []

    def network(batch):
        calls.append(len(batch))
        return torch.zeros(batch.shape[0], 2, *batch.shape[2:])

    steps = sliding_window(network, torch.ones(1, 64, 64, 64), (16, 16, 16), 2, batch_size=2)
    first = next(steps)
    assert first.total > 10
    steps.close()
    assert len(calls) == 1


class _Threshold(torch.nn.Module):
    """A toy 'network': ED where normalised FLAIR > 1, NCR where T1ce < -1."""

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 4, *x.shape[2:])
        logits[:, 0] = 0.5
        logits[:, 2] = (x[:, 3] > 1.0).float()
        logits[:, 1] = (x[:, 1] < -1.0).float() * 2
        return logits * 10


def _model_with(network, spec_folder, n=1):
    spec = load_model(spec_folder).spec
    return LoadedModel(spec=spec, folder=spec_folder, networks=(network,) * n)


def test_pipeline_normalises_windows_and_argmaxes(tiny_model_folder, small_case):
    model = _model_with(_Threshold(), tiny_model_folder)
    prediction = run_to_end(predict(model, small_case.volume, device="cpu"))
    image = normalise_image(small_case.volume.data, ["zscore_nonzero"] * 4)
    expected = np.zeros(small_case.volume.shape, np.uint8)
    expected[image[3] > 1.0] = 2
    expected[image[1] < -1.0] = 1
    assert (prediction.labels == expected).mean() > 0.999
    np.testing.assert_allclose(prediction.probabilities.sum(0), 1.0, atol=1e-5)


def test_channels_are_matched_by_name_not_order(tiny_model_folder, small_case):
    model = _model_with(_Threshold(), tiny_model_folder)
    volume = small_case.volume
    shuffled = Volume(volume.data[[3, 2, 1, 0]], volume.affine, ("FLAIR", "T2", "T1ce", "T1"))
    a = run_to_end(predict(model, volume, device="cpu")).labels
    b = run_to_end(predict(model, shuffled, device="cpu")).labels
    np.testing.assert_array_equal(a, b)


def test_resamples_to_model_spacing_and_back(tiny_model_folder):
    from napari_medseg.sample import generate_case

    case = generate_case(12, spacing=2.0)
    model = load_model(tiny_model_folder)
    prediction = run_to_end(predict(model, case.volume, device="cpu"))
    assert prediction.labels.shape == case.volume.shape
    assert prediction.probabilities.shape == (4, *case.volume.shape)


def test_labels_are_the_argmax_of_the_probabilities_resampled_to_the_case(
        coarse_model_folder):
    """The labels are resampled only in the case's tiles where a class other than
    background may win: they are the argmax of the whole resampled volume (but for ties
    within float rounding), with or without the probabilities kept."""
    from napari_medseg.labels import most_probable
    from napari_medseg.sample import generate_case

    case = generate_case(12, spacing=2.0)  # the model works at 6 mm
    model = load_model(coarse_model_folder)
    kept = run_to_end(predict(model, case.volume, device="cpu"))
    labels_only = run_to_end(predict(model, case.volume, device="cpu",
                                     keep_probabilities=False)).labels
    np.testing.assert_array_equal(labels_only, kept.labels)
    dense = most_probable(kept.probabilities)
    top_two = np.sort(kept.probabilities, axis=0)[-2:]
    differ = dense != kept.labels
    assert (top_two[1] - top_two[0])[differ].max(initial=0.0) < 1e-5  # ties only
    assert differ.mean() < 1e-5 and (dense > 0).sum() > 1000


def test_folds_are_averaged(tiny_model_folder, small_case):
    model = load_model(tiny_model_folder)
    both = run_to_end(predict(model, small_case.volume, device="cpu")).probabilities
    singles = [run_to_end(predict(LoadedModel(model.spec, model.folder, (net,)),
                                  small_case.volume, device="cpu")).probabilities
               for net in model.networks]
    np.testing.assert_allclose(both, np.mean(singles, axis=0), atol=1e-5)


def test_missing_contrast_is_named(tiny_model_folder, small_case):
    volume = small_case.volume
    three = Volume(volume.data[:3], volume.affine, volume.channel_names[:3])
    with pytest.raises(InputError, match="lacks FLAIR"):
        run_to_end(predict(load_model(tiny_model_folder), three))


def test_nan_case_is_refused(tiny_model_folder, small_case):
    data = small_case.volume.data.copy()
    data[0, 5, 5, 5] = np.nan
    volume = Volume(data, small_case.volume.affine, small_case.volume.channel_names)
    with pytest.raises(InputError, match="NaN"):
        run_to_end(predict(load_model(tiny_model_folder), volume))


def test_case_too_large_for_memory_is_refused(tiny_model_folder, small_case, monkeypatch):
    from napari_medseg.inference import _predict

    monkeypatch.setattr(_predict, "available_memory_bytes", lambda: 10_000_000)
    with pytest.raises(InputError, match="needs about .* GiB .* only"):
        run_to_end(predict(load_model(tiny_model_folder), small_case.volume))


def test_out_of_memory_retries_with_smaller_batches_once_for_all_folds(tiny_model_folder,
                                                                       small_case):
    class Fussy(_Threshold):
        refused = 0

        def forward(self, x):
            if x.shape[0] > 1:
                Fussy.refused += 1
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().forward(x)

    model = _model_with(Fussy(), tiny_model_folder, n=3)
    prediction = run_to_end(predict(model, small_case.volume, device="cpu", batch_size=4))
    reference = run_to_end(predict(_model_with(_Threshold(), tiny_model_folder),
                                   small_case.volume, device="cpu"))
    np.testing.assert_array_equal(prediction.labels, reference.labels)
    assert prediction.notes == ("GPU out of memory: retrying with batch size 2",
                                "GPU out of memory: retrying with batch size 1")
    assert Fussy.refused == 2  # the second and third folds start at batch size 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_out_of_memory_in_float16_continues_on_the_cpu_in_its_precision(tiny_model_folder,
                                                                        small_case):
    from napari_medseg.models.device import autocast_dtype, precision_name

    class NoRoomOnTheGpu(_Threshold):
        def forward(self, x):
            if x.is_cuda:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().forward(x)

    prediction = run_to_end(predict(_model_with(NoRoomOnTheGpu(), tiny_model_folder, n=2),
                                    small_case.volume, device="cuda", precision="float16"))
    reference = run_to_end(predict(_model_with(_Threshold(), tiny_model_folder),
                                   small_case.volume, device="cpu"))
    on_cpu = precision_name(autocast_dtype("auto", "cpu"))
    np.testing.assert_array_equal(prediction.labels, reference.labels)
    assert (prediction.device, prediction.precision) == ("cpu", on_cpu)
    assert prediction.notes[-1] == ("GPU out of memory at batch size 1: continuing on the CPU "
                                    f"in {on_cpu} (float16 is slow there)")


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, monkeypatch):
    from napari_medseg.models import device

    with_bf16, without = tmp_path / "amx", tmp_path / "epyc"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n",
                         encoding="utf-8")
    without.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n", encoding="utf-8")
    assert device.cpu_has_native_bf16(with_bf16) and not device.cpu_has_native_bf16(without)
    assert not device.cpu_has_native_bf16(tmp_path / "missing")
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: True)
    assert device.autocast_dtype("auto", "cpu") is torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: False)
    assert device.autocast_dtype("auto", "cpu") is None  # emulated bf16 is many times slower
    assert device.autocast_dtype("float32", "cpu") is None
    with pytest.raises(InputError, match="float16 is slow on the CPU"):
        device.autocast_dtype("float16", "cpu")


def test_bfloat16_chosen_on_a_cpu_that_emulates_it_is_warned_of(monkeypatch):
    from napari_medseg.models import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: False)
    warning = device.emulated_bf16_warning("bfloat16", "cpu")
    assert "emulated on this CPU" in warning and "choose auto or float32" in warning
    assert device.emulated_bf16_warning("auto", "cpu") is None  # auto takes float32 there
    assert device.emulated_bf16_warning("bfloat16", "cuda") is None
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *a: True)
    assert device.emulated_bf16_warning("bfloat16", "cpu") is None


def test_bfloat16_prediction_agrees_with_float32_where_float32_is_decisive(coarse_model_folder):
    from napari_medseg.sample import generate_case

    model = load_model(coarse_model_folder)
    volume = generate_case(5, spacing=3.0).volume
    full = run_to_end(predict(model, volume, device="cpu", precision="float32"))
    reduced = run_to_end(predict(model, volume, device="cpu", precision="bfloat16"))
    assert (full.precision, reduced.precision) == ("float32", "bfloat16")
    assert np.abs(full.probabilities - reduced.probabilities).max() < 0.03
    top2 = np.sort(full.probabilities, axis=0)[-2:]
    decisive = (top2[1] - top2[0]) > 0.05
    assert decisive.mean() > 0.3  # a random tiny network: many voxels are near ties
    assert (full.labels[decisive] == reduced.labels[decisive]).mean() > 0.999
    # the bf16 run stored the 3D weights channels-last (oneDNN's bf16 layout); a float32 run
    # afterwards computes what it did before
    weights = [p for p in model.networks[0].parameters() if p.ndim == 5]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last_3d)
                           for w in weights)
    again = run_to_end(predict(model, volume, device="cpu", precision="float32"))
    np.testing.assert_allclose(again.probabilities, full.probabilities, atol=1e-5)
    np.testing.assert_array_equal(again.labels, full.labels)


def test_cli_refuses_float16_on_the_cpu(tmp_path, capsys):
    from napari_medseg.cli import main
    from napari_medseg.sample import SAMPLE_CASE_ID, case_files
    from napari_medseg.sample._sample import SAMPLE_DIR

    images, _ = case_files(SAMPLE_DIR, SAMPLE_CASE_ID)
    assert main(["predict", *map(str, images), "--device", "cpu", "--precision", "float16",
                 "-o", str(tmp_path / "seg.nii.gz")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "float16 is slow on the CPU" in error


def test_normalisation_matches_the_definition_in_place_or_not(small_case):
    data = np.asarray(small_case.volume.data, dtype=np.float32)
    methods = ["zscore_nonzero", "zscore", "none", "zscore_nonzero"]
    fresh = normalise_image(data, methods)
    for index, method in enumerate(methods):  # float64 reference, written independently
        channel = data[index].astype(np.float64)
        if method == "none":
            expected = channel
        else:
            pool = channel[channel != 0] if method == "zscore_nonzero" else channel.ravel()
            expected = (channel - pool.mean()) / pool.std()
            if method == "zscore_nonzero":
                expected[channel == 0] = 0
        np.testing.assert_allclose(fresh[index], expected, atol=1e-4)
    owned = data.copy()
    result = normalise_image(owned, methods, in_place=True)
    assert result is owned and np.array_equal(result, fresh)  # the same arithmetic
    assert np.array_equal(data, np.asarray(small_case.volume.data, dtype=np.float32))
    with pytest.raises(TypeError, match="float32"):
        normalise_image(data.astype(np.float64), methods, in_place=True)


@pytest.mark.parametrize("model_spacing", [3.0, 4.5])  # the case's own grid, and resampled
def test_input_is_the_stacked_case_normalised_cropped_and_resampled(tiny_model_folder,
                                                                  small_case, model_spacing):
    """`prepare_input` reads one contrast at a time into a reused buffer; the result is
    what normalising the stacked float32 case, cropping it and resampling it gives, for a
    case kept in its stored integers, and the stacked case is never held (numpy's peak
    stays under its size)."""
    import dataclasses
    import tracemalloc

    import torch.nn.functional as F

    from napari_medseg.inference import prepare_input

    stored = np.round(np.asarray(small_case.volume.data) * 100).astype(np.int16)
    volume = Volume(stored[[2, 0, 3, 1]], small_case.volume.affine,
                    tuple(small_case.volume.channel_names[i] for i in (2, 0, 3, 1)))
    spec = load_model(tiny_model_folder).spec
    methods = ["zscore_nonzero", "zscore", "none", "zscore_nonzero"]
    spec = dataclasses.replace(spec, spacing=(model_spacing,) * 3, inputs=tuple(
        dataclasses.replace(item, normalization=method)
        for item, method in zip(spec.inputs, methods)))
    region = (slice(3, 40), slice(5, None), slice(None, 50))
    tracemalloc.start()
    ours = prepare_input(volume, spec, region)
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    in_model_order = stored.astype(np.float32)  # small_case's own order is the model's
    box = torch.from_numpy(normalise_image(in_model_order, methods)[(slice(None), *region)])
    grid = [round(n * 3.0 / model_spacing) for n in box.shape[1:]]
    expected = box if grid == list(box.shape[1:]) else F.interpolate(
        box[None], size=grid, mode="trilinear", align_corners=False)[0]
    assert ours.dtype == torch.float32 and torch.equal(ours, expected)
    assert numpy_peak < in_model_order.nbytes


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_windows_per_pass_follow_the_precision_on_the_cpu(tiny_model_folder, small_case,
                                                         precision):
    """By default a CPU pass holds `inputs_per_pass` windows for the network's precision
    (four times as many in bf16 as in float32), and the pass size does not change the
    result."""
    model = load_model(tiny_model_folder, folds=[0])
    network = model.networks[0]
    sizes = []

    def counted(x):
        sizes.append(x.shape[0])
        return network(x)

    counted.to = network.to  # placed (channels-last under bf16) as a module is
    # 3x3x2 windows, two passes in bf16: a CPU without native bf16 emulates it slowly
    volume = Volume(small_case.volume.data[..., :48], small_case.volume.affine,
                    small_case.volume.channel_names)
    chosen = run_to_end(predict(_model_with(counted, tiny_model_folder), volume,
                                device="cpu", precision=precision))
    dtype = None if precision == "float32" else torch.bfloat16
    per_pass = inputs_per_pass(model.spec.patch_size, "cpu", dtype)
    assert per_pass == (4 if dtype is None else 16)  # a 32^3 patch
    assert max(sizes) == per_pass and sizes.count(per_pass) >= len(sizes) - 2
    sizes.clear()
    single = run_to_end(predict(_model_with(counted, tiny_model_folder), volume,
                                device="cpu", precision=precision, batch_size=1))
    assert set(sizes) == {1}
    tolerance = 1e-5 if dtype is None else 2e-2
    np.testing.assert_allclose(chosen.probabilities, single.probabilities, atol=tolerance)
    assert (chosen.labels == single.labels).mean() > 0.999
