"""Training entry points shared by the stages and tools: `pretrain` (hierarchical self-supervised
pretraining) and `finetune` (a head with a fraction of the source labels)."""
