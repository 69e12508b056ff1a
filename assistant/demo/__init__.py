"""The demo company's own systems (its order service), run beside the assistant by `make run`."""
