"""Developer tooling: the local control plane used by `make cluster`, the tests and the demo."""
