"""The app layer: the `metarl` command (cli, the COMMANDS table, argv order, sweeps) and what its commands write
and print (train and eval runs, verdicts, figures, progress, info). Below it sits the library (objectives, envs,
inner, rl, curricula, shaping, meta, io); of that, only the meta-training driver (metarl.meta.run) calls back up,
for its verdict and progress lines."""
