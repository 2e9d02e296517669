"""What every stage shares and none owns: the error type, named seeds, content hashes, atomic writes and the
results layout (the one place that knows folder and file names)."""
