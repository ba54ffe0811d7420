"""The compute core stays free of Qt; torch is not imported at plugin start-up."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6")
CORE = ["napari_medseg", "napari_medseg.io", "napari_medseg.sample", "napari_medseg.layers",
        "napari_medseg.case", "napari_medseg.cli", "napari_medseg.contrasts",
        "napari_medseg._reader", "napari_medseg._writer", "napari_medseg._sample_data",
        "napari_medseg.interactive", "napari_medseg.export", "napari_medseg.cohort"]


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    return set(result.stdout.split())


def test_core_imports_no_qt_and_no_torch():
    loaded = _loaded_after("\n".join(f"import {name}" for name in CORE))
    assert not {m for m in loaded if m.split(".")[0] in QT_MODULES}
    assert "torch" not in loaded


def test_cli_batch_commands_run_without_qt(tmp_path):
    sample_dir = tmp_path / "cases"
    loaded = _loaded_after(
        "from napari_medseg.cli import main\n"
        f"assert main(['sample', r'{sample_dir}', '--spacing', '4']) == 0\n"
        f"assert main(['info', r'{sample_dir / 'medseg_000000_t1.nii.gz'}']) == 0")
    assert not {m for m in loaded if m.split(".")[0] in QT_MODULES}


def test_import_linter_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    assert Path(exe).exists(), "import-linter is missing: install the [testing] extra"
    result = subprocess.run([exe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Compute core stays Qt-free KEPT" in result.stdout
