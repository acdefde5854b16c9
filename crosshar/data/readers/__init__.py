"""One reader per raw dataset format: each turns its files into canonical Recordings (or, for
data shipped as fixed windows, windows) and registers itself in `crosshar.registry.DATASETS`."""

from crosshar.data.readers import (  # noqa: F401  (register)
    basicmotions, custom, hhar, mhealth, motionsense, pamap2, realworld, shoaib, uci, uschad, wisdm, wisdm_v1,
)
