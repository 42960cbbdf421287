# Training loop shared by the consistency-model configs (mmengine runner).
_base_ = ['./default_runtime.py']

# tools/train.py CONFIG; tools/dist_train.sh CONFIG NPROC for DDP.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600000)
# the original trains with RAdam, no weight decay; use_fp16 there = --amp here
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='RAdam', lr=1e-4,
                                                         weight_decay=0.0))
# constant LR; an explicit no-op schedule, so that mmengine's CheckpointHook and
# Runner.resume have one to save and restore (else they warn every run)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
custom_hooks = [dict(type='ConsistencyEMAHook'), dict(type='WeightsOnlyCheckpointHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=10000, by_epoch=False, max_keep_ckpts=3))
randomness = dict(seed=0)
