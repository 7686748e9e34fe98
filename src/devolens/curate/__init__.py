"""Curation: corrupt-frame detection and dataset cleaning."""
