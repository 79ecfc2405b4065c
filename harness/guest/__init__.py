"""Scripts that run inside the guest (stdlib only: the guest has plain python3)."""
