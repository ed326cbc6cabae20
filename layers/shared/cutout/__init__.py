"""Cutout domain package: shipped in the Lambda layer, imported by the thin handlers in functions/."""
