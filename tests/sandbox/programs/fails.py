raise RuntimeError("script failed on purpose")
