"""Export for retraining (NIfTI, zarr, nnU-Net v2), provenance, autosave, fine-tuning."""
from napari_medseg.export._autosave import (
    Recovery, autosave, content_fingerprint, discard_recovery, find_recovery, recovery_dir)
from napari_medseg.export._finetune import FinetuneResult, finetune, read_nnunet_dataset
from napari_medseg.export._formats import FORMATS, ExportResult, default_case_id, export_case
from napari_medseg.export._nnunet import append_case, dataset_folder
from napari_medseg.export._provenance import provenance_record

__all__ = ["FORMATS", "ExportResult", "FinetuneResult", "Recovery", "append_case", "autosave",
           "content_fingerprint", "dataset_folder", "default_case_id", "discard_recovery",
           "export_case", "finetune", "find_recovery", "provenance_record",
           "read_nnunet_dataset", "recovery_dir"]
