"""Clears the outputs and execution counts of the notebooks, for committing them.

.venv/bin/python scripts/clear_notebooks.py [NOTEBOOK ...]   # default: all of notebooks/
"""

import glob
import os
import sys

import nbformat

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


def clear(path):
    """Rewrites `path` without outputs; returns whether anything changed."""
    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if cell.outputs or cell.execution_count is not None:
            cell.outputs, cell.execution_count, changed = [], None, True
    if changed:
        nbformat.write(notebook, path)
    return changed


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or sorted(
        glob.glob(os.path.join(NOTEBOOKS, "*.ipynb"))
    )
    for path in paths:
        print(f"{path}: {'cleared' if clear(path) else 'already clear'}")


if __name__ == "__main__":
    main()
