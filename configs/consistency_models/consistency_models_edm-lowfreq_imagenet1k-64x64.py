# EDM teacher on ImageNet-64 with the low-frequency time input ln(sigma) / 4
# (precond time_scale=0.25: NVlabs EDM's ADM convention, the time input of
# the teacher NVlabs FastGen distills, edm-imagenet-64x64-cond-adm) instead of
# the released teacher's 250 ln(sigma), whose time derivative sCM's exact
# tangent (the JVP) cannot follow. The teacher of the sCT and sCD ImageNet-64
# configs: the released ADM EDM teacher fine-tuned to the new time input with
# its own recipe (as the digits teacher,
# consistency_models_edm-lowfreq_digits-heun-16x16.py). Paper scale: GPUs
# only; no released weights (train, then export the EMA to model_path).
#
# Batch: 512 per GPU x 8 GPUs = 4,096, the released teacher's (as the base
# config). Length: 20,000 iterations (82M images, 3% of the released
# teacher's 600,000 x 4,096) is an estimate, not a measurement: sample with
# Heun (79 NFE) at each checkpoint and stop once FID-50k is back to the
# released teacher's 2.44.
#
#   tools/dist_train.sh \
#       configs/consistency_models/consistency_models_edm-lowfreq_imagenet1k-64x64.py 8 \
#       --work-dir work_dirs/edm-lowfreq_imagenet64
#   python tools/export_weights.py work_dirs/edm-lowfreq_imagenet64/iter_20000.pth \
#       work_dirs/edm-lowfreq_imagenet64/edm-lowfreq_imagenet64_ema.pt --ema 0.9999
_base_ = ['./consistency_models_edm_imagenet1k-64x64.py']

model = dict(
    model_path='work_dirs/edm-lowfreq_imagenet64/edm-lowfreq_imagenet64_ema.pt',
    precond=dict(time_scale=0.25),
    train_cfg=dict(init_from='https://openaipublic.blob.core.windows.net/consistency/'
                   'edm_imagenet64_ema.pt'))
train_cfg = dict(max_iters=20000)
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=4))
