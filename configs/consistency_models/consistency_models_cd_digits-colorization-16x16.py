# Zero-shot colorization with the shipped digits CD model: the image's
# luminance is kept, the model supplies the colour (MMagicInferencer/demo: img).
_base_ = ['./consistency_models_cd_digits-onestep-16x16.py']

editing = dict(task='colorize', ts=(0, 10, 20, 30, 39))
