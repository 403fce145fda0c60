"""Autograd Functions for the tensor API, one file per family: each op's backward sits right next
to its forward, written with tensor ops so that it is itself differentiable (double backward)."""
