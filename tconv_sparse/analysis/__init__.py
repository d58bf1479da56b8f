"""Analysis on top of plans and the core: spectra, overlap maps, symbolic matrices, the
explain report and plotting."""
