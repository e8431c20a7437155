"""Data layer: the embedded multi-domain phantom, manifest loading and validation, patch sampling."""
