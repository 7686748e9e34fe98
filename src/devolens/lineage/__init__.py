"""Lineage tables: Sulston cell names, per-lineage populations, cliffs, the embryo simulator."""
