"""Shared code for the homework scripts. Importing it does no work: no downloads, no prints."""
