"""Work across processes: srun tasks as torch's processes, sharded and resumable sampling.

- :mod:`.launch`: Slurm's variables turned into torch's (``--launcher slurm``);
- :mod:`.shards`: sampling cut into shards of consecutive images, each
  written when done, so that many processes share a run and a rerun resumes.
"""
