# Tiny CT run on 64 digits for tests: improved recipe, 16x16, 0.3M parameters.
_base_ = ['../../configs/consistency_models/consistency_models_ct_digits-onestep-16x16.py']

model = dict(
    unet=dict(model_channels=32, num_res_blocks=1, attention_resolutions='8', dropout=0.0),
    model_path=None,
    batch_size=8,
    train_cfg=dict(schedule=dict(type='improved', s0=10, s1=1280, total_steps=8)))
train_dataloader = dict(batch_size=8, dataset=dict(indices=64))
train_cfg = dict(max_iters=6)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=1e-3))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=5))
