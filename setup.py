"""mmagic_cm: OpenAI's Consistency Models as an MMagic plugin.

Install from the repository root with the pins that MMagic 1.2.0 needs:

    pip install -e . -c requirements/constraints.txt
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmagic_cm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmagic_cm',
    version=read_version(),
    description="OpenAI's Consistency Models (ICML 2023) as an MMagic plugin: "
    'sampling, training and editing',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmagic_cm', 'mmagic_cm.*']),
    python_requires='>=3.9',
    # loose on purpose: the pins that make mmagic 1.2.0 install today live in
    # requirements/constraints.txt
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'mmengine>=0.10',
        'mmcv-lite>=2.0.0,<2.2.0',
        'mmagic==1.2.0',
        # mmagic imports it unconditionally but does not declare it
        'albumentations',
        'numpy',
        'pillow',
        'scikit-learn',  # the digits dataset (bundled data, no download)
        'scipy',
        'tqdm',
    ],
    package_data={'mmagic_cm': ['weights/digits/*.pt', 'weights/digits/SHA256SUMS']},
    extras_require={
        'tests': ['pytest', 'ruff'],
        # the web demo (demo/gradio_consistency_models.py, mmagic_cm.apps);
        # the version that installs beside mmagic's pins: requirements/constraints.txt
        'demo': ['gradio>=5,<6'],
        # export to ONNX / OpenVINO and sampling through the files (mmagic_cm.export,
        # tools/export.py; nncf: OpenVINO int8); pins beside mmagic's:
        # requirements/constraints.txt
        'deploy': ['onnx', 'onnxruntime', 'openvino', 'nncf'],
    },
    license='MIT',
)
