"""Run bookkeeping: files, locks, provenance, records, flags, search storage (the bottom layer)."""
