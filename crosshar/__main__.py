"""`python -m crosshar ...` (used by torchrun: `torchrun --nproc_per_node 2 -m crosshar pretrain ...`)."""

from crosshar.cli import app

app(prog_name="crosshar")
