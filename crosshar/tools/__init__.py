"""Tools around the library: the deployment benchmark (`crosshar bench`), model complexity counts,
and the `crosshar export` / `crosshar bench` commands."""
