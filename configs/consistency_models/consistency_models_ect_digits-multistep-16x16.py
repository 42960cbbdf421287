# Two-step sampling of the digits ECT model (ts on a 40-point Karras grid).
_base_ = ['./consistency_models_ect_digits-onestep-16x16.py']

model = dict(sampler='multistep', steps=40, ts=(0, 22, 39))
