"""Input and output: images, videos, lineage tables and HDF5 tile stores."""
