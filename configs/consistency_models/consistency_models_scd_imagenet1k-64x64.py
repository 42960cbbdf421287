# sCD (continuous-time consistency distillation) on ImageNet-64 at paper
# scale (cannot run on a CPU), on the released ADM EDM teacher: the ImageNet-64
# settings of NVlabs FastGen's sCM recipe (tau ~ N(-1.0, 1.6²), Adam 7e-5 with
# betas (0.9, 0.99) and eps 1e-11, tangent warm-up 10,000 iterations, RMS
# tangent normalisation c = 0.1, prior weighting 1/sigma, adaptive weighting).
# The paper trains EDM2-style networks with TrigFlow time embeddings; an
# ADM network with ln-sigma time input is the same function in TrigFlow
# coordinates (mmagic_cm.models.trigflow). No released weights: train, then
# export the EMA (tools/export_weights.py) to model_path.
_base_ = ['./consistency_models_sct_imagenet1k-64x64.py']

model = dict(
    model_path='work_dirs/scd_imagenet64/scd_imagenet64_ema.pt',
    training_mode='scd',
    train_cfg=dict(
        init_from=None,  # the teacher's weights, through the objective
        teacher=dict(path='https://openaipublic.blob.core.windows.net/consistency/'
                     'edm_imagenet64_ema.pt', dropout=0.0)))
