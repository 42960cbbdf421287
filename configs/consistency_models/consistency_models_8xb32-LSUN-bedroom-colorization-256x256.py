# Zero-shot colorization with CD (LSUN Bedroom-256), as in the paper's editing
# figures: the luminance is kept (MMagicInferencer/demo: img).
_base_ = ['./consistency_models_8xb32-LSUN-bedroom-onestep-256x256.py']

editing = dict(task='colorize', ts=(0, 10, 20, 30, 39))
