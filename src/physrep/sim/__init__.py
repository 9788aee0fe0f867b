"""Simulators that write new datasets of The Well's systems in The Well's format."""
