"""Installs the `mmae` package and its `mmae` command.

Versions in requirements.txt are the ones the test suite runs against;
the ranges here are what the code supports.
"""

from setuptools import find_packages, setup

setup(
    name="mmae",
    version="0.1.0",
    description="A multimodal (text + audio) autoencoder for speech synthesis in TensorFlow 2 / Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["mmae", "mmae.*"]),
    package_data={"mmae": ["configs/*.yaml", "assets/*/*", "serving/*.html"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "numpy>=1.26",
        "librosa>=0.10.2",
        "soundfile>=0.12",
        "soxr>=0.3",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.21",
        "pyyaml>=6.0",
        "num2words>=0.5.13",
    ],
    extras_require={
        # Needs the espeak-ng system package as well.
        "phonemes": ["phonemizer>=3.2"],
        "eval": [
            "pocketsphinx>=5.0",
            "jiwer>=3.0",
            "pyworld>=0.3.4",
            "speechmos>=0.0.1.1",
            "onnxruntime>=1.16",
        ],
        # tensorflow-io 0.37.1 cannot load its ops beside TF 2.21 (undefined
        # symbols); mmae uses it only as an optional extra decoder.
        "tfio": ["tensorflow-io>=0.37"],
        # `mmae serve`.
        "serve": ["starlette>=0.40", "uvicorn>=0.30", "prometheus-client>=0.20"],
        "dev": [
            "pytest>=8",
            # The suite runs on every core (scripts/test.sh): most of its time
            # is tracing, which is single-threaded.
            "pytest-xdist>=3.5",
            "ruff>=0.6",
            "nbmake>=1.5",
            "ipykernel>=6",
            "ai-edge-litert>=1.2",
            # The server's tests: its test client, OpenAI's own client against
            # it, and selenium for its page in Debian's Chromium.
            "httpx>=0.27",
            "openai>=1.40",
            "selenium>=4.20",
        ],
    },
    entry_points={"console_scripts": ["mmae=mmae.cli:main"]},
)
