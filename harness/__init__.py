"""memcg BPF struct_ops harness: build, boot and test a patched Linux 7.3."""

__version__ = "0.1.0"
