"""The tutorial notebooks are committed clean and follow the tutorial conventions.

Executing them is nbmake's job: `bash scripts/test.sh` runs pytest with
`--nbmake` over notebooks/ and MMAE_NOTEBOOK_SMALL=1.
"""

import glob
import os
import re

import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
EXPECTED = [
    "01_data_and_features.ipynb",
    "02_train_cross_modal_autoencoder.ipynb",
    "03_synthesize_and_export.ipynb",
    "04_colab_tpu_training.ipynb",
    "05_train_a_vocoder.ipynb",
]


def test_the_five_tutorials_are_there():
    assert [os.path.basename(path) for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_committed_clean_and_reads_as_a_tutorial(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    # Outputs cleared (scripts/clear_notebooks.py).
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    # Opens in Colab, and installs the project there first.
    name = os.path.basename(path)
    assert f"colab.research.google.com/github/mmae-tts/mmae/blob/main/notebooks/{name}" in (
        markdown[0].source
    )
    assert "google.colab" in code[0].source and "pip install" in code[0].source
    # A parameters cell that CI shrinks through MMAE_NOTEBOOK_SMALL.
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "MMAE_NOTEBOOK_SMALL" in parameters[0].source
    # Prose between the code, a conclusion at the end, and mmae's own models.
    assert len(markdown) >= len(code) // 2 and notebook.cells[-1].cell_type == "markdown"
    source = "\n".join(cell.source for cell in code)
    assert re.search(r"^\s*(import mmae|from mmae)", source, re.MULTILINE)
    assert not re.search(r"class \w+\((keras|tf\.keras)\.(Model|layers\.Layer)\)", source)
