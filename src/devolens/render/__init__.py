"""The digital embryo: optics, nuclei and membrane frames, wells, artifacts."""
