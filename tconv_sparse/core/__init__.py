"""Core: geometry (validated once, every derived size), index maps, the matrix C and C.T,
validation and configuration. Imports nothing above it."""
