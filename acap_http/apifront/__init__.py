"""The Docker API's front: TLS ended by the product, so that a rotation restarts nothing."""
