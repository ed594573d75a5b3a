"""keras-crosr: Classification-Reconstruction learning for Open-Set Recognition in Keras 3."""

from setuptools import find_packages, setup

setup(
    name="keras-crosr",
    version="0.1.0",
    description="CROSR / DHRNet open-set recognition (Yoshihashi et al., CVPR 2019) for Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_crosr", "keras_crosr.*"]),
    package_data={"keras_crosr.datasets": ["sample/*.npz"]},
    install_requires=[
        "keras>=3.6",
        "tensorflow>=2.16",
        "tensorflow-datasets>=4.9",
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "pillow>=9",
    ],
    extras_require={
        # libMR does not build under pip's build isolation (its setup.py imports numpy):
        # install numpy, cython, setuptools and wheel first, then `pip install --no-build-isolation ".[libmr]"`.
        "libmr": ["libmr==0.1.9"],
        "test": ["libmr==0.1.9", "pytest>=7", "nbval>=0.10", "jupyter", "jax>=0.4.30"],
    },
    entry_points={"console_scripts": ["keras-crosr=keras_crosr.__main__:main"]},
)
