"""A real local Kubernetes control plane with a simulated GPU fleet (kwok), for tests and `make dev`."""
