# Two-step sampling of the digits SCD model (ts on a 40-point Karras grid).
_base_ = ['./consistency_models_scd_digits-onestep-16x16.py']

model = dict(sampler='multistep', steps=40, ts=(0, 22, 39))
