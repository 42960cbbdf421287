# Tiny EDM teacher run for tests.
_base_ = ['../../configs/consistency_models/consistency_models_edm_digits-heun-16x16.py']

model = dict(
    unet=dict(model_channels=32, num_res_blocks=1, attention_resolutions='8', dropout=0.0),
    model_path=None,
    batch_size=8)
train_dataloader = dict(batch_size=16, dataset=dict(indices=16))
train_cfg = dict(max_iters=40)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=40, by_epoch=False, max_keep_ckpts=1))
