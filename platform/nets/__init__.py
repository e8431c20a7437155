"""Network families, one module each."""
