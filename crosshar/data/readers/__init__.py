"""One reader per raw dataset format: each turns its files into canonical Recordings (or, for
data shipped as fixed windows, windows) and registers itself in `crosshar.registry.DATASETS`."""

from crosshar.data.readers import basicmotions, custom, hhar, motionsense, pamap2, shoaib, uci, uschad, wisdm, wisdm_v1  # noqa: F401  (register)
