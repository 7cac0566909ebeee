"""The test harness shared by the tests and the benchmarks: one JupyterHub launcher, the spec and
data factories, and the clean-up of the Docker objects the tests make."""
