"""Fine-tuning makes a new model version from an exported dataset, never touching the parent."""
from __future__ import annotations

import json

import pytest

from napari_medseg.errors import InputError
from napari_medseg.export import export_case, finetune
from napari_medseg.labels import label_names
from napari_medseg.models import load_model, sha256_of
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    for seed in (21, 22, 23):
        case = generate_case(seed, spacing=3.0)
        folder = export_case(case.volume, case.labels.data, "nnunet", root, case_id=f"c{seed}",
                             label_names=label_names(), dataset_name="Shifted").output
    return folder


def test_finetune_writes_new_version_with_parent(dataset, tiny_model_folder, tmp_path):
    weights_before = {p.name: sha256_of(p) for p in tiny_model_folder.glob("fold*")}
    progress = []
    result = run_to_end(finetune(tiny_model_folder, dataset, tmp_path / "tuned", steps=3,
                                 folds=[0]), progress.append)
    assert progress[-1].done == progress[-1].total == 3
    spec = json.loads((result.folder / "model.json").read_bytes())
    assert spec["version"] == "0.1.0" and spec["parent"]["version"] == "0.0.1"
    assert spec["parent"]["weights"][0]["sha256"] == weights_before["fold0.safetensors"]
    assert len(spec["folds"]) == 1 and set(spec["training"]["dice_before"]) == {"WT", "TC", "ET"}
    assert len(result.val_cases) == 1 and len(result.train_cases) == 2
    tuned = load_model(result.folder)  # checksums verified on load
    assert tuned.spec.version == "0.1.0"
    assert {p.name: sha256_of(p) for p in tiny_model_folder.glob("fold*")} == weights_before
    with pytest.raises(InputError, match="never writes into the original"):
        run_to_end(finetune(tiny_model_folder, dataset, tiny_model_folder, steps=1))
    with pytest.raises(InputError, match="not empty"):
        run_to_end(finetune(tiny_model_folder, dataset, result.folder, steps=1))


def test_finetune_needs_two_cases(tiny_model_folder, tmp_path):
    case = generate_case(21, spacing=3.0)
    folder = export_case(case.volume, case.labels.data, "nnunet", tmp_path, case_id="only",
                         label_names=label_names(), dataset_name="One").output
    with pytest.raises(InputError, match="at least 2"):
        run_to_end(finetune(tiny_model_folder, folder, tmp_path / "out", steps=1))


def test_finetune_command_writes_a_loadable_child_and_refuses_a_bad_dataset(
        dataset, tiny_model_folder, tmp_path, capsys):
    from napari_medseg.cli import main

    out = tmp_path / "tuned_cli"
    assert main(["finetune", str(dataset), "--model", str(tiny_model_folder), "-o", str(out),
                 "--steps", "2", "--folds", "0", "--device", "cpu", "--seed", "3"]) == 0
    tuned = load_model(out)
    assert tuned.spec.parent["version"] == "0.0.1" and tuned.n_folds == 1
    assert "validation Dice before" in capsys.readouterr().out
    assert main(["finetune", str(tmp_path / "missing"), "--model", str(tiny_model_folder),
                 "-o", str(tmp_path / "x"), "--steps", "1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error


def test_dice_ce_loss_equals_monais_dice_ce_loss():
    """Our training loss against MONAI's DiceCELoss with the same definition: softmax,
    one-hot target, background excluded from Dice, batch-wise Dice, smoothing 1e-5."""
    import torch
    from monai.losses import DiceCELoss

    from napari_medseg.models.training import dice_ce_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 7, 5, requires_grad=True)
    target = torch.randint(0, 4, (2, 6, 7, 5))
    reference = DiceCELoss(softmax=True, to_onehot_y=True, include_background=False,
                           batch=True, smooth_nr=1e-5, smooth_dr=1e-5)
    ours = dice_ce_loss(logits, target)
    theirs = reference(logits, target[:, None])
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    ours.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
