# sCT (continuous-time consistency training, from the teacher's weights) on ImageNet-64 at paper
# scale (cannot run on a CPU), on the released ADM EDM teacher: the ImageNet-64
# settings of NVlabs FastGen's sCM recipe (tau ~ N(-1.0, 1.6²), Adam 7e-5 with
# betas (0.9, 0.99) and eps 1e-11, tangent warm-up 10,000 iterations, RMS
# tangent normalisation c = 0.1, prior weighting 1/sigma, adaptive weighting).
# The paper trains EDM2-style networks with TrigFlow time embeddings; an
# ADM network with ln-sigma time input is the same function in TrigFlow
# coordinates (mmagic_cm.models.trigflow). No released weights: train, then
# export the EMA (tools/export_weights.py) to model_path.
_base_ = ['./_base_/cm_imagenet64.py']

model = dict(
    model_path='work_dirs/sct_imagenet64/sct_imagenet64_ema.pt',
    training_mode='sct',
    unet=dict(dropout=0.1),
    sampler='onestep',
    train_cfg=dict(
        p_mean=-1.0, p_std=1.6,
        tangent='jvp', tangent_warmup=10000, tangent_norm='rms', tangent_norm_const=0.1,
        prior_weighting=True, adaptive_weighting=True,
        init_from='https://openaipublic.blob.core.windows.net/consistency/'
        'edm_imagenet64_ema.pt',
        ema_rates=(0.9999, )))
train_dataloader = dict(batch_size=128)  # x 8 GPUs = 1024
train_cfg = dict(max_iters=200000)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=7e-5, betas=(0.9, 0.99), eps=1e-11))
